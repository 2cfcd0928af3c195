"""sBG against Fader & Hardie (2007) on the regular and high-end cohorts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize
from scipy.special import betaln

from microseg.errors import NotFittedError
from microseg.models.clv.base import ConvergenceError
from microseg.models.clv.sbg import ShiftedBetaGeometric
from tests.conftest import shared_file

PUBLISHED = {
    "regular": {"alpha": 0.704, "beta": 1.182},
    "highend": {"alpha": 0.668, "beta": 3.806},
}
ALIVE = {  # customers still active after years 0 .. 7
    "regular": [1000, 631, 468, 382, 326, 289, 262, 241],
    "highend": [1000, 869, 743, 653, 593, 551, 517, 491],
}
LOG_LIKELIHOOD = {"regular": -1680.27, "highend": -1611.16}


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def with_params(params: dict) -> ShiftedBetaGeometric:
    model = ShiftedBetaGeometric()
    model.params_ = pd.Series(params)
    return model


@pytest.fixture(scope="module")
def cohorts() -> pd.DataFrame:
    """customer_id, recency (last year active, 1-8), T = 8, cohort (regular / highend)."""
    return pd.read_csv(shared_file("sbg_cohorts_fader_hardie_2007.csv"))


@pytest.mark.realdata
@pytest.mark.parametrize("cohort", ["regular", "highend"])
def test_the_file_encodes_the_published_survivor_counts(cohorts, cohort):
    """recency < T: cancelled at the end of year ``recency``; recency = T = 8: still active."""
    d = cohorts[cohorts.cohort == cohort]
    assert (d["T"] == 8).all() and d.recency.between(1, 8).all()
    assert [int((d.recency > t).sum()) for t in range(8)] == ALIVE[cohort]


@pytest.mark.realdata
@pytest.mark.parametrize("cohort", ["regular", "highend"])
def test_parameters_match_the_paper_to_three_digits(cohorts, cohort):
    d = cohorts[cohorts.cohort == cohort]
    model = ShiftedBetaGeometric().fit(d.recency, d["T"])
    for name, value in PUBLISHED[cohort].items():
        assert sig3(model.params_[name]) == sig3(value), name
    assert model.log_likelihood_ == pytest.approx(LOG_LIKELIHOOD[cohort], abs=0.01)
    summary = model.summary()
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 1000
    # survivor counts and the compressed, weighted form give the same fit
    from_counts = ShiftedBetaGeometric().fit_survival(ALIVE[cohort])
    np.testing.assert_allclose(from_counts.params_, model.params_, rtol=1e-6)
    rows = d.groupby(["recency", "T"]).size().reset_index(name="n")
    weighted = ShiftedBetaGeometric().fit(rows.recency, rows["T"], weights=rows.n)
    np.testing.assert_allclose(weighted.params_, model.params_, rtol=1e-6)
    assert weighted.log_likelihood_ == pytest.approx(model.log_likelihood_, rel=1e-10)


def test_analytic_gradient_matches_finite_differences():
    counts = np.array(ALIVE["regular"], dtype=float)
    data = (np.arange(1.0, 9.0), np.full(8, 8.0), np.append(-np.diff(counts), counts[-1]))
    point = np.log([1.3, 0.6])
    analytic = ShiftedBetaGeometric._neg_log_likelihood(point, data)[1]
    numeric = optimize.approx_fprime(
        point, lambda z: ShiftedBetaGeometric._neg_log_likelihood(z, data)[0], 1e-7
    )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5)


def test_survival_retention_and_churn_are_consistent():
    model = with_params(PUBLISHED["regular"])
    alpha, beta = PUBLISHED["regular"].values()
    t = np.arange(1, 13)
    survival = model.survival(np.arange(13))
    assert survival[0] == 1.0 and np.all(np.diff(survival) < 0)
    np.testing.assert_allclose(model.retention_rate(t), survival[1:] / survival[:-1], rtol=1e-12)
    np.testing.assert_allclose(model.probability_churn_at(t), survival[:-1] - survival[1:], rtol=1e-10)
    np.testing.assert_allclose(model.retention_rate(t), (beta + t - 1) / (alpha + beta + t - 1))
    assert np.all(np.diff(model.retention_rate(t)) > 0)  # retention rises with tenure
    # the fit projects the published survivors within a few customers
    np.testing.assert_allclose(1000 * survival[:8], ALIVE["regular"], atol=8)


def test_discounted_lifetimes_agree_with_direct_sums_and_integrals():
    alpha, beta = PUBLISHED["highend"].values()
    model = with_params(PUBLISHED["highend"])
    for d in (0.1, 0.01):
        z = 1 / (1 + d)
        direct = sum(model.survival([k])[0] * z**k for k in range(6000))
        assert model.discounted_expected_lifetime(d) == pytest.approx(direct, rel=1e-8)
        for n in (1, 5):
            posterior = lambda th, n=n: np.exp(  # noqa: E731 - the posterior Beta(α, β + n − 1)
                (alpha - 1) * np.log(th) + (beta + n - 2) * np.log1p(-th) - betaln(alpha, beta + n - 1)
            )
            expected, _ = integrate.quad(
                lambda th, z=z, p=posterior: (1 - th) / (1 - (1 - th) * z) * p(th), 0, 1
            )
            assert model.discounted_expected_residual_lifetime(n, d)[()] == pytest.approx(expected, rel=1e-7)
        # a new customer's first payment, then the residual lifetime a period later
        assert model.discounted_expected_lifetime(d) == pytest.approx(
            1 + z * model.discounted_expected_residual_lifetime(1, d)[()]
        )
    derl = model.discounted_expected_residual_lifetime([1, 2, 5, 10], 0.1)
    assert np.all(np.diff(derl) > 0)  # survivors are the better customers


def test_undiscounted_lifetime_is_infinite_below_alpha_one_and_finite_above():
    assert with_params(PUBLISHED["regular"]).expected_lifetime() == np.inf
    assert with_params(PUBLISHED["regular"]).discounted_expected_lifetime(0) == np.inf
    model = with_params({"alpha": 3.0, "beta": 4.0})
    assert model.expected_lifetime() == pytest.approx(6 / 2)
    assert model.discounted_expected_lifetime(0) == model.expected_lifetime()
    direct = sum(model.survival([k])[0] for k in range(20000))
    assert model.expected_lifetime() == pytest.approx(direct, rel=1e-6)
    assert model.discounted_expected_residual_lifetime(3, 0.0)[()] == pytest.approx((4 + 2) / 2)


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(3)
    true = {"alpha": 0.7, "beta": 1.8}
    theta = rng.beta(true["alpha"], true["beta"], 5000)
    lifetime = rng.geometric(theta)  # periods active, from 1
    T = rng.integers(4, 13, len(theta))  # customers joined at different times
    model = ShiftedBetaGeometric().fit(np.minimum(lifetime, T), T)
    for name, value in true.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        ShiftedBetaGeometric().survival([1])
    with pytest.raises(ValueError, match=r"recency \(the last period a customer was active\) must be <= T"):
        ShiftedBetaGeometric().fit([3, 9], [8, 8])
    with pytest.raises(ValueError, match="recency must be whole numbers >= 1"):
        ShiftedBetaGeometric().fit([0, 2], 8)
    with pytest.raises(ValueError, match="missing or infinite"):
        ShiftedBetaGeometric().fit([1, np.nan], 8)
    with pytest.raises(ValueError, match="no customer churned"):
        ShiftedBetaGeometric().fit([8, 8], [8, 8])
    with pytest.raises(ValueError, match="no customer renewed"):
        ShiftedBetaGeometric().fit([1, 1], [8, 8])
    with pytest.raises(ValueError, match="never increase"):
        ShiftedBetaGeometric().fit_survival([100, 80, 90])
    with pytest.raises(ValueError, match="at least one later count"):
        ShiftedBetaGeometric().fit_survival([100])
    with pytest.raises(ConvergenceError):
        ShiftedBetaGeometric().fit([3], [8])  # one customer cannot identify two parameters
    model = with_params(PUBLISHED["regular"])
    with pytest.raises(ValueError, match="discount_rate must be a number >= 0"):
        model.discounted_expected_lifetime(-0.1)
    with pytest.raises(ValueError, match="t must be whole numbers >= 1"):
        model.retention_rate(0)
    with pytest.raises(ValueError, match="periods_alive must be whole numbers >= 1"):
        model.discounted_expected_residual_lifetime(0, 0.1)

"""BG/BB against Fader, Hardie & Shang (2010) on the 1995 donations cohort."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import betaln

from microseg.errors import NotFittedError
from microseg.models.clv.base import ConvergenceError
from microseg.models.clv.bgbb import BGBB, _survival_sum
from tests.conftest import shared_file

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def with_params(params: dict) -> BGBB:
    model = BGBB()
    model.params_ = pd.Series(params)
    return model


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    """One row per (frequency, recency, periods = 6) with its number of donors (11,104 in all)."""
    return pd.read_csv(shared_file("donations_bgbb_aggregated.csv"))


@pytest.fixture(scope="module")
def fitted(donations) -> BGBB:
    d = donations
    return BGBB().fit(d.frequency, d.recency, d.periods, weights=d.weights)


@pytest.mark.realdata
def test_parameters_match_the_paper_to_three_digits(fitted):
    for name, value in PUBLISHED.items():
        assert sig3(fitted.params_[name]) == sig3(value), name
    assert fitted.log_likelihood_ == pytest.approx(-33225.58, abs=0.05)
    summary = fitted.summary()
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 11104


@pytest.mark.realdata
def test_one_row_per_donor_gives_the_same_fit(donations, fitted):
    d = donations.loc[donations.index.repeat(donations.weights)]
    assert len(d) == 11104
    model = BGBB().fit(d.frequency, d.recency, d.periods)
    np.testing.assert_allclose(model.params_, fitted.params_, rtol=1e-6)
    assert model.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


@pytest.mark.realdata
def test_analytic_gradient_matches_finite_differences(donations):
    d = donations
    data = tuple(d[c].to_numpy(float) for c in ("frequency", "recency", "periods", "weights"))
    point = np.log([0.8, 1.3, 1.1, 1.7])
    analytic = BGBB._neg_log_likelihood(point, data)[1]
    numeric = optimize.approx_fprime(point, lambda z: BGBB._neg_log_likelihood(z, data)[0], 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4)


def test_likelihood_sums_to_one_over_every_purchase_history():
    """Each (x, tₓ) stands for C(tₓ − 1, x − 1) histories of equal probability."""
    model = with_params(PUBLISHED)
    n = 5
    histories = [(0, 0)] + [
        (len(s), max(s)) for k in range(1, n + 1) for s in combinations(range(1, n + 1), k)
    ]
    x, t_x = np.array(histories, dtype=float).T
    assert np.exp(model.log_likelihood_per_customer(x, t_x, n)).sum() == pytest.approx(1.0, abs=1e-12)


def brute_force_expectation(params: dict, x: int, t_x: int, n: int, n_future: int) -> float:
    """Σ_{t=n+1}^{n+n*} P(alive at t, buys at t | data), term by term from the posterior."""
    a, b, g, d = params.values()
    model = with_params(params)
    likelihood = np.exp(model.log_likelihood_per_customer([x], [t_x], [n])[0])
    buy = np.exp(betaln(a + x + 1, b + n - x) - betaln(a, b))
    alive = sum(np.exp(betaln(g, d + t) - betaln(g, d)) for t in range(n + 1, n + n_future + 1))
    return buy * alive / likelihood


def test_predictions_agree_with_term_by_term_sums():
    model = with_params(PUBLISHED)
    for x, t_x, n in [(0, 0, 6), (1, 1, 6), (3, 5, 6), (6, 6, 6), (2, 9, 12)]:
        for n_future in (1, 5, 10):
            expected = brute_force_expectation(PUBLISHED, x, t_x, n, n_future)
            assert model.predict_purchases(n_future, [x], [t_x], [n])[0] == pytest.approx(expected, rel=1e-10)
    a, b, g, d = PUBLISHED.values()
    per_period = [a / (a + b) * np.exp(betaln(g, d + t) - betaln(g, d)) for t in range(1, 12)]
    np.testing.assert_allclose(
        model.expected_purchases_new(np.arange(1, 12)), np.cumsum(per_period), rtol=1e-10
    )
    # a new customer is a customer with no history
    assert model.predict_purchases(5, 0, 0, 1)[0] < model.expected_purchases_new(6)


def test_survival_sum_is_continuous_through_gamma_one():
    at_one = _survival_sum(1.0, 2.5, 3, 10)
    for gamma in (1 - 1e-5, 1 + 1e-5):
        assert _survival_sum(gamma, 2.5, 3, 10) == pytest.approx(at_one, rel=1e-4)
    direct = sum(np.exp(betaln(1.0, 2.5 + t) - betaln(1.0, 2.5)) for t in range(4, 11))
    assert at_one == pytest.approx(direct, rel=1e-12)


def test_probability_alive_behaves():
    model = with_params(PUBLISHED)
    p = model.probability_alive([0, 1, 1, 3, 6], [0, 1, 5, 6, 6], 6)
    assert np.all((p > 0) & (p < 1))
    assert p[1] < p[2] < p[3]  # a more recent last transaction: more likely alive
    # a transaction in period n proves the customer alive then: P(alive at n + 1) = E[1 − θ | alive n]
    g, d = PUBLISHED["gamma"], PUBLISHED["delta"]
    assert p[3] == pytest.approx((d + 6) / (g + d + 6)) == p[4]


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(11)
    true = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}
    customers, n = 30_000, 8
    p = rng.beta(true["alpha"], true["beta"], customers)
    theta = rng.beta(true["gamma"], true["delta"], customers)
    alive = np.cumprod(rng.random((customers, n)) >= theta[:, None], axis=1)  # alive at opportunity t
    buys = alive & (rng.random((customers, n)) < p[:, None])
    x = buys.sum(axis=1)
    t_x = np.where(x > 0, n - np.argmax(buys[:, ::-1], axis=1), 0)
    model = BGBB().fit(x, t_x, n)
    for name, value in true.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        BGBB().probability_alive([1], [1], [2])
    with pytest.raises(
        ValueError, match=r"recency .* must be <= n_periods: 1 customer\(s\), first at position\(s\) 1"
    ):
        BGBB().fit([1, 2], [1, 7], 6)
    with pytest.raises(ValueError, match="frequency must be <= recency"):
        BGBB().fit([3], [2], 6)
    with pytest.raises(ValueError, match="recency must be 0 where frequency is 0"):
        BGBB().fit([0], [2], 6)
    with pytest.raises(ValueError, match="whole numbers"):
        BGBB().fit([1.5], [2], 6)
    with pytest.raises(ValueError, match="n_periods must be whole numbers >= 1"):
        BGBB().fit([0], [0], 0)
    with pytest.raises(ValueError, match="missing or infinite"):
        BGBB().fit([1, np.nan], [1, 1], 6)
    with pytest.raises(ValueError, match="n_future"):
        with_params(PUBLISHED).predict_purchases(-1, [1], [1], 6)
    with pytest.raises(ConvergenceError):
        BGBB().fit([2], [4], [6])  # one customer cannot identify four parameters
    with pytest.raises(ValueError, match="every customer has frequency 0"):
        BGBB().fit([0, 0], [0, 0], [6, 6])
    with pytest.raises(ValueError, match="every customer transacted at every opportunity"):
        BGBB().fit([6, 4], [6, 4], [6, 4])

"""Gamma-Gamma against Fader, Hardie & Lee (2005, JMR) on the CDNOW repeat buyers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from microseg.errors import NotFittedError
from microseg.models.clv.base import ConvergenceError
from microseg.models.clv.gammagamma import GammaGamma, _SpendData

PUBLISHED = {"p": 6.25, "q": 3.74, "v": 15.44}  # the paper's γ is v


def sig3(value: float) -> float:
    return float(f"{value:.3g}")


def with_params(params: dict) -> GammaGamma:
    model = GammaGamma()
    model.params_ = pd.Series(params)
    return model


@pytest.fixture(scope="module")
def repeat_buyers(cdnow_summary) -> pd.DataFrame:
    return cdnow_summary[cdnow_summary.x > 0]


@pytest.fixture(scope="module")
def fitted(repeat_buyers) -> GammaGamma:
    return GammaGamma().fit(repeat_buyers.x, repeat_buyers.zbar)


@pytest.mark.realdata
def test_parameters_match_the_paper_to_three_digits(fitted):
    for name, value in PUBLISHED.items():
        assert sig3(fitted.params_[name]) == sig3(value), name
    assert fitted.log_likelihood_ == pytest.approx(-4055.92, abs=0.05)
    summary = fitted.summary()
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 946


@pytest.mark.realdata
def test_per_customer_log_likelihood_sums_to_the_total(fitted, repeat_buyers):
    per_customer = fitted.log_likelihood_per_customer(repeat_buyers.x, repeat_buyers.zbar)
    assert per_customer.sum() == pytest.approx(fitted.log_likelihood_, rel=1e-12)


@pytest.mark.realdata
def test_compressed_weights_give_the_same_fit(repeat_buyers, fitted):
    rows = repeat_buyers.groupby(["x", "zbar"]).size().reset_index(name="n")
    assert len(rows) < len(repeat_buyers)
    model = GammaGamma().fit(rows.x, rows.zbar, weights=rows.n)
    np.testing.assert_allclose(model.params_, fitted.params_, rtol=1e-6)
    assert model.log_likelihood_ == pytest.approx(fitted.log_likelihood_, rel=1e-10)


@pytest.mark.realdata
def test_analytic_gradient_matches_finite_differences(repeat_buyers):
    x, m = repeat_buyers.x.to_numpy(float), repeat_buyers.zbar.to_numpy(float)
    data = _SpendData.build(x, m, np.ones(len(x)))
    point = np.log([3.0, 2.5, 20.0])
    value = GammaGamma._neg_log_likelihood(point, data)[0]
    assert value == pytest.approx(-GammaGamma._log_likelihood_terms(np.exp(point), x, m).sum())
    analytic = GammaGamma._neg_log_likelihood(point, data)[1]
    numeric = optimize.approx_fprime(point, lambda z: GammaGamma._neg_log_likelihood(z, data)[0], 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4)


def test_expected_spend_is_the_published_weighted_average():
    model = with_params(PUBLISHED)
    p, q, v = PUBLISHED.values()
    population = p * v / (q - 1)
    spend = model.expected_spend([0, 2, 2, 50], [0.0, 22.35, 22.35, 22.35])
    assert spend[0] == pytest.approx(population) == model.mean_spend()
    assert spend[1] == pytest.approx(p * (v + 2 * 22.35) / (2 * p + q - 1))
    # between the population mean and the customer's own mean, closer to the latter as x grows
    assert 22.35 < spend[3] < spend[1] < population
    assert spend[3] == pytest.approx(22.35, rel=0.02)


def test_expected_spend_needs_q_above_one():
    with pytest.raises(ValueError, match="needs q > 1"):
        with_params({"p": 6.0, "q": 0.9, "v": 15.0}).expected_spend([2], [20.0])


def test_recovers_simulated_parameters():
    rng = np.random.default_rng(7)
    true = {"p": 6.0, "q": 4.0, "v": 15.0}
    n = 20_000
    x = rng.integers(1, 10, size=n)
    nu = rng.gamma(true["q"], 1 / true["v"], size=n)
    spend = rng.gamma(true["p"] * x, 1 / (nu * x))  # the mean of x Gamma(p, nu) transaction values
    model = GammaGamma().fit(x, spend)
    for name, value in true.items():
        assert abs(model.params_[name] - value) < 3 * model.standard_errors_[name], name


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        GammaGamma().expected_spend([1], [10.0])
    with pytest.raises(ValueError, match=r"repeat buyers only: 1 customer\(s\).*frequency 0"):
        GammaGamma().fit([1, 0, 2], [10.0, 0.0, 12.0])
    with pytest.raises(ValueError, match="must be > 0 for customers with frequency > 0"):
        GammaGamma().fit([1, 2], [10.0, -3.0])
    with pytest.raises(ValueError, match="must be > 0 for customers with frequency > 0"):
        with_params(PUBLISHED).expected_spend([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match="monetary_value: 1 value"):
        GammaGamma().fit([1, 2], [10.0, np.nan])
    with pytest.raises(ValueError, match="whole numbers"):
        GammaGamma().fit([1.5, 2], [10.0, 12.0])
    with pytest.raises(ValueError, match="same length"):
        GammaGamma().fit([1, 2], [10.0])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        GammaGamma().fit([1, 2], [10.0, 12.0], weights=[1, -1])
    with pytest.raises(ConvergenceError, match="cannot identify"):
        GammaGamma().fit([3], [25.0])

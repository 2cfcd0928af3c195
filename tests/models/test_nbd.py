"""NBD (no dropout): its likelihood against numerical integration, its fit and predictions
against simulation of the model, the published CDNOW fit, and the models with dropout tending
to it as dropout vanishes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from microseg.errors import NotFittedError
from microseg.models.clv import BGNBD, MBGNBD, NBD, ConvergenceError, ParetoNBD
from microseg.models.clv.base import hessian_from_gradient

R, ALPHA = 0.55, 9.0  # weekly buying rates Gamma(0.55, 9): a mean of 0.061 purchases a week


def simulate(n: int, seed: int, *, horizon: float = 0.0, r: float = R, alpha: float = ALPHA):
    """NBD customers observed for T weeks since their first purchase (10 to 78): repeat
    purchases x in (0, T], the last at t_x, and their purchases in (T, T + horizon]."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(10, 78, n)
    rate = rng.gamma(r, 1 / alpha, n)
    x = rng.poisson(rate * T)
    # the last of x uniform times in (0, T] is T·U^(1/x)
    with np.errstate(divide="ignore"):
        t_x = np.where(x > 0, T * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    return x, t_x, T, rng.poisson(rate * horizon)


def with_params(r: float, alpha: float) -> NBD:
    model = NBD()
    model.params_ = pd.Series({"r": r, "alpha": alpha})
    return model


@pytest.fixture(scope="module")
def population():
    return simulate(20_000, seed=11, horizon=26.0)


@pytest.fixture(scope="module")
def fitted(population) -> NBD:
    x, t_x, T, _ = population
    return NBD().fit(x, t_x, T)


@pytest.mark.parametrize(
    ("r", "alpha", "x", "T"),
    [
        (0.55, 9.0, 0, 30.0),
        (0.55, 9.0, 3, 30.0),
        (2.5, 1.5, 12, 50.0),
        (0.2, 40.0, 1, 5.0),
        (1.0, 1.0, 0, 0.0),
    ],
)
def test_likelihood_is_the_poisson_likelihood_integrated_over_the_gamma(r, alpha, x, T):
    """λ^x e^(-λT) (x purchases by T, at any times) weighted by the Gamma(r, α) density."""

    def integrand(rate):
        return rate**x * np.exp(-rate * T) * stats.gamma.pdf(rate, r, scale=1 / alpha)

    mode = (r + x - 1) / (alpha + T) if r + x > 1 else 0.0
    pieces = [integrate.quad(integrand, 0, mode + 1, points=[mode], epsabs=0, epsrel=1e-11, limit=200)[0]]
    pieces.append(integrate.quad(integrand, mode + 1, np.inf, epsabs=0, epsrel=1e-11, limit=200)[0])
    numeric = np.log(sum(pieces))
    closed = with_params(r, alpha).log_likelihood_per_customer(x, 0.5 * T if x else 0.0, T)[0]
    assert closed == pytest.approx(numeric, rel=1e-8, abs=1e-9)


def test_recency_does_not_enter(fitted):
    early = fitted.log_likelihood_per_customer([3, 3], [1.0, 29.0], [30.0, 30.0])
    assert early[0] == early[1]
    assert (
        fitted.predict_purchases(10, [3, 3], [1.0, 29.0], [30.0, 30.0]).tolist()
        == [pytest.approx(fitted.predict_purchases(10, 3, 29.0, 30.0)[0])] * 2
    )


def test_gradient_and_hessian_are_the_derivatives(population):
    x, t_x, T, _ = population
    model = NBD()
    data = model._prepare(x, t_x, T, np.ones(len(x)))
    point = np.log([0.7, 11.0])
    value, gradient = NBD._neg_log_likelihood(point, data)
    numeric = [
        (NBD._neg_log_likelihood(point + h, data)[0] - NBD._neg_log_likelihood(point - h, data)[0]) / 2e-6
        for h in np.eye(2) * 1e-6
    ]
    np.testing.assert_allclose(gradient, numeric, rtol=1e-6)
    same_value, same_gradient, hessian = NBD._neg_log_likelihood_hessian(point, data)
    assert same_value == value and np.array_equal(same_gradient, gradient)
    differenced = hessian_from_gradient(lambda p: NBD._neg_log_likelihood(p, data)[1], point, central=True)
    np.testing.assert_allclose(hessian, differenced, rtol=1e-6)
    # the sum of each customer's log-likelihood is the objective
    total = with_params(0.7, 11.0).log_likelihood_per_customer(x, t_x, T).sum()
    assert -value == pytest.approx(total, rel=1e-12)


def test_recovers_the_parameters_within_their_standard_errors(fitted):
    """20,000 simulated customers: the estimates are within two standard errors of the truth."""
    se = fitted.standard_errors_
    assert (
        abs(fitted.params_["r"] - R) < 2 * se["r"] and abs(fitted.params_["alpha"] - ALPHA) < 2 * se["alpha"]
    )
    assert se["r"] / R < 0.02 and se["alpha"] / ALPHA < 0.03  # 20,000 customers pin them down
    assert fitted.converged_ and fitted.n_customers_ == 20_000


def test_standard_errors_match_the_spread_of_repeated_fits():
    """Over 30 independent populations of 20,000, the estimates vary as their standard errors say."""
    estimates, errors = [], []
    for seed in range(30):
        x, t_x, T, _ = simulate(20_000, seed=100 + seed)
        model = NBD().fit(x, t_x, T)
        estimates.append(model.params_.to_numpy())
        errors.append(model.standard_errors_.to_numpy())
    estimates, errors = np.array(estimates), np.array(errors)
    spread = estimates.std(axis=0, ddof=1)
    np.testing.assert_allclose(spread / errors.mean(axis=0), 1.0, atol=0.3)
    # no bias: the mean estimate is within three standard errors of the mean
    assert np.all(np.abs(estimates.mean(axis=0) - [R, ALPHA]) < 3 * spread / np.sqrt(len(estimates)))
    z = (estimates - [R, ALPHA]) / errors
    assert 0.85 <= float((np.abs(z) < 2).mean()) <= 1.0


def test_conditional_expectations_match_simulated_holdout_purchases(population):
    """Customers' purchases in the 26 weeks after T, by their purchases up to T."""
    x, t_x, T, future = population
    predicted = with_params(R, ALPHA).predict_purchases(26.0, x, t_x, T)
    group = np.minimum(x, 6)
    for k in range(7):
        rows = group == k
        actual = future[rows]
        sampling = actual.std(ddof=1) / np.sqrt(rows.sum())
        assert abs(predicted[rows].mean() - actual.mean()) < 4 * sampling, k
    assert predicted.sum() == pytest.approx(future.sum(), rel=0.03)
    # more purchases so far, more to come; a longer history at the same count, fewer
    low, high, longer = with_params(R, ALPHA).predict_purchases(26.0, [1, 2, 2], [5, 5, 5], [20, 20, 40])
    assert low < high and longer < high


def test_new_customer_counts_match_simulation():
    """A cohort of 20,000 new customers over 40 weeks: the mean and the distribution of counts."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(rng.gamma(R, 1 / ALPHA, 20_000) * 40.0)
    model = with_params(R, ALPHA)
    assert model.expected_purchases_new(40.0) == pytest.approx(R * 40 / ALPHA)
    assert abs(model.expected_purchases_new(40.0) - counts.mean()) < 4 * counts.std() / np.sqrt(len(counts))
    probabilities = model.probability_of_purchases(np.arange(6), 40.0)
    shares = np.bincount(counts, minlength=6)[:6] / len(counts)
    np.testing.assert_allclose(shares, probabilities, atol=4 * np.sqrt(0.25 / len(counts)))
    everything = model.probability_of_purchases(np.arange(2_000), 40.0).sum()
    assert everything == pytest.approx(1.0, abs=1e-9)
    assert model.probability_of_purchases([0, 1], 0.0).tolist() == [1.0, 0.0]


def test_several_horizons_at_once_agree_with_one_at_a_time(population):
    x, t_x, T, _ = population
    model = with_params(R, ALPHA)
    many = model.predict_purchases_many([4.0, 13.0, 52.0], x[:500], t_x[:500], T[:500])
    for row, horizon in zip(many, (4.0, 13.0, 52.0), strict=True):
        np.testing.assert_allclose(row, model.predict_purchases(horizon, x[:500], t_x[:500], T[:500]))
    per_customer = model.predict_purchases(np.array([1.0, 2.0]), [0, 1], [0, 3], [10, 10])
    np.testing.assert_allclose(per_customer, [R * 1 / (ALPHA + 10), (R + 1) * 2 / (ALPHA + 10)])


def test_everybody_is_alive(fitted, population):
    x, t_x, T, _ = population
    assert np.array_equal(fitted.probability_alive(x, t_x, T), np.ones(len(x)))


@pytest.mark.parametrize("dropout", ["bgnbd", "mbgnbd", "paretonbd"])
def test_models_with_dropout_tend_to_the_nbd_as_dropout_vanishes(population, dropout):
    """At the NBD's (r, α), the log-likelihood and the conditional expectations of BG/NBD and
    MBG/NBD as a → 0, and of Pareto/NBD as s → 0, converge to the NBD's."""
    x, t_x, T, _ = population
    nbd = with_params(R, ALPHA)
    target_ll = nbd.log_likelihood_per_customer(x, t_x, T).sum()
    target = nbd.predict_purchases(26.0, x, t_x, T)
    gaps = []
    for small in (1e-2, 1e-4, 1e-6, 1e-8):
        if dropout == "paretonbd":
            model = ParetoNBD()
            model.params_ = pd.Series({"r": R, "alpha": ALPHA, "s": small, "beta": 10.0})
        else:
            model = BGNBD() if dropout == "bgnbd" else MBGNBD()
            model.params_ = pd.Series({"r": R, "alpha": ALPHA, "a": small, "b": 2.0})
        ll = model.log_likelihood_per_customer(x, t_x, T).sum()
        expected = model.predict_purchases(26.0, x, t_x, T)
        gaps.append((abs(ll - target_ll), float(np.max(np.abs(expected / target - 1)))))
    gaps = np.array(gaps)
    assert np.all(np.diff(gaps, axis=0) < 0)  # closer at every step
    assert gaps[-1, 0] < 1e-3 and gaps[-1, 1] < 1e-5


def test_models_with_dropout_cannot_fit_data_without_it(population, fitted):
    """The failure the NBD exists for: on data where nobody leaves, the models with dropout
    end where dropout is 0 and say so; the NBD fits."""
    x, t_x, T, _ = population
    for model in (BGNBD(), MBGNBD(), ParetoNBD()):
        with pytest.raises(ConvergenceError, match="the data show no dropout"):
            model.fit(x, t_x, T)
    assert np.isfinite(fitted.log_likelihood_)


@pytest.mark.realdata
def test_cdnow_fit_matches_the_published_nbd(cdnow_summary):
    """Fader, Hardie & Lee (2005), the NBD benchmark on the CDNOW calibration weeks: r = 0.385,
    α = 12.072, LL = -9763.7 (BG/NBD: -9582.4, so the data show dropout)."""
    d = cdnow_summary
    model = NBD().fit(d.x, d.t_x, d["T"])
    assert model.params_.round(3).to_dict() == {"r": 0.385, "alpha": 12.072}
    assert model.log_likelihood_ == pytest.approx(-9763.7, abs=0.05)
    assert (model.summary().se > 0).all()


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        NBD().probability_alive([1], [1], [2])
    with pytest.raises(NotFittedError, match="call fit"):
        NBD().predict_purchases(1.0, [1], [1], [2])
    with pytest.raises(ValueError, match="recency vector are larger than T"):
        NBD().fit([1, 2], [5, 3], [4, 4])
    with pytest.raises(ValueError, match="frequency 0"):
        NBD().fit([0, 0], [0, 0], [4, 5])
    # customers who differ only in their recency are one customer to the NBD
    x, T = [1, 1, 2, 2, 1, 2, 1, 2], [10.0] * 8
    t_x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    with pytest.raises(ValueError, match="needs customers with at least 6 different inputs; got 2"):
        NBD().fit(x, t_x, T)
    with pytest.raises(ValueError, match="must be >= 0"):
        with_params(R, ALPHA).predict_purchases(-1.0, [1], [1], [2])
    with pytest.raises(ValueError, match="n must be whole numbers"):
        with_params(R, ALPHA).probability_of_purchases([1.5], 2.0)


def test_everybody_alike_ends_at_the_poisson_limit():
    """One buying rate for all (counts even less dispersed than Poisson): without heterogeneity
    r and α grow together, and every customer is predicted the common rate."""
    T = np.linspace(10, 78, 500)
    x = np.round(0.1 * T)
    model = NBD().fit(x, np.where(x > 0, T / 2, 0.0), T)
    assert model.params_["r"] > 1e3 and model.params_["r"] / model.params_["alpha"] == pytest.approx(
        0.1, rel=0.01
    )
    np.testing.assert_allclose(model.predict_purchases(10.0, [0, 8], [0, 40], [10, 78]), 1.0, rtol=0.01)

"""Pareto/NBD against Fader, Hardie & Lee (2005) on the CDNOW sample, the paper's hypergeometric
formula, a simulation of the model, and extreme inputs."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln, hyp2f1

from microseg.errors import NotFittedError
from microseg.models.clv import ConvergenceError, paretonbd
from microseg.models.clv.base import compress
from microseg.models.clv.paretonbd import ParetoNBD

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
TRUE = (0.55, 10.6, 0.61, 11.7)


def with_params(params) -> ParetoNBD:
    model = ParetoNBD()
    model.params_ = pd.Series(dict(zip(ParetoNBD.param_names, params, strict=True)))
    return model


def simulate(n, params, T_range, horizon=0.0, seed=0):
    """Customers of the Pareto/NBD model: (x, t_x, T) in (0, T], purchases in (T, T + horizon],
    alive at T."""
    r, alpha, s, beta = params
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n))
    T = np.round(rng.uniform(*T_range, n) * 7) / 7  # whole days, in weeks
    active = np.minimum(lifetime, T)
    x = rng.poisson(rate * active).astype(float)
    t_x = np.where(x > 0, active * rng.beta(np.maximum(x, 1), 1), 0.0)  # the last of x uniform times
    future = rng.poisson(rate * np.clip(np.minimum(lifetime, T + horizon) - T, 0, None))
    return x, t_x, T, future, lifetime > T


def paper_log_likelihood(r, alpha, s, beta, x, t_x, T):
    """Fader, Hardie & Lee (2005), equations for A_0 with scipy's hyp2f1 (fine for small x)."""
    big, b1 = (alpha, s + 1) if alpha >= beta else (beta, r + x)
    a1 = r + s + x

    def term(y):
        return hyp2f1(a1, b1, a1 + 1, abs(alpha - beta) / (big + y)) / (big + y) ** a1

    a0 = term(t_x) - term(T)
    lik = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / a1 * a0
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.log(lik)


@pytest.fixture(scope="module")
def fitted(cdnow_summary) -> ParetoNBD:
    d = cdnow_summary
    return ParetoNBD().fit(d.x, d.t_x, d["T"])


@pytest.mark.realdata
def test_parameters_and_log_likelihood_match_the_paper(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)
    summary = fitted.summary()
    assert list(summary.columns) == ["estimate", "se", "lower 95%", "upper 95%"]
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 2357


@pytest.mark.realdata
def test_gradient_matches_finite_differences(cdnow_summary):
    d = cdnow_summary
    (x, t_x, T), w, _ = compress(*(np.asarray(d[c], dtype=float) for c in ("x", "t_x", "T")))
    data = (x, t_x, T, w)
    for params in ([0.553, 10.578, 0.606, 11.669], [0.3, 3.0, 2.0, 40.0], [5.0, 100.0, 0.05, 0.5]):
        log_params = np.log(params)
        _, grad = ParetoNBD._neg_log_likelihood(log_params, data)
        step = 1e-6
        numeric = [
            (
                ParetoNBD._neg_log_likelihood(log_params + e, data)[0]
                - ParetoNBD._neg_log_likelihood(log_params - e, data)[0]
            )
            / (2 * step)
            for e in np.eye(4) * step
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.realdata
def test_compressed_weights_give_the_same_fit(cdnow_summary, fitted):
    rows = cdnow_summary.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
    model = ParetoNBD().fit(rows.x, rows.t_x, rows["T"], weights=rows.n)
    np.testing.assert_allclose(model.params_, fitted.params_, rtol=1e-6)
    assert model.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


@pytest.mark.parametrize(
    "params", [(0.553, 10.578, 0.606, 11.669), (0.5, 60.0, 0.5, 300.0), (2.0, 300.0, 3.0, 20.0)]
)
def test_likelihood_equals_the_papers_hypergeometric_formula(params):
    x = np.array([0, 1, 2, 5, 1, 3, 0])
    t_x = np.array([0, 1.0, 20.0, 30.0, 38.0, 5.0, 0])
    T = np.array([38.86, 38.86, 30.0, 38.0, 38.5, 100.0, 1.0])
    got = with_params(params).log_likelihood_per_customer(x, t_x, T)
    want = [paper_log_likelihood(*params, *row) for row in zip(x, t_x, T, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.realdata
def test_probability_alive_is_in_0_1_and_rises_with_recency(fitted):
    recency = np.linspace(0.5, 38.86, 40)
    p = fitted.probability_alive(np.full(40, 3), recency, np.full(40, 38.86))
    assert np.all((p > 0) & (p <= 1)) and np.all(np.diff(p) > 0)
    one_timer = fitted.probability_alive(0, 0, 38.86)[0]
    assert 0 < one_timer < 1  # unlike BG/NBD, a one-time buyer may be gone


@pytest.mark.realdata
def test_predictions_of_the_fitted_model(fitted):
    # customer 1 of the sample (x = 2, t_x = 30.43, T = 38.86) over the 39-week holdout
    expected = fitted.predict_purchases(39, 2, 30.43, 38.86)[0]
    p_alive = fitted.probability_alive(2, 30.43, 38.86)[0]
    r, alpha, s, beta = fitted.params_
    closed = (
        (r + 2)
        * (beta + 38.86)
        / ((alpha + 38.86) * (s - 1))
        * (1 - ((beta + 38.86) / (beta + 77.86)) ** (s - 1))
    )
    assert expected == pytest.approx(closed * p_alive, rel=1e-12)
    assert 0 < p_alive < 1 and 0 < expected < 39
    new = fitted.expected_purchases_new([0, 1, 39, 78])
    assert new[0] == 0 and np.all(np.diff(new) > 0)


def test_s_equal_to_one_is_the_limit():
    at_one = with_params((0.5, 10.0, 1.0, 12.0))
    near = [with_params((0.5, 10.0, 1 + eps, 12.0)) for eps in (-1e-7, 1e-7)]
    args = (39, [0, 2, 10], [0, 30.0, 35.0], [38.86, 38.86, 38.86])
    for model in near:
        np.testing.assert_allclose(model.predict_purchases(*args), at_one.predict_purchases(*args), rtol=1e-6)
        np.testing.assert_allclose(
            model.expected_purchases_new([1, 50]), at_one.expected_purchases_new([1, 50]), rtol=1e-6
        )
    assert at_one.expected_purchases_new(12.0) == pytest.approx(0.5 * 12 / 10 * np.log(2))


@pytest.mark.parametrize(
    "params",
    [
        (0.5, 60.0, 0.5, 300.0),  # days
        (0.1, 1e-3, 20.0, 1e4),  # α far below β
        (30.0, 1e4, 0.01, 1e-3),  # α far above β
        (0.5, 50.0, 1.0, 50.0),  # s = 1 and α = β
        (3e6, 3e-7, 3e-7, 3e6),  # at the optimiser's bounds
    ],
)
def test_extreme_inputs_give_finite_answers(params):
    model = with_params(params)
    x = np.repeat([0.0, 1, 10, 200, 1000], 5)
    T = np.tile([1.0, 100, 5000, 5000, 5000], 5)
    t_x = np.where(x > 0, np.minimum(np.tile([0.5, 1e-3, 1e-3, 2500, 4999.999], 5), T), 0.0)
    ll = model.log_likelihood_per_customer(x, t_x, T)
    p = model.probability_alive(x, t_x, T)
    future = model.predict_purchases(5000, x, t_x, T)
    assert (
        np.all(np.isfinite(ll))
        and np.all((p >= 0) & (p <= 1))
        and np.all(np.isfinite(future) & (future >= 0))
    )
    assert np.all(np.isfinite(model.expected_purchases_new([0, 1, 5000])))
    # a customer first seen on the last day (T = 0) carries no information
    assert model.log_likelihood_per_customer(0, 0, 0)[0] == pytest.approx(0, abs=1e-9)
    assert model.probability_alive(0, 0, 0)[0] == 1
    # more recent last purchases never make a customer less likely alive
    recency = np.linspace(0, 5000, 30)
    for n in (1, 1000):
        p = model.probability_alive(np.full(30, n), recency, np.full(30, 5000.0))
        assert np.all(np.diff(p) >= -1e-12)


def test_probability_alive_and_predictions_match_a_simulation():
    n, horizon = 100_000, 39.0
    x, t_x, T, future, alive = simulate(n, TRUE, (27, 39), horizon, seed=1)
    model = with_params(TRUE)
    p = model.probability_alive(x, t_x, T)
    expected = model.predict_purchases(horizon, x, t_x, T)
    for group in (x == 0, (x > 0) & (x < 4), x >= 4):
        k = group.sum()
        assert abs(p[group].mean() - alive[group].mean()) < 4 * np.sqrt(0.25 / k)
        assert abs(expected[group].mean() - future[group].mean()) < 4 * future[group].std() / np.sqrt(k)
    # new customers: purchases in (0, t]
    for t in (5.0, 50.0):
        new_x = simulate(n, TRUE, (t, t), seed=2)[0]
        assert abs(model.expected_purchases_new(t) - new_x.mean()) < 4 * new_x.std() / np.sqrt(n)


def test_fit_recovers_simulated_parameters():
    x, t_x, T, _, _ = simulate(20_000, TRUE, (20, 80), seed=3)
    model = ParetoNBD().fit(x, t_x, T)
    for name, true in zip(ParetoNBD.param_names, TRUE, strict=True):
        assert abs(model.params_[name] - true) < 4 * model.standard_errors_[name], name


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        ParetoNBD().probability_alive([1], [1], [2])
    with pytest.raises(ValueError, match="recency vector are larger than T"):
        ParetoNBD().fit([1, 2], [5, 3], [4, 4])
    with pytest.raises(ValueError, match="frequency 0"):
        ParetoNBD().fit([0, 0, 0, 0], [0, 0, 0, 0], [4, 5, 6, 7])
    with pytest.raises(ValueError, match="missing or infinite"):
        ParetoNBD().fit([1, np.nan], [1, 1], [4, 4])
    with pytest.raises(ValueError, match="T must be >= 0"):
        ParetoNBD().fit([1, 0], [0, 0], [1, -1])
    with pytest.raises(ValueError, match="parameter 'penalizer' must be >= 0"):
        ParetoNBD(penalizer=-1).fit([1], [1], [2])
    with pytest.raises(ValueError, match="at least 12 different inputs; got 1"):
        ParetoNBD().fit([2, 2], [3.0, 3.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="at least 12 different inputs; got 4"):
        ParetoNBD().fit([2, 0, 1, 5], [3.0, 0, 1, 4], [4.0, 4, 5, 6])
    with pytest.raises(ValueError, match="horizon"):
        with_params(TRUE).predict_purchases(-1, [1], [1], [2])
    with pytest.raises(ValueError, match="missing or infinite"):
        with_params(TRUE).expected_purchases_new([1, np.inf])


def test_data_without_dropout_fail_with_a_clear_message():
    x, t_x, T, _, _ = simulate(5000, (0.55, 10.6, 1.0, 1e9), (20, 80), seed=0)  # lifetimes ~ 1e9 weeks
    with pytest.raises(ConvergenceError, match="the data show no dropout"):
        ParetoNBD().fit(x, t_x, T)


def test_docstring_examples_run():
    assert doctest.testmod(paretonbd).failed == 0

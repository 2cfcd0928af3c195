"""MBG/NBD against Batislam, Denizel & Filiztekin (2007) on the CDNOW sample, the hypergeometric
formulas, a simulation of the model, and extreme inputs."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from microseg.errors import NotFittedError
from microseg.models.clv import ConvergenceError, mbgnbd
from microseg.models.clv.base import compress
from microseg.models.clv.mbgnbd import MBGNBD

PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
TRUE = (0.525, 6.183, 0.891, 1.614)


def with_params(params) -> MBGNBD:
    model = MBGNBD()
    model.params_ = pd.Series(dict(zip(MBGNBD.param_names, params, strict=True)))
    return model


def simulate(n, params, T_range, horizon=0.0, seed=0):
    """Customers of the MBG/NBD model: (x, t_x, T) in (0, T], purchases in (T, T + horizon],
    alive at T. After every purchase, the first (time 0) included, a coin with P(drop) = p."""
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    rate = rng.gamma(r, 1 / alpha, n)
    repeats_before_drop = rng.geometric(rng.beta(a, b, n)) - 1  # survived tosses before the fatal one
    T = np.round(rng.uniform(*T_range, n) * 7) / 7  # whole days, in weeks
    events = rng.poisson(rate * T)  # Poisson events in (0, T] had the customer stayed
    x = np.minimum(repeats_before_drop, events).astype(float)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(events - x, 0) + 1), 0.0)
    alive = repeats_before_drop > events
    future = np.where(alive, np.minimum(repeats_before_drop - events, rng.poisson(rate * horizon)), 0)
    return x, t_x, T, future, alive


@pytest.fixture(scope="module")
def fitted(cdnow_summary) -> MBGNBD:
    d = cdnow_summary
    return MBGNBD().fit(d.x, d.t_x, d["T"])


@pytest.mark.realdata
def test_parameters_match_the_paper(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    summary = fitted.summary()
    assert list(summary.columns) == ["estimate", "se", "lower 95%", "upper 95%"]
    assert (summary.se > 0).all() and summary.attrs["n_customers"] == 2357
    assert np.isfinite(fitted.log_likelihood_)


@pytest.mark.realdata
def test_gradient_matches_finite_differences(cdnow_summary):
    d = cdnow_summary
    (x, t_x, T), w, _ = compress(*(np.asarray(d[c], dtype=float) for c in ("x", "t_x", "T")))
    data = (x, t_x, T, w)
    for params in (TRUE, (0.3, 3.0, 2.0, 40.0), (5.0, 100.0, 0.05, 0.5)):
        log_params = np.log(params)
        _, grad = MBGNBD._neg_log_likelihood(log_params, data)
        step = 1e-6
        numeric = [
            (
                MBGNBD._neg_log_likelihood(log_params + e, data)[0]
                - MBGNBD._neg_log_likelihood(log_params - e, data)[0]
            )
            / (2 * step)
            for e in np.eye(4) * step
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)


@pytest.mark.realdata
def test_compressed_weights_give_the_same_fit(cdnow_summary, fitted):
    rows = cdnow_summary.groupby(["x", "t_x", "T"]).size().reset_index(name="n")
    model = MBGNBD().fit(rows.x, rows.t_x, rows["T"], weights=rows.n)
    np.testing.assert_allclose(model.params_, fitted.params_, rtol=1e-6)
    assert model.log_likelihood_ == pytest.approx(fitted.log_likelihood_, abs=1e-6)


@pytest.mark.realdata
def test_probability_alive_is_in_0_1_and_rises_with_recency(fitted):
    recency = np.linspace(0.5, 38.86, 40)
    p = fitted.probability_alive(np.full(40, 3), recency, np.full(40, 38.86))
    assert np.all((p > 0) & (p <= 1)) and np.all(np.diff(p) > 0)
    r, alpha, a, b = fitted.params_
    # a one-time buyer may have dropped out right after the first purchase
    assert fitted.probability_alive(0, 0, 38.86)[0] == pytest.approx(
        1 / (1 + a / b * ((alpha + 38.86) / alpha) ** r)
    )


@pytest.mark.parametrize("params", [TRUE, (0.3, 3.0, 2.5, 4.0), (2.0, 40.0, 1.5, 0.5)])
def test_predictions_equal_the_hypergeometric_formulas(params):
    model = with_params(params)
    r, alpha, a, b = params
    x = np.array([0, 1, 2, 5, 3.0])
    t_x = np.array([0, 1.0, 20.0, 30.0, 38.0])
    T = np.array([38.86, 38.86, 30.0, 38.0, 38.5])
    for t in (1.0, 39.0, 200.0):
        z = t / (alpha + T + t)
        bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x + 1, a + b + x, z)
        want = (a + b + x) / (a - 1) * bracket * model.probability_alive(x, t_x, T)
        np.testing.assert_allclose(model.predict_purchases(t, x, t_x, T), want, rtol=1e-10)
    t = np.array([1.0, 10.0, 39.0, 500.0])
    want_new = b / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b + 1, a + b, t / (alpha + t)))
    np.testing.assert_allclose(model.expected_purchases_new(t), want_new, rtol=1e-10)
    assert model.expected_purchases_new(0) == 0


def test_a_equal_to_one_is_finite_and_continuous():
    at_one = with_params((0.5, 6.0, 1.0, 1.6))
    near = with_params((0.5, 6.0, 1.0 + 1e-7, 1.6))
    args = (39, [0, 2, 10], [0, 30.0, 35.0], [38.86, 38.86, 38.86])
    np.testing.assert_allclose(near.predict_purchases(*args), at_one.predict_purchases(*args), rtol=1e-6)
    np.testing.assert_allclose(
        near.expected_purchases_new([1, 50]), at_one.expected_purchases_new([1, 50]), rtol=1e-6
    )


@pytest.mark.parametrize(
    "params",
    [
        (0.5, 43.0, 0.9, 1.6),  # days
        (0.1, 1e-3, 20.0, 1e4),
        (30.0, 1e4, 0.01, 1e-3),
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
    assert model.log_likelihood_per_customer(0, 0, 0)[0] == pytest.approx(0, abs=1e-9)
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
    # new customers: repeat purchases in (0, t]; b/(a-1)[...], not (a+b)/(a-1)[...]: the first
    # toss, right after the first purchase, keeps a new customer with probability b/(a+b)
    r, alpha, a, b = TRUE
    for t in (5.0, 50.0):
        new_x = simulate(n, TRUE, (t, t), seed=2)[0]
        tolerance = 4 * new_x.std() / np.sqrt(n)
        assert abs(model.expected_purchases_new(t) - new_x.mean()) < tolerance
        assert abs(model.expected_purchases_new(t) * (a + b) / b - new_x.mean()) > tolerance


def test_fit_recovers_simulated_parameters():
    x, t_x, T, _, _ = simulate(20_000, TRUE, (20, 80), seed=3)
    model = MBGNBD().fit(x, t_x, T)
    for name, true in zip(MBGNBD.param_names, TRUE, strict=True):
        assert abs(model.params_[name] - true) < 4 * model.standard_errors_[name], name


def test_bad_input_and_degenerate_data_fail_clearly():
    with pytest.raises(NotFittedError, match="call fit"):
        MBGNBD().probability_alive([1], [1], [2])
    with pytest.raises(ValueError, match="recency vector are larger than T"):
        MBGNBD().fit([1, 2], [5, 3], [4, 4])
    with pytest.raises(ValueError, match="frequency 0"):
        MBGNBD().fit([0, 0, 0, 0], [0, 0, 0, 0], [4, 5, 6, 7])
    with pytest.raises(ValueError, match="missing or infinite"):
        MBGNBD().fit([1, np.nan], [1, 1], [4, 4])
    with pytest.raises(ValueError, match="T must be >= 0"):
        MBGNBD().fit([1, 0], [0, 0], [1, -1])
    with pytest.raises(ValueError, match="parameter 'penalizer' must be >= 0"):
        MBGNBD(penalizer=-1).fit([1], [1], [2])
    with pytest.raises(ValueError, match="at least 12 different inputs; got 1"):
        MBGNBD().fit([2, 2], [3.0, 3.0], [4.0, 4.0])
    with pytest.raises(ValueError, match="at least 12 different inputs; got 4"):
        MBGNBD().fit([2, 0, 1, 5], [3.0, 0, 1, 4], [4.0, 4, 5, 6])
    with pytest.raises(ValueError, match="horizon"):
        with_params(TRUE).predict_purchases(-1, [1], [1], [2])
    with pytest.raises(ValueError, match="missing or infinite"):
        with_params(TRUE).expected_purchases_new([1, np.nan])


def test_data_without_dropout_fail_clearly_or_fit_no_dropout():
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 80, 5000)
    x = rng.poisson(rng.gamma(0.55, 1 / 10.6, 5000) * T).astype(float)  # NBD: nobody ever leaves
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), 1), 0.0)
    try:
        model = MBGNBD().fit(x, t_x, T)
    except ConvergenceError as error:
        assert "the data show no dropout" in str(error)
    else:  # or an estimate at the edge: a negligible dropout probability
        assert model.params_["a"] / (model.params_["a"] + model.params_["b"]) < 1e-3


def test_docstring_examples_run():
    assert doctest.testmod(mbgnbd).failed == 0

"""Every CLV model follows the same estimator contract (one suite for all of them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microseg.errors import NotFittedError
from microseg.models.clv import BGBB, BGNBD, MBGNBD, NBD, GammaGamma, ParetoNBD, ShiftedBetaGeometric


def continuous_data(seed: int = 0, n: int = 3_000):
    """BG/NBD customers: Poisson buying while alive, dropout after each repeat purchase."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(20, 52, n).round(1)
    lam = rng.gamma(0.8, 1 / 6, n)
    p = rng.beta(1.0, 3.0, n)
    x, t_x = np.zeros(n, int), np.zeros(n)
    for i in range(n):
        times = np.sort(rng.uniform(0, T[i], rng.poisson(lam[i] * T[i])))[: rng.geometric(p[i])]
        x[i] = len(times)
        t_x[i] = times[-1].round(1) if len(times) else 0.0
    return (x, t_x, T)


def spend_data(seed: int = 0, n: int = 2_000):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 10, n)
    nu = rng.gamma(3.5, 1 / 15, n)
    m = np.array([rng.gamma(6, 1 / v, k).mean() for v, k in zip(nu, x, strict=True)])
    return (x, m)


def discrete_data(seed: int = 0, n: int = 3_000):
    rng = np.random.default_rng(seed)
    periods = 6
    p = rng.beta(1.2, 0.75, n)
    theta = rng.beta(0.66, 2.8, n)
    x = np.zeros(n, int)
    last = np.zeros(n, int)
    alive = np.ones(n, bool)
    for t in range(1, periods + 1):
        alive &= rng.random(n) > theta
        buy = alive & (rng.random(n) < p)
        x += buy
        last = np.where(buy, t, last)
    return (x, last, np.full(n, periods))


def survival_data(seed: int = 0, n: int = 2_000):
    rng = np.random.default_rng(seed)
    theta = rng.beta(0.7, 1.2, n)
    lifetime = rng.geometric(theta)
    return (np.minimum(lifetime, 8), np.full(n, 8))


MODELS = [
    (BGNBD, continuous_data),
    (ParetoNBD, continuous_data),
    (MBGNBD, continuous_data),
    (NBD, continuous_data),
    (GammaGamma, spend_data),
    (BGBB, discrete_data),
    (ShiftedBetaGeometric, survival_data),
]
IDS = [m.__name__ for m, _ in MODELS]


@pytest.mark.parametrize(("model_class", "data"), MODELS, ids=IDS)
def test_contract(model_class, data):
    model = model_class()
    # parameters stored unchanged, visible, settable
    assert model.get_params() == {"penalizer": 0.0, "max_iter": 1000}
    assert repr(model) == f"{model_class.__name__}(penalizer=0.0, max_iter=1000)"
    assert model.set_params(penalizer=0.01) is model and model.penalizer == 0.01
    model.set_params(penalizer=0.0)
    with pytest.raises(ValueError, match="unknown parameter 'alpha'"):
        model.set_params(alpha=3)
    # learned state only after fit, which returns self
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.summary()
    assert model.fit(*data()) is model
    assert list(model.params_.index) == list(model_class.param_names)
    assert np.all(np.isfinite(model.params_)) and np.all(model.params_ > 0)
    summary = model.summary()
    assert list(summary.columns) == ["estimate", "se", "lower 95%", "upper 95%"]
    assert (summary.se > 0).all()
    assert summary.attrs["log_likelihood"] == model.log_likelihood_ < 0
    assert summary.attrs["n_customers"] == len(data()[0])
    assert model.converged_ is True


@pytest.mark.parametrize(("model_class", "data"), MODELS, ids=IDS)
def test_parameter_validation_names_the_parameter(model_class, data):
    with pytest.raises(
        ValueError, match=f"{model_class.__name__}: parameter 'penalizer' must be >= 0, got -1"
    ):
        model_class(penalizer=-1).fit(*data())
    with pytest.raises(ValueError, match="parameter 'max_iter' must be an integer >= 1, got 0"):
        model_class(max_iter=0).fit(*data())


@pytest.mark.parametrize(("model_class", "data"), MODELS, ids=IDS)
def test_fits_are_deterministic_and_independent_of_row_order(model_class, data):
    columns = data()
    first = model_class().fit(*columns).params_
    order = np.random.default_rng(5).permutation(len(columns[0]))
    shuffled = model_class().fit(*(np.asarray(c)[order] for c in columns)).params_
    pd.testing.assert_series_equal(first, shuffled, rtol=1e-7)


@pytest.mark.parametrize(("model_class", "data"), MODELS, ids=IDS)
def test_missing_values_are_refused(model_class, data):
    columns = [np.asarray(c, dtype=float).copy() for c in data()]
    columns[0][3] = np.nan
    with pytest.raises(ValueError, match="missing or infinite|whole numbers"):
        model_class().fit(*columns)

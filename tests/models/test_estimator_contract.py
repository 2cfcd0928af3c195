"""Every model follows the same estimator contract: one suite for all of them.

The first part runs every estimator (the CLV models, the segment forecasters, the clusterer and
the lifecycle rules) through the same API checks, in the spirit of scikit-learn's common
estimator checks; the second part holds what only the CLV models promise (a summary with
standard errors, published parameter names).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from microseg.dynamics.customer_forecast import CustomerForecaster
from microseg.dynamics.forecast import MarkovForecaster
from microseg.errors import InvalidInputError, NotFittedError
from microseg.models.base import Constraint, Estimator, Interval, Optional, Options
from microseg.models.clustering import SegmentClusterer
from microseg.models.clv import BGBB, BGNBD, MBGNBD, NBD, GammaGamma, ParetoNBD, ShiftedBetaGeometric
from microseg.models.lifecycle import LifecycleModel


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


def snapshot_data(seed: int = 0, n: int = 150):
    """Monthly segment snapshots: customers drift between stages, some leave, some arrive."""
    rng = np.random.default_rng(seed)
    stages = np.array(["active", "at_risk", "churned"])
    moves = np.array([[0.75, 0.2, 0.05], [0.3, 0.45, 0.25], [0.05, 0.05, 0.9]])
    state = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    tier = rng.choice(np.array(["gold", "silver"]), n)
    rows = []
    for as_of in pd.date_range("2024-01-31", periods=4, freq="ME"):
        present = rng.random(n) > 0.05
        since_last = rng.integers(1, 200, n)
        rhythm = rng.uniform(10, 60, n).round(1)
        clv = rng.gamma(2.0, 50.0, n).round(2)
        for i in np.flatnonzero(present):
            rows.append((f"c{i:04d}", as_of, stages[state[i]], tier[i], since_last[i], rhythm[i], clv[i]))
        state = np.array([rng.choice(3, p=moves[s]) for s in state])
    columns = ["customer_id", "as_of", "state", "group", "days_since_last_purchase", "rhythm_days", "clv"]
    return (pd.DataFrame(rows, columns=columns),)


def latest_snapshot(data) -> pd.DataFrame:
    snapshots = data[0]
    return snapshots[snapshots["as_of"] == snapshots["as_of"].max()].reset_index(drop=True)


def feature_data(seed: int = 0, n: int = 300):
    """Three well separated blobs of customers in three features."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 1.0], [0.0, 5.0, 2.0]])
    return (np.vstack([rng.normal(c, 0.5, (n // 3, 3)) for c in centres]),)


def profile_data(seed: int = 0, n: int = 300):
    """Customer profiles with the columns the lifecycle rules read (prospects included)."""
    rng = np.random.default_rng(seed)
    transactions = rng.integers(0, 8, n)
    bought = transactions > 0
    since_first = np.where(bought, rng.integers(1, 900, n), np.nan)
    since_last = np.where(bought, np.floor(since_first * rng.uniform(0, 1, n)), np.nan)
    rhythm = np.where(transactions > 1, rng.uniform(5, 120, n).round(1), np.nan)
    since_return = np.where(bought & (rng.random(n) < 0.1), since_last, np.nan)
    return (
        pd.DataFrame(
            {
                "transactions": transactions,
                "days_since_first_purchase": since_first,
                "days_since_last_purchase": since_last,
                "rhythm_days": rhythm,
                "days_since_return": since_return,
                "p_alive": np.where(bought, rng.uniform(0, 1, n), np.nan),
            }
        ),
    )


def _with(data: tuple, column: int, row, value) -> tuple:
    """``data`` with one value replaced."""
    columns = [np.asarray(c, dtype=float).copy() for c in data]
    columns[column][row] = value
    return tuple(columns)


def one_date_snapshots() -> tuple:
    snapshots = snapshot_data()[0]
    return (snapshots[snapshots["as_of"] == snapshots["as_of"].min()],)


def too_many_states() -> tuple:
    snapshots = snapshot_data()[0].copy()
    snapshots["state"] = [f"segment {i % 300}" for i in range(len(snapshots))]
    return (snapshots,)


@dataclass(frozen=True)
class Case:
    """An estimator with quick settings, its fit arguments for a seed, and the methods that
    use what it learned (each called with the model and the fit arguments)."""

    make: Callable[[], Estimator]
    data: Callable[[int], tuple]
    uses: tuple[Callable[[Any, tuple], Any], ...]
    #: fit arguments that must be refused, and what the error names
    bad_data: Callable[[], tuple]
    culprit: str


def _repeat_buying(model_class) -> Case:
    return Case(
        model_class,
        continuous_data,
        (
            lambda m, d: m.predict_purchases(4.0, *d),
            lambda m, d: m.probability_alive(*d),
            lambda m, d: m.summary(),
        ),
        lambda: _with(continuous_data(), 0, 3, -1),
        "frequency",
    )


CASES = {
    "BGNBD": _repeat_buying(BGNBD),
    "ParetoNBD": _repeat_buying(ParetoNBD),
    "MBGNBD": _repeat_buying(MBGNBD),
    "NBD": _repeat_buying(NBD),
    "GammaGamma": Case(
        GammaGamma,
        spend_data,
        (lambda m, d: m.expected_spend(*d), lambda m, d: m.summary()),
        lambda: _with(spend_data(), 1, 0, -5.0),
        "monetary_value",
    ),
    "BGBB": Case(
        BGBB,
        discrete_data,
        (lambda m, d: m.predict_purchases(3, *d), lambda m, d: m.probability_alive(*d)),
        lambda: _with(discrete_data(), 1, 0, 9),
        "recency",
    ),
    "ShiftedBetaGeometric": Case(
        ShiftedBetaGeometric,
        survival_data,
        (lambda m, d: m.survival(np.arange(1, 6)), lambda m, d: m.expected_lifetime()),
        lambda: _with(survival_data(), 0, 0, 0),
        "recency",
    ),
    "MarkovForecaster": Case(
        lambda: MarkovForecaster(condition_on_group=True, min_group_size=10),
        snapshot_data,
        (
            lambda m, d: m.predict_proba(latest_snapshot(d)),
            lambda m, d: m.predict_sizes(latest_snapshot(d), periods=2),
            lambda m, d: m.at_risk(latest_snapshot(d)),
        ),
        one_date_snapshots,
        "at least 2 dates",
    ),
    "CustomerForecaster": Case(
        lambda: CustomerForecaster(max_iter=10, min_samples_leaf=5),
        snapshot_data,
        (
            lambda m, d: m.predict_proba(latest_snapshot(d)),
            lambda m, d: m.at_risk(latest_snapshot(d)),
        ),
        too_many_states,
        "state has 300 values",
    ),
    "SegmentClusterer": Case(
        lambda: SegmentClusterer(k_max=4, sample_size=200, n_init=2, n_seeds=3),
        feature_data,
        (lambda m, d: m.predict(*d), lambda m, d: m.transform(*d)),
        lambda: _with(feature_data(), 0, (4, 1), np.nan),
        r"missing or infinite value \(row 4, column 1\)",
    ),
    "LifecycleModel": Case(
        LifecycleModel,
        profile_data,
        (lambda m, d: m.predict(*d), lambda m, d: m.lateness(*d)),
        lambda: (profile_data()[0].drop(columns="rhythm_days"),),
        "missing column 'rhythm_days'",
    ),
}


def _assert_same(first, second) -> None:
    if isinstance(first, pd.DataFrame):
        pd.testing.assert_frame_equal(first, second)
    elif isinstance(first, pd.Series):
        pd.testing.assert_series_equal(first, second)
    else:
        np.testing.assert_array_equal(first, second)


def _invalid(constraint: Constraint) -> Any:
    """A value the constraint refuses."""
    if isinstance(constraint, Optional):
        return _invalid(constraint.inner)
    if isinstance(constraint, Options):
        return "none of the options"
    assert isinstance(constraint, Interval)
    return constraint.low - 1 if constraint.low is not None else constraint.high + 1


@pytest.fixture(params=sorted(CASES))
def case(request) -> Case:
    return CASES[request.param]


def test_every_parameter_is_declared_and_its_default_allowed(case):
    model = case.make()
    names = type(model)._param_names()
    assert sorted(type(model)._constraints) == sorted(names)
    for name in names:
        assert type(model)._constraints[name].accepts(getattr(model, name)), name


def test_init_stores_the_parameters_unchanged_and_learns_nothing(case):
    model = case.make()
    markers = {name: object() for name in model.get_params()}
    stored = type(model)(**markers)  # no check, no conversion: validation happens at fit
    assert all(getattr(stored, name) is marker for name, marker in markers.items())
    assert sorted(vars(model)) == sorted(model.get_params())


def test_a_bad_parameter_is_refused_at_fit_naming_it(case):
    for name, constraint in type(case.make())._constraints.items():
        bad = _invalid(constraint)
        model = case.make().set_params(**{name: bad})
        assert not constraint.accepts(bad)
        with pytest.raises(InvalidInputError, match=f"parameter '{name}' must be .*, got {bad!r}"):
            model.fit(*case.data(0))


def test_unknown_parameters_are_refused(case):
    with pytest.raises(InvalidInputError, match="unknown parameter 'no_such_parameter'"):
        case.make().set_params(no_such_parameter=1)


def test_use_before_fit_raises_not_fitted(case):
    data = case.data(0)
    for use in case.uses:
        with pytest.raises(NotFittedError, match="not fitted yet"):
            use(case.make(), data)


def test_fit_returns_self_keeps_the_parameters_and_learns_state_ending_in_underscore(case):
    model = case.make()
    params = model.get_params()
    assert model.fit(*case.data(0)) is model
    assert model.get_params() == params
    learned = set(vars(model)) - set(params)
    public = {name for name in learned if not name.startswith("_")}
    assert public and all(name.endswith("_") for name in public), sorted(public)
    for use in case.uses:
        use(model, case.data(0))


def test_bad_data_is_refused_naming_the_culprit_and_leaves_the_model_unfitted(case):
    model = case.make()
    with pytest.raises(InvalidInputError, match=case.culprit):
        model.fit(*case.bad_data())
    assert sorted(vars(model)) == sorted(model.get_params())
    with pytest.raises(NotFittedError):
        case.uses[0](model, case.data(0))


def test_fit_leaves_its_input_unchanged(case):
    data = case.data(0)
    kept = copy.deepcopy(data)
    case.make().fit(*data)
    for given, original in zip(data, kept, strict=True):
        _assert_same(given, original)


def test_a_refit_replaces_everything_learned_before(case):
    fresh = case.make().fit(*case.data(2))
    refitted = case.make().fit(*case.data(0)).fit(*case.data(2))
    for use in case.uses:
        _assert_same(use(refitted, case.data(2)), use(fresh, case.data(2)))


def test_clone_and_params_round_trip(case):
    model = case.make().fit(*case.data(0))
    twin = clone(model)
    assert type(twin) is type(model) and twin is not model
    assert twin.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        case.uses[0](twin, case.data(0))
    rebuilt = type(model)().set_params(**model.get_params())
    assert rebuilt.get_params() == model.get_params()
    assert repr(rebuilt) == repr(model)
    assert repr(model).startswith(type(model).__name__ + "(")
    assert all(f"{name}=" in repr(model) for name in model.get_params())


def test_a_fitted_model_survives_pickling(case):
    model = case.make().fit(*case.data(0))
    restored = pickle.loads(pickle.dumps(model))
    for use in case.uses:
        _assert_same(use(restored, case.data(0)), use(model, case.data(0)))


# --- what only the CLV models promise ------------------------------------------------------------


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


@pytest.mark.parametrize(("model_class", "data"), MODELS, ids=IDS)
def test_customers_of_weight_zero_change_nothing(model_class, data):
    columns = data()
    others = data(7)
    padded = [
        np.concatenate([np.asarray(c, float), np.asarray(o, float)])
        for c, o in zip(columns, others, strict=True)
    ]
    weights = np.concatenate([np.ones(len(columns[0])), np.zeros(len(others[0]))])
    plain = model_class().fit(*columns)
    padded_fit = model_class().fit(*padded, weights=weights)
    pd.testing.assert_series_equal(padded_fit.params_, plain.params_, rtol=1e-7)
    assert padded_fit.n_customers_ == plain.n_customers_ == len(columns[0])

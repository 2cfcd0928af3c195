"""Two forecasts of next period's segments, a backtest that scores both, and the choice made.

* the **group chain** (:class:`~microseg.dynamics.forecast.MarkovForecaster`): every customer
  of a (segment, group) moves with the same probabilities;
* the **customer model** (:class:`~microseg.dynamics.customer_forecast.CustomerForecaster`):
  each customer's probabilities from their own history.

:func:`compare_models` backtests both on past snapshots: at each origin (a snapshot date whose
next period is a full one, with at least ``min_train_periods`` full periods before it) both
models learn from the history up to the origin only, predict each customer's segment at the
next date, and are scored against what happened:

* **log-loss**: the mean of -log(probability given to the segment the customer was in), the
  probabilities clipped at 1e-15 so that an outcome a model called impossible costs 34.5 and
  not infinity; lower is better;
* **Brier score**: the mean over customers of the squared distance between the predicted
  probabilities and the outcome (1 for the segment reached, 0 for the others), from 0 (sure
  and right) to 2 (sure and wrong); lower is better;
* **MAE of the segment shares**, as the chain's backtest (:func:`~microseg.dynamics.forecast.backtest`),
  next to "the shares stay as they are" (``mae_naive``).

:func:`choose` states the rule: with ``auto`` the customer model is used when its mean log-loss
*and* its mean Brier score over the backtest origins are both lower than the chain's; otherwise
(including when there are too few full periods to backtest) the chain, the simpler model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from microseg.dynamics.customer_forecast import CustomerForecaster
from microseg.dynamics.forecast import GONE, MarkovForecaster, at_risk_table
from microseg.dynamics.periods import Periods
from microseg.errors import InvalidInputError

CHAIN, CUSTOMER, AUTO = "chain", "customer", "auto"
MODEL_SETTINGS = (AUTO, CHAIN, CUSTOMER)
#: How each model is named in output.
MODEL_NAMES = {CHAIN: "group chain", CUSTOMER: "customer model"}
#: Layers with more segments than this are forecast by the chain only (a tree model per segment
#: of a 30-cluster layer would cost much and learn little from each).
MAX_CUSTOMER_STATES = 12
#: Floor of a probability in the log-loss.
EPSILON = 1e-15
BACKTEST_COLUMNS = [
    "as_of",
    "target",
    "customers",
    "mae_chain",
    "mae_customer",
    "mae_naive",
    "log_loss_chain",
    "log_loss_customer",
    "brier_chain",
    "brier_customer",
]


def scores(proba: pd.DataFrame, actual: Iterable) -> tuple[float, float]:
    """(log-loss, Brier score) of next-period probabilities against the segments reached.

    ``proba``: one row per customer, one column per segment; ``actual``: the segment each
    customer reached, in the same order (a segment without a column had probability 0).

    >>> proba = pd.DataFrame({"active": [0.8, 0.5], "at_risk": [0.2, 0.5]})
    >>> [round(x, 4) for x in scores(proba, ["active", "at_risk"])]
    [0.4581, 0.29]
    """
    actual = np.asarray(list(actual), dtype=object)
    values = proba.to_numpy(dtype=float)
    if len(actual) != len(values):
        raise InvalidInputError(f"scores: {len(values)} rows of probabilities but {len(actual)} outcomes")
    if not len(actual):
        return float("nan"), float("nan")
    column = pd.Index(proba.columns).get_indexer(actual)
    reached = np.where(column >= 0, values[np.arange(len(values)), np.maximum(column, 0)], 0.0)
    log_loss = float(-np.log(np.clip(reached, EPSILON, 1.0)).mean())
    brier = float(((values**2).sum(axis=1) - 2 * reached + 1).mean())
    return log_loss, brier


def compare_models(
    snapshots: pd.DataFrame,
    *,
    skip: Iterable = (),
    min_train_periods: int = 2,
    chain_options: dict | None = None,
    customer_options: dict | None = None,
) -> pd.DataFrame:
    """Rolling-origin backtest of both models (see the module docs): one row per origin with
    ``BACKTEST_COLUMNS``. Periods ending on a date in ``skip`` are neither learned nor forecast.
    Without ``customer_options`` only the chain is scored (its columns of the customer model are
    empty).

    ``snapshots`` has ``customer_id, as_of, state``, ``group`` when the chain is conditioned on
    it, and the history columns the customer model reads.
    """
    frame = snapshots.assign(as_of=pd.to_datetime(snapshots["as_of"]).dt.normalize())
    dates = pd.DatetimeIndex(frame["as_of"].unique()).sort_values()
    skipped = dates[1:].isin(pd.DatetimeIndex(pd.to_datetime(list(skip))).normalize())
    rows = []
    for k in range(len(dates) - 1):
        if skipped[k] or (~skipped[:k]).sum() < min_train_periods:
            continue
        origin, target = dates[k], dates[k + 1]
        train = frame[frame["as_of"] <= origin]
        learned_skip = dates[1 : k + 1][skipped[:k]]
        current = frame[frame["as_of"] == origin].reset_index(drop=True)
        following = frame[frame["as_of"] == target]
        reached = (
            current["customer_id"]
            .map(following.set_index("customer_id")["state"])
            .astype(object)
            .fillna(GONE)
        )
        states = sorted(map(str, frame.loc[frame["as_of"] <= target, "state"].unique()))
        chain = MarkovForecaster(**(chain_options or {})).fit(train, skip=learned_skip)
        chain_proba = chain.predict_proba(current)
        row = {"as_of": origin, "target": target, "customers": len(current)}
        actual = _shares(following["state"].value_counts(), states)
        row["mae_naive"] = _mae(_shares(current["state"].value_counts(), states), actual)
        row["mae_chain"] = _mae(_shares(chain.predict_sizes(current), states), actual)
        row["log_loss_chain"], row["brier_chain"] = scores(chain_proba, reached)
        if customer_options is not None:
            customer = CustomerForecaster(**customer_options).fit(train, skip=learned_skip)
            own = customer.predict_proba(current)
            sizes = chain.predict_sizes(current, first_step=own)
            row["mae_customer"] = _mae(_shares(sizes, states), actual)
            row["log_loss_customer"], row["brier_customer"] = scores(own, reached)
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=BACKTEST_COLUMNS)
    for column in BACKTEST_COLUMNS[3:]:
        table[column] = table[column].astype(float)
    return table


@dataclass(frozen=True)
class Choice:
    """Which model forecasts, and why (``reason`` is a sentence for the user)."""

    model: str
    reason: str

    @property
    def name(self) -> str:
        return MODEL_NAMES[self.model]


def choose(backtest: pd.DataFrame, setting: str = AUTO) -> Choice:
    """The model to use: ``setting`` when it names one, else by the backtest (module docs).

    >>> table = pd.DataFrame({"log_loss_chain": [0.5, 0.4], "log_loss_customer": [0.3, 0.3],
    ...                       "brier_chain": [0.2, 0.2], "brier_customer": [0.1, 0.15]})
    >>> choose(table).model
    'customer'
    >>> choose(table, "chain").reason
    'the group chain, as set by dynamics.forecast_model'
    """
    if setting not in MODEL_SETTINGS:
        raise InvalidInputError(f"forecast model must be one of {', '.join(MODEL_SETTINGS)}, got {setting!r}")
    if setting != AUTO:
        return Choice(setting, f"the {MODEL_NAMES[setting]}, as set by dynamics.forecast_model")
    scored = backtest.dropna(subset=["log_loss_chain", "log_loss_customer", "brier_chain", "brier_customer"])
    if scored.empty:
        return Choice(
            CHAIN, "the group chain: too few full periods to backtest the customer model against it"
        )
    means = scored[["log_loss_chain", "log_loss_customer", "brier_chain", "brier_customer"]].mean()
    better = (
        means["log_loss_customer"] < means["log_loss_chain"]
        and means["brier_customer"] < means["brier_chain"]
    )
    origins = f"{len(scored)} backtest origin{'s' if len(scored) != 1 else ''}"
    figures = (
        f"mean log-loss {means['log_loss_customer']:.3f} (customer model) vs {means['log_loss_chain']:.3f} "
        f"(group chain), Brier score {means['brier_customer']:.3f} vs {means['brier_chain']:.3f}, "
        f"over {origins}"
    )
    if better:
        return Choice(CUSTOMER, f"the customer model, better on both scores: {figures}")
    return Choice(CHAIN, f"the group chain, as the customer model is not better on both scores: {figures}")


@dataclass
class Forecast:
    """Both models fitted on the stored snapshots, the backtest and the choice made.

    ``current``: the customers at the latest snapshot (which may end a stub period: its
    customers are where they are now, but it is not learned from); ``periods``: the periods
    of the snapshots (which were learned from).
    """

    chain: MarkovForecaster
    customer: CustomerForecaster | None
    choice: Choice
    backtest: pd.DataFrame
    current: pd.DataFrame
    periods: Periods
    notes: list[str] = field(default_factory=list)

    def proba(self) -> pd.DataFrame:
        """Each current customer's probability of each segment next period (chosen model)."""
        if self.choice.model == CUSTOMER and self.customer is not None:
            return self.customer.predict_proba(self.current)
        return self.chain.predict_proba(self.current)

    def sizes(self, periods: int = 1) -> pd.Series:
        """Expected segment sizes after ``periods``: the chosen model for the first period,
        then the chain (each customer's history is only known up to now)."""
        first = self.proba() if self.choice.model == CUSTOMER and self.customer is not None else None
        return self.chain.predict_sizes(self.current, periods=periods, first_step=first)

    def at_risk(self, to_states: Iterable[str] | str = ("at_risk", "churned")) -> pd.DataFrame:
        """``state, p_move, clv, clv_at_stake`` per current customer (chosen model)."""
        return at_risk_table(self.proba(), self.current, to_states)


def build_forecast(
    states: pd.DataFrame,
    periods: Periods,
    *,
    setting: str = AUTO,
    smoothing: float = 0.5,
    window: int = 3,
    condition_on_group: bool = True,
) -> Forecast:
    """Fit the models on the full periods of ``states`` (see :func:`compare_models` for the
    columns), backtest them and choose one (:func:`choose`)."""
    frame = states.assign(as_of=pd.to_datetime(states["as_of"]).dt.normalize())
    if not periods.full:
        raise InvalidInputError("a forecast needs at least one full period between snapshots")
    latest = frame["as_of"].max()
    current = frame[frame["as_of"] == latest].reset_index(drop=True)
    regular = frame[frame["as_of"].isin(pd.to_datetime(periods.regular_dates))]
    skip = periods.skipped_ends
    chain_options = {"smoothing": smoothing, "condition_on_group": condition_on_group, "window": window}
    n_states = frame["state"].nunique()
    notes = []
    with_customer = setting != CHAIN and n_states <= MAX_CUSTOMER_STATES
    if setting != CHAIN and not with_customer:
        notes.append(
            f"the layer has {n_states} segments; the customer model is fitted for at most "
            f"{MAX_CUSTOMER_STATES}, so the group chain forecasts"
        )
    customer_options = {"window": window} if with_customer else None
    backtest = compare_models(
        regular, skip=skip, chain_options=chain_options, customer_options=customer_options
    )
    chain = MarkovForecaster(**chain_options).fit(regular, skip=skip)
    customer = CustomerForecaster(**customer_options).fit(regular, skip=skip) if with_customer else None
    if with_customer or setting == CHAIN:
        choice = choose(backtest, setting)
    else:
        choice = Choice(CHAIN, "the group chain: " + notes[-1])
    return Forecast(chain, customer, choice, backtest, current, periods, notes)


def _shares(sizes: pd.Series, states: list) -> np.ndarray:
    values = sizes.reindex(states, fill_value=0).to_numpy(dtype=float)
    total = values.sum()
    return values / total if total > 0 else values


def _mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    return float(np.abs(forecast - actual).mean())

"""Where segments are heading: a Markov model of segment transitions, forecasts and a backtest.

The input is a table of *snapshots*: one row per customer per date with the customer's segment
(``state``, e.g. a lifecycle stage) on that date. The distinct dates, sorted, are the snapshot
dates; a *period* is a pair of consecutive snapshot dates.

The model is a first-order Markov chain on the states: where a customer is next period depends
only on where they are now. It is learned by counting, over every period, how many customers
went from each state to each other state (``counts_``) and pooling those counts over the
periods, i.e. the chain is assumed not to change over time. Each row of counts becomes a row of
probabilities with additive (Dirichlet) smoothing: ``smoothing`` pseudo-customers are added to
every cell of a row that has data, so a transition that is possible but was never seen keeps a
small probability, and rare states are not judged on a handful of customers. A state never
seen at the start of a period gets the identity row (its customers stay put): the data say
nothing about it, and staying is the forecast that assumes least.

Customers who are present at one snapshot and missing from the next move to the pseudo-state
``"(gone)"`` (``GONE``), listed last in ``states_`` when it occurs; nobody leaves it (identity
row). Customers who are missing at one snapshot and present at the next are *inflow* (newly
acquired customers, or ones back after a gap): they are not transitions, and ``inflow_`` holds
the mean number of them per period in each state.

With ``condition_on_group`` the chain is learned separately for each ``group`` (for instance
the CLV tier of the customer at the start of the period). Where a group has fewer than
``min_group_size`` customer-periods starting in a state, that row falls back to the pooled row:
a small group borrows the behaviour of everybody rather than inventing its own from noise.

Forecasts: ``predict_proba`` gives each customer's probabilities of being in each state one
period later, ``predict_sizes`` the expected number of customers per state after some periods
(current customers moved through the chain, plus the expected inflow, which moves on in the
periods after it arrives), and ``at_risk`` the chance that each customer moves into a bad state,
weighted by their CLV.

``backtest`` measures whether the model is worth having: at each snapshot date it fits on the
history up to that date, forecasts the segment shares at the next date, and compares the mean
absolute error with that of the naive forecast "the shares stay as they are". The model wins
when the segment mix is drifting in a way the transitions explain.

>>> import pandas as pd
>>> snapshots = pd.DataFrame({
...     "customer_id": ["a", "b", "c", "d", "a", "b", "c", "d", "e"],
...     "as_of": pd.to_datetime(["2024-01-01"] * 4 + ["2024-02-01"] * 5),
...     "state": ["active", "active", "active", "at_risk",
...               "active", "active", "at_risk", "churned", "active"],
... })
>>> model = MarkovForecaster(smoothing=0).fit(snapshots)
>>> model.states_
['active', 'at_risk', 'churned']
>>> model.transition_matrix_.loc["active"].round(3).tolist()
[0.667, 0.333, 0.0]
>>> model.inflow_.tolist()
[1.0, 0.0, 0.0]
>>> model.predict_sizes(snapshots[snapshots["as_of"] == "2024-02-01"]).round(3).tolist()
[3.0, 1.0, 2.0]
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from microseg.errors import InvalidInputError
from microseg.models.base import Estimator, Interval, Options

#: The pseudo-state of customers present at one snapshot and absent from the next.
GONE = "(gone)"


class MarkovForecaster(Estimator):
    """First-order Markov chain of segment states between consecutive snapshots.

    ``fit(snapshots)`` learns, from every period in ``snapshots`` or, with ``window`` > 0, from
    the latest ``window`` periods only (a business whose mix drifts is better described by its
    recent months than by all of its history) -- columns ``customer_id``, ``as_of``, ``state``
    and, with ``condition_on_group``, ``group``:

    * ``states_``: the states seen, sorted (``GONE`` last, when a customer disappeared);
    * ``counts_``: transitions counted over the periods learned from (rows: from, columns: to);
    * ``transition_matrix_``: the smoothed probabilities; rows sum to 1;
    * ``group_matrices_``: one matrix per group with ``condition_on_group`` (else empty);
    * ``inflow_``: the mean number of new customers per period in each state;
    * ``periods_``: the number of periods learned from; ``snapshot_dates_``: their dates.

    ``current`` tables for the predictions have ``customer_id``, ``state`` and, with
    ``condition_on_group``, ``group`` (a missing group, or one not seen at ``fit``, uses the
    pooled matrix); ``at_risk`` also reads ``clv`` when there is one. A state not seen at
    ``fit`` gets the identity row: such customers are forecast to stay where they are.

    >>> import pandas as pd
    >>> snapshots = pd.DataFrame({
    ...     "customer_id": ["a", "b", "a", "b"],
    ...     "as_of": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01"]),
    ...     "state": ["active", "active", "active", "at_risk"],
    ... })
    >>> model = MarkovForecaster(smoothing=0).fit(snapshots)
    >>> current = pd.DataFrame({"customer_id": ["x", "y"], "state": ["active", "vip"]})
    >>> model.predict_proba(current).to_dict("index")
    {'x': {'active': 0.5, 'at_risk': 0.5, 'vip': 0.0}, 'y': {'active': 0.0, 'at_risk': 0.0, 'vip': 1.0}}
    """

    _constraints = {
        "smoothing": Interval(0, None),
        "condition_on_group": Options((True, False)),
        "min_group_size": Interval(0, None, integer=True),
        "window": Interval(0, None, integer=True),
    }

    def __init__(
        self,
        smoothing: float = 0.5,
        condition_on_group: bool = False,
        min_group_size: int = 50,
        window: int = 0,
    ):
        self.smoothing = smoothing
        self.condition_on_group = condition_on_group
        self.min_group_size = min_group_size
        self.window = window

    # -- learning ----------------------------------------------------------------------------

    def fit(self, snapshots: pd.DataFrame, *, skip: Iterable = ()) -> MarkovForecaster:
        """Learn the transition matrix (per group, too) and the inflow from the periods between
        consecutive dates, except those ending on a date in ``skip`` (stub periods, whose moves
        are not a full period's)."""
        self._validate_params()
        panel = _Panel.from_frame(snapshots, with_group=bool(self.condition_on_group))
        return self._fit_panel(panel, panel.skipped(skip))

    def _fit_panel(self, panel: _Panel, skipped: np.ndarray | None = None) -> MarkovForecaster:
        n_dates = len(panel.dates)
        if n_dates < 2:
            seen = ", ".join(str(d.date()) for d in panel.dates) or "none"
            raise InvalidInputError(
                f"MarkovForecaster.fit needs snapshots on at least 2 dates (one period), "
                f"got {n_dates}: {seen}"
            )
        # period p runs from date p to date p + 1; learn from the last `window` of those kept
        learned = np.flatnonzero(~skipped) if skipped is not None else np.arange(n_dates - 1)
        if self.window:
            learned = learned[-self.window :]
        if not len(learned):
            raise InvalidInputError(
                "MarkovForecaster.fit: every period is skipped; there is none to learn from"
            )
        source, target = panel.state[learned], panel.state[learned + 1]
        present = source >= 0
        left = present & (target < 0)
        states = list(panel.states) + ([GONE] if left.any() else [])
        k = len(states)
        moved_to = np.where(left, k - 1, target)[present]
        moved_from = source[present]
        counts = np.bincount(moved_from * k + moved_to, minlength=k * k).reshape(k, k)
        pooled = _smoothed(counts, self.smoothing)

        arrived = (source < 0) & (target >= 0)
        periods = len(learned)
        inflow = np.bincount(target[arrived], minlength=k) / periods

        group_matrices = np.empty((0, k, k))
        if self.condition_on_group:
            group = panel.group[learned][present]
            known = group >= 0
            n_groups = len(panel.groups)
            key = (group[known] * k + moved_from[known]) * k + moved_to[known]
            group_counts = np.bincount(key, minlength=n_groups * k * k).reshape(n_groups, k, k)
            enough = group_counts.sum(axis=2) >= max(self.min_group_size, 1)
            group_matrices = np.where(
                enough[:, :, None], _smoothed(group_counts, self.smoothing), pooled[None, :, :]
            )

        self.states_ = states
        self.counts_ = _square(counts, states)
        self.transition_matrix_ = _square(pooled, states)
        self.group_matrices_ = {
            label: _square(matrix, states) for label, matrix in zip(panel.groups, group_matrices, strict=True)
        }
        self.inflow_ = pd.Series(inflow, index=pd.Index(states, name="state"), name="inflow")
        self.periods_ = periods
        self.snapshot_dates_ = panel.dates[np.union1d(learned, learned + 1)]
        # the matrices to predict with: one per group, then the pooled one (also for "no group")
        self._groups = pd.Index(panel.groups if self.condition_on_group else [])
        self._matrices = np.concatenate([group_matrices, pooled[None, :, :]])
        return self

    # -- predictions -------------------------------------------------------------------------

    def predict_proba(self, current: pd.DataFrame) -> pd.DataFrame:
        """Each customer's probability of being in each state one period from now.

        One row per customer (index ``customer_id``), one column per state: ``states_``, then any
        state of ``current`` not seen at ``fit`` (where its customers stay, with probability 1).
        """
        self._check_fitted()
        ids, states, groups, labels = self._encode(current)
        matrices = self._extended_matrices(len(labels))
        proba = matrices[groups, states]
        return pd.DataFrame(
            proba,
            index=pd.Index(ids, name="customer_id"),
            columns=pd.Index(labels, name="state"),
        )

    def predict_sizes(
        self, current: pd.DataFrame, periods: int = 1, first_step: pd.DataFrame | None = None
    ) -> pd.Series:
        """Expected number of customers in each state ``periods`` periods from now.

        Current customers move through the chain (each through their group's matrix, the group
        held fixed, with ``condition_on_group``); every period ``inflow_`` new customers arrive,
        and they move on through the pooled matrix in the periods that follow. Customers who are
        expected to disappear from the snapshots are counted in ``GONE`` when it is a state.

        ``first_step``, one row per customer of ``current`` (index ``customer_id``) and one
        column per state, replaces the chain for the first period: each customer's own
        probabilities (from :class:`~microseg.dynamics.customer_forecast.CustomerForecaster`);
        later periods go on through the chain.
        """
        self._check_fitted()
        if isinstance(periods, bool) or not isinstance(periods, numbers.Integral) or periods < 0:
            raise InvalidInputError(f"predict_sizes: 'periods' must be an integer >= 0, got {periods!r}")
        ids, states, groups, labels = self._encode(current)
        if first_step is not None and periods > 0:
            labels = labels + sorted(set(map(str, first_step.columns)) - set(labels))
        k = len(labels)
        matrices = self._extended_matrices(k)
        by_group = np.bincount(groups * k + states, minlength=len(matrices) * k).reshape(-1, k).astype(float)
        inflow = np.zeros(k)
        inflow[: len(self.states_)] = self.inflow_.to_numpy()
        arrived = np.zeros(k)
        steps = periods
        if first_step is not None and periods > 0:
            own = first_step.reindex(index=ids, columns=labels, fill_value=0.0)
            if own.isna().to_numpy().any():
                missing = own.index[own.isna().any(axis=1)][0]
                raise InvalidInputError(f"first_step has no probabilities for customer {missing!r}")
            by_group = np.zeros((len(matrices), k))
            np.add.at(by_group, groups, own.to_numpy(dtype=float))
            arrived = inflow.copy()
            steps -= 1
        for _ in range(steps):
            by_group = np.einsum("gi,gij->gj", by_group, matrices)
            arrived = arrived @ matrices[-1] + inflow
        sizes = by_group.sum(axis=0) + arrived
        return pd.Series(sizes, index=pd.Index(labels, name="state"), name="expected_size")

    def at_risk(
        self, current: pd.DataFrame, to_states: Iterable[str] | str = ("at_risk", "churned")
    ) -> pd.DataFrame:
        """Who is likely to move into a bad state next period, and how much value that puts at risk.

        ``p_move`` is the probability of being in one of ``to_states`` next period *other than the
        customer's current state*: for an ``active`` customer, P(at_risk) + P(churned); for an
        ``at_risk`` one, P(churned) (staying at risk is not a move). ``clv_at_stake`` is
        ``p_move * clv`` (missing without a ``clv`` column). Rows are sorted by ``clv_at_stake``,
        then ``p_move``, largest first. States in ``to_states`` that the model does not know
        count as probability 0; ``GONE`` may be listed to count disappearing as a loss too.
        """
        self._check_fitted()
        return at_risk_table(self.predict_proba(current), current, to_states)

    # -- helpers -----------------------------------------------------------------------------

    def _encode(self, current: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """customer ids, state codes, matrix (group) codes and the state labels of a current table."""
        needed = ["customer_id", "state"] + (["group"] if self.condition_on_group else [])
        _require_columns(current, needed, "current")
        ids = current["customer_id"]
        duplicated = ids.duplicated()
        if duplicated.any():
            example = ids[duplicated].iloc[0]
            raise InvalidInputError(
                f"current has more than one row for customer {example!r}: keep one row per customer"
            )
        codes, uniques = pd.factorize(current["state"])
        if (codes < 0).any():
            example = ids.iloc[int(np.argmax(codes < 0))]
            raise InvalidInputError(f"current: state is missing for customer {example!r}")
        uniques = np.asarray(uniques, dtype=object)
        position = pd.Index(self.states_).get_indexer(uniques)
        unseen = sorted(uniques[position < 0])
        position[position < 0] = len(self.states_) + pd.Index(unseen).get_indexer(uniques[position < 0])
        states = position[codes]
        groups = np.full(len(current), len(self._groups))
        if self.condition_on_group:
            group_codes = self._groups.get_indexer(current["group"])
            groups = np.where(group_codes >= 0, group_codes, len(self._groups))
        return ids.to_numpy(), states, groups, self.states_ + unseen

    def _extended_matrices(self, k: int) -> np.ndarray:
        """The fitted matrices with identity rows for the ``k - len(states_)`` unseen states."""
        known = len(self.states_)
        if k == known:
            return self._matrices
        matrices = np.zeros((len(self._matrices), k, k))
        matrices[:, :known, :known] = self._matrices
        matrices[:, np.arange(known, k), np.arange(known, k)] = 1.0
        return matrices


def at_risk_table(
    proba: pd.DataFrame, current: pd.DataFrame, to_states: Iterable[str] | str = ("at_risk", "churned")
) -> pd.DataFrame:
    """``state, p_move, clv, clv_at_stake`` per customer from next-period probabilities.

    ``proba`` has one row per customer of ``current`` (same order) and one column per state.
    ``p_move`` is the probability of being in one of ``to_states`` next period other than the
    customer's current state; ``clv_at_stake = p_move * clv`` (missing without a ``clv``
    column in ``current``). Sorted by ``clv_at_stake``, then ``p_move``, largest first.

    >>> proba = pd.DataFrame({"active": [0.9, 0.2], "at_risk": [0.1, 0.8]}, index=["a", "b"])
    >>> current = pd.DataFrame({"customer_id": ["a", "b"], "state": ["active", "at_risk"], "clv": [500.0, 80.0]})
    >>> at_risk_table(proba, current).round(2).to_dict("index")
    {'a': {'state': 'active', 'p_move': 0.1, 'clv': 500.0, 'clv_at_stake': 50.0}, 'b': {'state': 'at_risk', 'p_move': 0.0, 'clv': 80.0, 'clv_at_stake': 0.0}}
    """
    targets = [to_states] if isinstance(to_states, str) else list(to_states)
    known = [state for state in targets if state in proba.columns]
    if not known:
        raise InvalidInputError(
            f"at_risk: none of to_states {targets!r} is a known state; states: {', '.join(map(str, proba.columns))}"
        )
    state = current["state"].to_numpy()
    p_move = np.zeros(len(proba))
    for target in known:
        p_move += np.where(state == target, 0.0, proba[target].to_numpy())
    clv = (
        pd.to_numeric(current["clv"], errors="coerce").to_numpy(dtype=float)
        if "clv" in current.columns
        else np.full(len(proba), np.nan)
    )
    table = pd.DataFrame(
        {"state": state, "p_move": p_move, "clv": clv, "clv_at_stake": p_move * clv},
        index=proba.index,
    )
    return table.sort_values(["clv_at_stake", "p_move"], ascending=False, na_position="last", kind="stable")


def backtest(
    snapshots: pd.DataFrame, *, min_train_periods: int = 2, skip: Iterable = (), **options
) -> pd.DataFrame:
    """Rolling-origin backtest of one-period forecasts of segment shares.

    For each snapshot date ``date_k`` with at least ``min_train_periods`` periods before it, a
    ``MarkovForecaster(**options)`` is fitted on the snapshots up to ``date_k``, and the sizes at
    the next date are forecast from the customers at ``date_k`` (``predict_sizes``, one period).
    Sizes become shares of the customers present (``GONE`` is left out), and are compared with
    the actual shares at the next date by the mean absolute error over the states seen up to
    that date (``mae_model``); ``mae_naive`` is the same for "the shares stay as at ``date_k``".

    Returns one row per forecast origin: ``as_of`` (``date_k``), ``target`` (the next date),
    ``mae_model`` and ``mae_naive``. Periods ending on a date in ``skip`` (stub periods) are
    neither learned from nor forecast.
    """
    if (
        isinstance(min_train_periods, bool)
        or not isinstance(min_train_periods, numbers.Integral)
        or min_train_periods < 1
    ):
        raise InvalidInputError(
            f"backtest: 'min_train_periods' must be an integer >= 1, got {min_train_periods!r}"
        )
    template = MarkovForecaster().set_params(**options)
    template._validate_params()
    panel = _Panel.from_frame(snapshots, with_group=bool(template.condition_on_group))
    n_dates = len(panel.dates)
    if n_dates < min_train_periods + 2:
        raise InvalidInputError(
            f"backtest needs at least {min_train_periods + 2} snapshot dates ({min_train_periods} "
            f"periods to train on and one to forecast), got {n_dates}"
        )
    skipped = panel.skipped(skip)
    rows = []
    for k in range(min_train_periods, n_dates - 1):
        if skipped[k] or (~skipped[:k]).sum() < min_train_periods:
            continue
        model = MarkovForecaster(**template.get_params())._fit_panel(panel.head(k + 1), skipped[:k])
        states = list(panel.head(k + 2).states)
        forecast = model.predict_sizes(panel.current(k)).drop(GONE, errors="ignore")
        shares = {
            "model": _shares(forecast, states),
            "naive": _shares(panel.sizes(k), states),
            "actual": _shares(panel.sizes(k + 1), states),
        }
        rows.append(
            {
                "as_of": panel.dates[k],
                "target": panel.dates[k + 1],
                "mae_model": float(np.abs(shares["model"] - shares["actual"]).mean()),
                "mae_naive": float(np.abs(shares["naive"] - shares["actual"]).mean()),
            }
        )
    return pd.DataFrame(rows, columns=["as_of", "target", "mae_model", "mae_naive"])


@dataclass(frozen=True)
class _Panel:
    """Snapshots as integer codes: ``state[date, customer]`` (and ``group``), -1 where absent.

    Dense over dates x customers: snapshot data have most customers at most dates, so this is
    about the size of the input, and every count is then one ``np.bincount``.
    """

    dates: pd.DatetimeIndex
    states: list
    state: np.ndarray
    groups: list
    group: np.ndarray | None

    @classmethod
    def from_frame(cls, snapshots: pd.DataFrame, *, with_group: bool) -> _Panel:
        needed = ["customer_id", "as_of", "state"] + (["group"] if with_group else [])
        _require_columns(snapshots, needed, "snapshots")
        id_codes, ids = _factorize(snapshots["customer_id"])
        if (id_codes < 0).any():
            raise InvalidInputError(
                f"snapshots: customer_id is missing in row {int(np.argmax(id_codes < 0))}"
            )
        date_codes, dates = _factorize_dates(snapshots["as_of"])
        state_codes, states = _factorize_sorted(snapshots["state"])
        n_ids, n_dates = len(ids), len(dates)
        cell = date_codes * n_ids + id_codes
        # each cell must be written once: the last row written to a cell names its duplicates
        rows = np.arange(len(cell), dtype=np.int32 if len(cell) < 2**31 else np.int64)
        writer = np.full(n_ids * n_dates, -1, dtype=rows.dtype)
        writer[cell] = rows
        duplicate = writer[cell] != rows
        if duplicate.any():
            where = snapshots.iloc[int(np.argmax(duplicate))]
            raise InvalidInputError(
                f"snapshots has more than one row for customer {where['customer_id']!r} on "
                f"{_day(where['as_of'])}: keep one row per customer and date"
            )
        if (state_codes < 0).any():
            where = snapshots.iloc[int(np.argmax(state_codes < 0))]
            raise InvalidInputError(
                f"snapshots: state is missing for customer {where['customer_id']!r} on {_day(where['as_of'])}"
            )
        state = np.full(n_ids * n_dates, -1, dtype=np.int32)
        state[cell] = state_codes
        groups, group = [], None
        if with_group:
            group_codes, groups = _factorize_sorted(snapshots["group"])
            group = np.full(n_ids * n_dates, -1, dtype=np.int32)
            group[cell] = group_codes
            group = group.reshape(n_dates, n_ids)
        return cls(dates, states, state.reshape(n_dates, n_ids), groups, group)

    def skipped(self, ends: Iterable) -> np.ndarray:
        """Which periods (date p to date p + 1) end on one of the dates ``ends``."""
        ends = pd.DatetimeIndex(pd.to_datetime(list(ends))).normalize()
        return np.asarray(self.dates[1:].normalize().isin(ends), dtype=bool)

    def head(self, n_dates: int) -> _Panel:
        """The first ``n_dates`` snapshots, with only the states and groups seen in them."""
        state, states = _keep_seen(self.state[:n_dates], self.states)
        group, groups = (None, [])
        if self.group is not None:
            group, groups = _keep_seen(self.group[:n_dates], self.groups)
        return _Panel(self.dates[:n_dates], states, state, groups, group)

    def current(self, k: int) -> pd.DataFrame:
        """The customers at snapshot ``k`` as a ``current`` table (ids are integer codes)."""
        present = np.flatnonzero(self.state[k] >= 0)
        table = pd.DataFrame(
            {
                "customer_id": present,
                "state": pd.Categorical.from_codes(self.state[k, present], categories=self.states),
            }
        )
        if self.group is not None:
            table["group"] = pd.Categorical.from_codes(self.group[k, present], categories=self.groups)
        return table

    def sizes(self, k: int) -> pd.Series:
        column = self.state[k]
        return pd.Series(np.bincount(column[column >= 0], minlength=len(self.states)), index=self.states)


def _require_columns(table: pd.DataFrame, needed: list[str], name: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    for column in needed:
        if column not in table.columns:
            raise InvalidInputError(
                f"{name} is missing column {column!r} (columns: {', '.join(map(str, table.columns))})"
            )


def _factorize(values: pd.Series) -> tuple[np.ndarray, pd.Index | pa.Array]:
    """Integer codes (-1 for missing) and the distinct values, in order of appearance.

    Arrow-backed columns (pandas' default for strings) are encoded by Arrow, about twice as
    fast as ``pd.factorize`` on millions of ids.
    """
    if getattr(values.dtype, "storage", None) == "pyarrow":
        encoded = pc.dictionary_encode(pa.array(values))
        if isinstance(encoded, pa.ChunkedArray):  # one dictionary for all chunks
            encoded = encoded.combine_chunks()
        return encoded.indices.fill_null(-1).to_numpy().astype(np.int64), encoded.dictionary
    if values.dtype.kind == "M":
        values = values.to_numpy()
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64, copy=False), pd.Index(uniques)


def _factorize_sorted(values: pd.Series) -> tuple[np.ndarray, list]:
    """Integer codes (-1 for missing) of values whose labels are sorted."""
    codes, uniques = _factorize(values)
    labels = np.asarray(uniques.to_pylist() if isinstance(uniques, pa.Array) else uniques, dtype=object)
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1  # code -1 (missing) stays -1
    return rank[codes], labels[order].tolist()


def _factorize_dates(values: pd.Series) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Codes of the snapshot dates in date order; converts only the distinct values (fast)."""
    codes, uniques = _factorize(values)
    converted = pd.DatetimeIndex(
        pd.to_datetime(uniques.to_pylist() if isinstance(uniques, pa.Array) else uniques)
    )
    if (codes < 0).any():
        raise InvalidInputError(f"snapshots: as_of is missing in row {int(np.argmax(codes < 0))}")
    dates = converted.unique().sort_values()
    lookup = np.append(dates.get_indexer(converted), -1)
    return lookup[codes], dates


def _day(value) -> str:
    return str(pd.Timestamp(value).date())


def _keep_seen(codes: np.ndarray, labels: list) -> tuple[np.ndarray, list]:
    """Codes renumbered over the labels that occur in them (order kept)."""
    seen = np.bincount(codes.ravel() + 1, minlength=len(labels) + 1)[1:] > 0
    if seen.all():
        return codes, labels
    lookup = np.full(len(labels) + 1, -1, dtype=codes.dtype)
    lookup[1:][seen] = np.arange(int(seen.sum()))
    return lookup[codes + 1], [label for label, keep in zip(labels, seen, strict=True) if keep]


def _smoothed(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Rows of counts as probabilities with ``smoothing`` pseudo-counts per cell; empty rows stay put."""
    k = counts.shape[-1]
    totals = counts.sum(axis=-1, keepdims=True)
    has_data = totals > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = (counts + smoothing) / (totals + smoothing * k)
    return np.where(has_data, proba, np.eye(k))


def _square(values: np.ndarray, states: list) -> pd.DataFrame:
    return pd.DataFrame(
        values,
        index=pd.Index(states, name="from_state"),
        columns=pd.Index(states, name="to_state"),
    )


def _shares(sizes: pd.Series, states: list) -> np.ndarray:
    values = sizes.reindex(states, fill_value=0).to_numpy(dtype=float)
    total = values.sum()
    return values / total if total > 0 else values

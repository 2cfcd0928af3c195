"""Each customer's next-period segment from their own history: gradient-boosted trees.

The Markov chain (:mod:`microseg.dynamics.forecast`) gives every customer of a (segment, group)
the same probabilities: all active top-tier customers have the same chance of lapsing, whether
they bought yesterday or are a week short of the at-risk line. ``CustomerForecaster`` learns
the next segment from what each snapshot already holds about the customer:

* where they are: the segment (``state``) and the ``group`` (e.g. the CLV tier);
* their history on that date: orders, purchase days, revenue, days since the first and the
  last purchase, their rhythm (mean days between purchases), days since a return after a long
  pause, recent page views, email opens and app events, P(alive), expected purchases and CLV;
* *lateness*: days since the last purchase over the customer's rhythm, now and one period
  later if they do not buy (``lateness_next``); the lifecycle rules draw their lines on it.

It learns from past pairs of consecutive snapshots: the features on the earlier date, point in
time (each snapshot's tables hold only what was known on its date), and the segment on the later
one, or ``GONE`` when the customer is missing from it. The classifier is scikit-learn's
``HistGradientBoostingClassifier`` (multinomial log-loss, so its probabilities are fitted to be
calibrated; missing values such as the rhythm of a one-time buyer are handled by the trees),
with fixed settings and seed: the same snapshots give the same probabilities. The settings (50
rounds of trees with at most 7 leaves, learning rate 0.2) were checked on Online Retail and the
demo: deeper or longer fits scored no better in the backtest and took twice as long. ``threads``
is 1 by default: on the tables of one layer OpenMP's start-up costs more than it saves.

>>> import pandas as pd
>>> rows = []
>>> for month, day in enumerate(["2024-01-31", "2024-02-29", "2024-03-31"]):
...     for i in range(40):
...         late = (i % 4) * 20 + 10 * month           # days since the last purchase
...         rows.append((f"c{i}", day, "active" if late < 45 else "at_risk", late, 20.0))
>>> snapshots = pd.DataFrame(rows, columns=["customer_id", "as_of", "state",
...                                         "days_since_last_purchase", "rhythm_days"])
>>> snapshots["as_of"] = pd.to_datetime(snapshots["as_of"])
>>> model = CustomerForecaster(min_samples_leaf=2).fit(snapshots)
>>> model.classes_
['active', 'at_risk']
>>> current = pd.DataFrame({"customer_id": ["x", "y"], "state": ["active", "active"],
...                         "days_since_last_purchase": [5, 42], "rhythm_days": [20.0, 20.0]})
>>> proba = model.predict_proba(current)
>>> bool(proba.loc["y", "at_risk"] > proba.loc["x", "at_risk"])
True
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from microseg.dynamics.forecast import GONE, _require_columns, at_risk_table
from microseg.errors import InvalidInputError
from microseg.models.base import Estimator, Interval

#: The customer's history stored with each snapshot that the model reads: profile columns, then
#: value-model columns (absent ones count as missing).
PROFILE_HISTORY = (
    "transactions",
    "orders",
    "revenue",
    "days_since_first_purchase",
    "days_since_last_purchase",
    "rhythm_days",
    "days_since_return",
    "page_views_90d",
    "email_opens_90d",
    "app_events_90d",
)
VALUE_HISTORY = ("p_alive", "expected_purchases", "clv")
HISTORY_COLUMNS = PROFILE_HISTORY + VALUE_HISTORY
#: The categories a tree can split on (HistGradientBoosting's limit, less one for missing).
MAX_CATEGORIES = 254


class CustomerForecaster(Estimator):
    """Next-period segment probabilities per customer, learned from consecutive snapshots.

    ``fit(snapshots, skip=())`` reads ``customer_id``, ``as_of``, ``state``, optionally
    ``group`` and any of ``HISTORY_COLUMNS``; it learns from the latest ``window`` periods (0:
    all) between consecutive dates, leaving out the periods that end on a date in ``skip``
    (stub periods), at most ``max_rows`` customer-periods (a fixed-seed sample beyond that).

    * ``classes_``: the segments seen at the end of those periods (``GONE`` included);
    * ``features_``: the feature columns used; ``period_days_``: the median period length;
    * ``periods_``, ``snapshot_dates_``: the periods learned from and their dates;
    * ``rows_``: the customer-periods learned from.

    ``predict_proba(current)`` takes the same columns for one date (one row per customer) and
    returns one row per customer (index ``customer_id``), one column per class.
    """

    _constraints = {
        "window": Interval(0, None, integer=True),
        "max_iter": Interval(1, 10_000, integer=True),
        "learning_rate": Interval(0, 1, closed="right"),
        "max_leaf_nodes": Interval(2, 1_000, integer=True),
        "min_samples_leaf": Interval(1, None, integer=True),
        "l2_regularization": Interval(0, None),
        "max_rows": Interval(1, None, integer=True),
        "random_state": Interval(0, 2**32 - 1, integer=True),
        "threads": Interval(1, 1024, integer=True),
    }

    def __init__(
        self,
        window: int = 0,
        max_iter: int = 50,
        learning_rate: float = 0.2,
        max_leaf_nodes: int = 7,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        max_rows: int = 200_000,
        random_state: int = 0,
        threads: int = 1,
    ):
        self.window = window
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.max_rows = max_rows
        self.random_state = random_state
        self.threads = threads

    def fit(self, snapshots: pd.DataFrame, *, skip: Iterable = ()) -> CustomerForecaster:
        """Learn from the pairs of consecutive snapshots (see the class docs)."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        self._validate_params()
        _require_columns(snapshots, ["customer_id", "as_of", "state"], "snapshots")
        frame = snapshots.assign(as_of=pd.to_datetime(snapshots["as_of"]).dt.normalize())
        dates = pd.DatetimeIndex(frame["as_of"].unique()).sort_values()
        skipped = set(pd.DatetimeIndex(pd.to_datetime(list(skip))).normalize())
        pairs = [(a, b) for a, b in zip(dates[:-1], dates[1:], strict=False) if b not in skipped]
        if self.window:
            pairs = pairs[-self.window :]
        if not pairs:
            shown = ", ".join(str(d.date()) for d in dates) or "none"
            raise InvalidInputError(
                f"CustomerForecaster.fit needs one period (two consecutive snapshot dates) to learn "
                f"from, got dates: {shown}"
            )
        by_date = {day: part for day, part in frame.groupby("as_of", sort=False)}
        starts, targets = [], []
        for start, end in pairs:
            earlier = by_date[start]
            _check_unique(earlier)
            later = by_date[end].set_index("customer_id")["state"]
            starts.append(earlier)
            targets.append(earlier["customer_id"].map(later).astype(object).fillna(GONE).to_numpy())
        learned = pd.concat(starts, ignore_index=True)
        target = np.concatenate(targets).astype(str)
        if len(learned) > self.max_rows:
            keep = np.sort(
                np.random.default_rng(self.random_state).choice(len(learned), self.max_rows, False)
            )
            learned, target = learned.iloc[keep].reset_index(drop=True), target[keep]

        state_categories = sorted(learned["state"].astype(str).unique())
        group_categories = sorted(learned["group"].astype(str).unique()) if "group" in learned.columns else []
        # checked before anything is learned: a refused fit leaves the model unfitted
        for name, categories in (("state", state_categories), ("group", group_categories)):
            if len(categories) > MAX_CATEGORIES:
                raise InvalidInputError(
                    f"CustomerForecaster: {name} has {len(categories)} values; at most {MAX_CATEGORIES} can be learned"
                )
        self.period_days_ = float(np.median([(b - a).days for a, b in pairs]))
        self.state_categories_ = state_categories
        self.group_categories_ = group_categories
        features = self._features(learned)
        # a column with no value at all carries nothing (and cannot be binned)
        self.features_ = [c for c in features.columns if features[c].notna().any()]
        self.classes_ = sorted({str(t) for t in target})
        self.periods_ = len(pairs)
        self.snapshot_dates_ = pd.DatetimeIndex(sorted({d for pair in pairs for d in pair}))
        self.rows_ = len(learned)
        self._model = None
        if len(self.classes_) > 1:
            categorical = [c in ("state", "group") for c in self.features_]
            model = HistGradientBoostingClassifier(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                categorical_features=categorical if any(categorical) else None,
                early_stopping=False,
                random_state=self.random_state,
            )
            with threadpool_limits(self.threads, user_api="openmp"):
                self._model = model.fit(features[self.features_].to_numpy(dtype=float), target)
        return self

    def predict_proba(self, current: pd.DataFrame) -> pd.DataFrame:
        """Each customer's probability of being in each of ``classes_`` one period from now."""
        self._check_fitted()
        _require_columns(current, ["customer_id", "state"], "current")
        _check_unique(current)
        index = pd.Index(current["customer_id"].to_numpy(), name="customer_id")
        columns = pd.Index(self.classes_, name="state")
        if self._model is None:  # one class learned: it is certain
            return pd.DataFrame(1.0, index=index, columns=columns)
        features = self._features(current)[self.features_].to_numpy(dtype=float)
        with threadpool_limits(self.threads, user_api="openmp"):
            proba = self._model.predict_proba(features)
        order = [list(self._model.classes_).index(c) for c in self.classes_]
        return pd.DataFrame(proba[:, order], index=index, columns=columns)

    def at_risk(
        self, current: pd.DataFrame, to_states: Iterable[str] | str = ("at_risk", "churned")
    ) -> pd.DataFrame:
        """As :meth:`MarkovForecaster.at_risk`, with each customer's own probabilities."""
        return at_risk_table(self.predict_proba(current), current, to_states)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns for the rows of ``frame`` (missing history columns are NaN)."""
        n = len(frame)
        out = {
            "state": _codes(frame["state"], self.state_categories_),
            "group": _codes(frame["group"], self.group_categories_)
            if "group" in frame.columns and self.group_categories_
            else np.full(n, np.nan),
        }
        for column in HISTORY_COLUMNS:
            out[column] = (
                pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
                if column in frame.columns
                else np.full(n, np.nan)
            )
        rhythm = np.where(out["rhythm_days"] > 0, out["rhythm_days"], np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["lateness"] = out["days_since_last_purchase"] / rhythm
            out["lateness_next"] = (out["days_since_last_purchase"] + self.period_days_) / rhythm
        return pd.DataFrame(out)


def _codes(values: pd.Series, categories: list) -> np.ndarray:
    """Category codes as floats; values not seen at fit are missing (NaN)."""
    codes = pd.Index(categories).get_indexer(values.astype(str))
    return np.where(codes >= 0, codes, np.nan)


def _check_unique(frame: pd.DataFrame) -> None:
    duplicated = frame["customer_id"].duplicated()
    if duplicated.any():
        example = frame.loc[duplicated, "customer_id"].iloc[0]
        raise InvalidInputError(
            f"more than one row for customer {example!r} on one date: keep one row per customer"
        )

"""RFM: the recency-frequency-monetary summary the CLV models read, and RFM scores and segments.

Computed in Ibis, so it runs on DuckDB and Spark alike. Conventions (those of the BTYD papers):

* a *transaction* is a calendar day with at least one purchase: purchases on the same day merge
  and their amounts add up;
* ``frequency`` is the number of repeat transactions (transactions after the first);
* ``recency`` is the customer's age at their last transaction, ``T`` their age on the as-of
  date, both in days from the first transaction divided by the period (``day`` = 1, ``week`` = 7);
* ``monetary_value`` is the mean amount of the repeat transactions (0 without repeats).

Only purchases count (refunds and cancellations do not change the buying pattern); events after
the as-of day are ignored, so a summary for a past date is exactly what was known on that date.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from microseg.errors import InvalidInputError
from microseg.features.asof import AsOf

PERIOD_DAYS = {"day": 1, "week": 7}

#: RFM segment of each (recency score, frequency score) cell; scores run 1 (worst) to 5 (best).
RFM_SEGMENT_GRID: dict[int, tuple[str, str, str, str, str]] = {
    # frequency score:  1                  2                     3                     4                  5
    5: ("new", "promising", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "loyal", "champions", "champions"),
    3: ("about_to_sleep", "need_attention", "loyal", "loyal", "loyal"),
    2: ("hibernating", "about_to_sleep", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "hibernating", "at_risk", "cant_lose_them", "cant_lose_them"),
}
RFM_SEGMENTS = tuple(dict.fromkeys(s for row in RFM_SEGMENT_GRID.values() for s in row))


@ibis.udf.agg.builtin(name="min_by")
def _min_by(arg: float, key: dt.date) -> float:
    """``arg`` on the row with the smallest ``key``: built into DuckDB (arg_min) and Spark."""


def transactions(events: ir.Table, as_of: dt.date) -> ir.Table:
    """One row per customer and day with purchases: ``customer_id, day, amount``."""
    return AsOf(events, as_of).transactions()


def rfm_summary(events: ir.Table, as_of: dt.date, period: str = "day") -> ir.Table:
    """Per buying customer: ``frequency, recency, T, monetary_value`` and the plain totals
    ``first_purchase, last_purchase, transactions, total_spend``.

    >>> import ibis, datetime as dt
    >>> events = ibis.memtable({
    ...     "customer_id": ["a", "a", "a", "b"], "event_type": ["purchase"] * 4,
    ...     "ts": [dt.datetime(2024, 1, 1, 9), dt.datetime(2024, 1, 1, 17), dt.datetime(2024, 1, 8), dt.datetime(2024, 1, 10)],
    ...     "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> rfm = rfm_summary(events, dt.date(2024, 1, 15), "week").order_by("customer_id").to_pandas()
    >>> rfm[["customer_id", "frequency", "recency", "T", "monetary_value"]].values.tolist()
    [['a', 1, 1.0, 2.0, 20.0], ['b', 0, 0.0, 0.7142857142857143, 0.0]]
    """
    return rfm_of(AsOf(events, as_of), period)


def rfm_of(snapshot: AsOf, period: str = "day", until: dt.date | None = None) -> ir.Table:
    """``rfm_summary`` of a snapshot, as of ``until`` (default: the snapshot's date; an earlier
    date gives the RFM of a calibration period)."""
    if period not in PERIOD_DAYS:
        raise InvalidInputError(f"period must be one of {', '.join(PERIOD_DAYS)}, got {period!r}")
    as_of = until or snapshot.as_of
    days = snapshot.transactions(as_of)
    per = days.group_by("customer_id").aggregate(
        first_purchase=days.day.min(),
        last_purchase=days.day.max(),
        transactions=days.day.count(),
        total_spend=days.amount.sum().cast("float64"),
        first_spend=_min_by(days.amount.cast("float64"), days.day),
    )
    unit = float(PERIOD_DAYS[period])
    end = ibis.literal(as_of, type="date")
    frequency = (per.transactions - 1).cast("int64")
    return per.select(
        "customer_id",
        frequency=frequency,
        recency=per.last_purchase.delta(per.first_purchase, unit="day").cast("float64") / unit,
        T=end.delta(per.first_purchase, unit="day").cast("float64") / unit,
        monetary_value=ibis.ifelse(frequency > 0, (per.total_spend - per.first_spend) / frequency, 0.0),
        first_purchase=per.first_purchase,
        last_purchase=per.last_purchase,
        transactions=per.transactions,
        total_spend=per.total_spend,
    )


def percent_rank(values: np.ndarray, descending: bool = False) -> np.ndarray:
    """SQL's ``percent_rank``: the share of other rows ranked strictly before, in [0, 1]."""
    key = -np.asarray(values, dtype=float) if descending else np.asarray(values, dtype=float)
    if len(key) == 0:
        return key
    low, high = key.min(), key.max()
    if np.all(key == np.round(key)) and high - low < 10 * len(key) + 1000:
        # whole numbers in a modest range (days, counts): counting, no sort
        index = (key - low).astype(np.int64)
        counts = np.bincount(index)
    else:
        _, index, counts = np.unique(key, return_inverse=True, return_counts=True)
    before = (np.cumsum(counts) - counts)[index]  # rows with a smaller key
    return before / max(len(key) - 1, 1)


def rfm_scores(days_since_last, transactions, total_spend) -> dict[str, np.ndarray]:
    """RFM scores 1-5 by quintile of days since the last purchase (fewer is better), number of
    transactions and total spend, and the named segment of the (R, F) cell.

    Scores come from percent ranks, so equal values always get equal scores. They are computed
    on the per-customer summary (one row per customer) where the models run, not in the engine:
    a rank over all customers would funnel every row through one Spark task.

    >>> scores = rfm_scores([1, 30, 400], [5, 2, 1], [500.0, 80.0, 20.0])
    >>> scores["r_score"].tolist(), scores["rfm_segment"].tolist()
    ([5, 3, 1], ['champions', 'loyal', 'lost'])
    """

    def score(values, descending=False):
        return np.minimum(np.floor(percent_rank(values, descending) * 5), 4).astype(np.int64) + 1

    r = score(days_since_last, descending=True)
    f = score(transactions)
    m = score(total_spend)
    names, cells = np.unique([RFM_SEGMENT_GRID[row] for row in range(1, 6)], return_inverse=True)
    segment = pd.Categorical.from_codes(cells.reshape(5, 5)[r - 1, f - 1], categories=names)
    return {"r_score": r, "f_score": f, "m_score": m, "rfm_segment": segment}


def calibration_holdout(
    events: ir.Table, calibration_end: dt.date, observation_end: dt.date, period: str = "day"
) -> ir.Table:
    """RFM of the calibration period plus what each customer did in the holdout period.

    Customers whose first purchase is on or before ``calibration_end`` get the calibration RFM
    (``frequency, recency, T, monetary_value``), ``holdout_transactions`` (transaction days in
    ``(calibration_end, observation_end]``) and ``holdout_duration`` in period units.
    """
    return holdout_of(AsOf(events, observation_end), calibration_end, period)


def holdout_of(snapshot: AsOf, calibration_end: dt.date, period: str = "day") -> ir.Table:
    """``calibration_holdout`` of a snapshot: its date ends the holdout period."""
    observation_end = snapshot.as_of
    if observation_end <= calibration_end:
        raise InvalidInputError(
            f"observation_end ({observation_end}) must be after calibration_end ({calibration_end})"
        )
    calibration = rfm_of(snapshot, period, until=calibration_end)
    later = snapshot.transactions()
    holdout = later.filter(later.day > ibis.literal(calibration_end, type="date"))
    counts = holdout.group_by("customer_id").aggregate(holdout_transactions=holdout.day.count())
    joined = calibration.left_join(counts, "customer_id")
    duration = (observation_end - calibration_end).days / PERIOD_DAYS[period]
    return joined.select(
        *[c for c in calibration.columns],
        holdout_transactions=joined.holdout_transactions.fill_null(0),
        holdout_duration=ibis.literal(duration, type="float64"),
    )

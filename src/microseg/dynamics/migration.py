"""Migration: how customers move between the segments of a layer from one snapshot to another.

For a layer where every customer has one segment (lifecycle, tiers, clusters, micro-segments)
``transitions`` counts, for every pair of segments, the customers in the first at the earlier
snapshot and in the second at the later one, with the CLV they carry (at the earlier and at the
later snapshot) and the net revenue they brought in between. Customers who are not in the
earlier snapshot come from ``(new)``; customers missing from the later one go to ``(gone)``. So
every source row adds up exactly to the segment's size at the earlier snapshot.

For a layer where customers can be in any number of segments (rule segments, named
composites) each segment is tracked on its own: source or target ``(out)`` stands for "not in
this segment", so a segment's rows are *stayed* (X -> X), *left* (X -> (out)) and *joined*
((out) -> X), and stayed + left is its size at the earlier snapshot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from microseg.dynamics.customer_forecast import PROFILE_HISTORY, VALUE_HISTORY
from microseg.dynamics.periods import describe_periods
from microseg.errors import MicrosegError
from microseg.registry import segment_order
from microseg.warehouse import movement
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.movement import (
    GONE,
    MULTI_KINDS,
    NEW,
    OUT,
    check_name,
    journey,
    period_counts,
    stage_sizes,
    stored_dates,
    transitions,
    typical_paths,
)

__all__ = [
    "GONE",
    "MULTI_KINDS",
    "NEW",
    "OUT",
    "check_name",
    "flows",
    "journey",
    "period_counts",
    "stage_sizes",
    "states_over_time",
    "stored_dates",
    "transition_matrix",
    "transitions",
    "typical_paths",
]
VALUES = ("customers", "rate", "clv_from", "clv_to", "revenue")


def transition_matrix(
    wh: DuckDBWarehouse, kind: str, start: dt.date, end: dt.date, value: str = "customers"
) -> pd.DataFrame:
    """Sources x targets of one value: ``customers``, ``rate`` (share of the source's customers),
    ``clv_from``, ``clv_to`` or ``revenue``. For rule and composite layers, one row block per
    segment (index ``segment, source``)."""
    if value not in VALUES:
        raise MicrosegError(f"value must be one of {', '.join(VALUES)}, got {value!r}")
    frame = transitions(wh, kind, start, end)
    column = "customers" if value == "rate" else value
    index = ["segment", "source"] if kind in MULTI_KINDS else "source"
    matrix = frame.pivot_table(index=index, columns="target", values=column, aggfunc="sum", fill_value=0)
    if value == "rate":
        matrix = matrix.div(matrix.sum(axis=1), axis=0)
    return _ordered(matrix, kind)


def _ordered(matrix: pd.DataFrame, kind: str) -> pd.DataFrame:
    key = segment_order(kind)
    columns = sorted(matrix.columns, key=key)
    if isinstance(matrix.index, pd.MultiIndex):
        rows = sorted(matrix.index, key=lambda r: (str(r[0]), key(r[1])))
    else:
        rows = sorted(matrix.index, key=key)
    out = matrix.loc[rows, columns]
    out.columns.name = "target"
    return out


def flows(wh: DuckDBWarehouse, kind: str, dates: Sequence[dt.date] | None = None) -> pd.DataFrame:
    """Transitions between each pair of consecutive snapshots: ``from_date, to_date, period,
    source, target, customers, clv_from, clv_to, revenue`` (all stored snapshots when ``dates``
    is None); ``period`` is ``full``, ``stub`` or ``gap`` (see :mod:`microseg.dynamics.periods`)."""
    stored = stored_dates(wh, kind)
    dates = sorted(dates) if dates is not None else stored
    periods = describe_periods(stored)
    parts = [
        transitions(wh, kind, a, b).assign(from_date=a, to_date=b, period=periods.kind_of(a, b))
        for a, b in zip(dates[:-1], dates[1:], strict=True)
    ]
    columns = [
        "from_date",
        "to_date",
        "period",
        "source",
        "target",
        "customers",
        "clv_from",
        "clv_to",
        "revenue",
    ]
    if kind in MULTI_KINDS:
        columns.insert(3, "segment")
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def states_over_time(
    wh: DuckDBWarehouse,
    kind: str = "lifecycle",
    group_kind: str | None = "clv_tier",
    *,
    features: bool = False,
) -> pd.DataFrame:
    """One row per customer and snapshot: ``customer_id, as_of, state`` (the segment of ``kind``),
    ``group`` (the segment of ``group_kind``) and ``clv``: the input of the Markov forecast.
    With ``features``, also the customer's history on that date (``PROFILE_HISTORY`` from the
    profile, ``VALUE_HISTORY`` from the value model): the input of the customer forecast."""
    columns = {"profile_columns": PROFILE_HISTORY, "value_columns": VALUE_HISTORY} if features else {}
    return movement.states_over_time(wh, kind, group_kind, **columns)

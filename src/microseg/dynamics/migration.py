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

from microseg.config import suggest
from microseg.dynamics.customer_forecast import PROFILE_HISTORY, VALUE_HISTORY
from microseg.dynamics.periods import describe_periods
from microseg.engine.duckdb import DuckDBWarehouse
from microseg.errors import MicrosegError
from microseg.registry import MULTI_LAYERS, segment_order

NEW, GONE, OUT = "(new)", "(gone)", "(out)"
#: Layers where a customer can be in several segments.
MULTI_KINDS = MULTI_LAYERS
VALUES = ("customers", "rate", "clv_from", "clv_to", "revenue")


def stored_dates(wh: DuckDBWarehouse, kind: str | None = None) -> list[dt.date]:
    """Dates with stored memberships (of one layer), oldest first."""
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    rows = wh.fetch(f"SELECT DISTINCT as_of FROM segment_memberships {where} ORDER BY as_of", params)
    return [r[0] for r in rows]


def check_name(wh: DuckDBWarehouse, what: str, name: str, query: str, params: Sequence = ()) -> None:
    """Raise a clear error when ``name`` is not among the values ``query`` returns."""
    known = sorted(str(r[0]) for r in wh.fetch(query, list(params)))
    if name not in known:
        hint = suggest(name, known)
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none yet"
        raise MicrosegError(f"no {what} {name!r}{hint}; known: {shown}")


def _check_dates(wh: DuckDBWarehouse, kind: str, dates: Sequence[dt.date]) -> None:
    check_name(wh, "segment layer", kind, "SELECT DISTINCT kind FROM segment_memberships")
    known = stored_dates(wh, kind)
    for date in dates:
        if date not in known:
            shown = ", ".join(d.isoformat() for d in known[-12:]) or "none"
            raise MicrosegError(f"no snapshot of {kind} on {date}; snapshots: {shown}")


def transitions(wh: DuckDBWarehouse, kind: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """``source, target, customers, clv_from, clv_to, revenue`` between two snapshots of a layer
    (see the module docs); ``revenue`` is the movers' net revenue after ``start`` up to ``end``."""
    if end <= start:
        raise MicrosegError(f"the later snapshot ({end}) must come after the earlier one ({start})")
    _check_dates(wh, kind, [start, end])
    multi = kind in MULTI_KINDS
    if multi:
        pairs = f"""
            SELECT coalesce(a.segment_id, b.segment_id) AS segment,
                   CASE WHEN a.customer_id IS NULL THEN '{OUT}' ELSE a.segment_id END AS source,
                   CASE WHEN b.customer_id IS NULL THEN '{OUT}' ELSE b.segment_id END AS target,
                   coalesce(a.customer_id, b.customer_id) AS customer_id
            FROM a FULL JOIN b ON a.customer_id = b.customer_id AND a.segment_id = b.segment_id
        """
    else:
        pairs = f"""
            SELECT coalesce(a.segment_id, '{NEW}') AS source, coalesce(b.segment_id, '{GONE}') AS target,
                   coalesce(a.customer_id, b.customer_id) AS customer_id
            FROM a FULL JOIN b ON a.customer_id = b.customer_id
        """
    frame = wh.fetch_df(
        f"""
        WITH a AS (SELECT customer_id, segment_id FROM segment_memberships WHERE kind = ? AND as_of = ?),
        b AS (SELECT customer_id, segment_id FROM segment_memberships WHERE kind = ? AND as_of = ?),
        pairs AS ({pairs})
        SELECT {"segment, " if multi else ""}source, target, count(*) AS customers,
               sum(v1.clv) AS clv_from, sum(v2.clv) AS clv_to,
               sum(coalesce(s2.net_revenue, 0) - coalesce(s1.net_revenue, 0))::DOUBLE AS revenue
        FROM pairs p
        LEFT JOIN customer_values v1 ON v1.customer_id = p.customer_id AND v1.as_of = ?
        LEFT JOIN customer_values v2 ON v2.customer_id = p.customer_id AND v2.as_of = ?
        LEFT JOIN customer_summary s1 ON s1.customer_id = p.customer_id AND s1.as_of = ?
        LEFT JOIN customer_summary s2 ON s2.customer_id = p.customer_id AND s2.as_of = ?
        GROUP BY ALL ORDER BY ALL
        """,
        [kind, start, kind, end, start, end, start, end],
    )
    frame["customers"] = frame["customers"].astype("int64")
    return frame


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


def period_counts(
    wh: DuckDBWarehouse,
    kind: str = "lifecycle",
    group_kind: str | None = "clv_tier",
    dates: Sequence[dt.date] | None = None,
) -> pd.DataFrame:
    """Transition counts of every period for alerts: ``as_of`` (end of the period), ``group``
    (``all``, and each segment of ``group_kind`` at the start of the period), ``source``,
    ``target``, ``moved`` and ``base`` (customers in ``source`` at the start, within the group).
    Customers new in a period are not counted (they had no source). A period runs between
    consecutive stored snapshots, or consecutive ``dates`` when given (the regular ones)."""
    if kind in MULTI_KINDS:
        raise MicrosegError(f"alerts need a layer with one segment per customer, not {kind}")
    chosen = None if dates is None else list(dates)
    groups = "'all'"
    join = ""
    if group_kind:
        join = (
            "LEFT JOIN segment_memberships g ON g.customer_id = a.customer_id AND g.as_of = a.as_of "
            "AND g.kind = ?"
        )
        groups = "['all', coalesce(g.segment_id, 'none')]"
    frame = wh.fetch_df(
        f"""
        WITH dates AS (
            SELECT as_of, lead(as_of) OVER (ORDER BY as_of) AS next_as_of
            FROM (SELECT DISTINCT as_of FROM segment_memberships WHERE kind = ?
                  AND (? IS NULL OR list_contains(?, as_of)))
        ),
        moves AS (
            SELECT d.next_as_of AS as_of, a.segment_id AS source, b.segment_id AS target,
                   unnest({groups if group_kind else "['all']"}) AS "group"
            FROM segment_memberships a
            JOIN dates d ON d.as_of = a.as_of AND d.next_as_of IS NOT NULL
            JOIN segment_memberships b ON b.customer_id = a.customer_id AND b.as_of = d.next_as_of
                 AND b.kind = a.kind
            {join}
            WHERE a.kind = ?
        ),
        counted AS (
            SELECT as_of, "group", source, target, count(*) AS moved FROM moves GROUP BY ALL
        )
        SELECT as_of, "group", source, target, moved,
               sum(moved) OVER (PARTITION BY as_of, "group", source) AS base
        FROM counted ORDER BY as_of, "group", source, target
        """,
        [kind, chosen, chosen, *([group_kind] if group_kind else []), kind],
    )
    for column in ("moved", "base"):
        frame[column] = frame[column].astype("int64")
    return frame




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
    if kind in MULTI_KINDS:
        raise MicrosegError(f"forecasts need a layer with one segment per customer, not {kind}")
    group = "coalesce(g.segment_id, 'none')" if group_kind else "'all'"
    join = (
        "LEFT JOIN segment_memberships g ON g.customer_id = m.customer_id AND g.as_of = m.as_of "
        "AND g.kind = ?"
        if group_kind
        else ""
    )
    extra = ""
    if features:
        columns = [f"p.{c}" for c in PROFILE_HISTORY] + [f"v.{c}" for c in VALUE_HISTORY if c != "clv"]
        extra = ", " + ", ".join(columns)
        join += " LEFT JOIN customer_profiles p ON p.customer_id = m.customer_id AND p.as_of = m.as_of"
    return wh.fetch_df(
        f"""
        SELECT m.customer_id, m.as_of, m.segment_id AS state, {group} AS "group", v.clv{extra}
        FROM segment_memberships m {join}
        LEFT JOIN customer_values v ON v.customer_id = m.customer_id AND v.as_of = m.as_of
        WHERE m.kind = ? ORDER BY m.as_of, m.customer_id
        """,
        [*([group_kind] if group_kind else []), kind],
    )


def journey(wh: DuckDBWarehouse, customer_id: str, kind: str = "lifecycle") -> pd.DataFrame:
    """A customer's path through a layer: ``segment_id, valid_from, valid_to, snapshots``, one row
    per stay, oldest first (from the membership history)."""
    frame = wh.fetch_df(
        """
        SELECT h.segment_id, h.valid_from, h.valid_to,
               (SELECT count(DISTINCT as_of) FROM segment_memberships m WHERE m.kind = h.kind
                AND m.customer_id = h.customer_id AND m.segment_id = h.segment_id
                AND m.as_of >= h.valid_from AND (h.valid_to IS NULL OR m.as_of < h.valid_to)) AS snapshots
        FROM segment_history h WHERE h.customer_id = ? AND h.kind = ?
        ORDER BY h.valid_from, h.segment_id
        """,
        [customer_id, kind],
    )
    if frame.empty:
        known = wh.fetch("SELECT count(*) FROM segment_history WHERE customer_id = ?", [customer_id])[0][0]
        if not known:
            raise MicrosegError(f"no membership history for customer {customer_id!r}")
    return frame


def typical_paths(wh: DuckDBWarehouse, kind: str = "lifecycle", top: int = 10) -> pd.DataFrame:
    """The most common paths through a layer: each customer's sequence of segments over the
    stored snapshots (repeats collapsed), ``path, customers, share``."""
    if kind in MULTI_KINDS:
        raise MicrosegError(f"paths need a layer with one segment per customer, not {kind}")
    return wh.fetch_df(
        """
        WITH paths AS (
            SELECT customer_id, string_agg(segment_id, ' -> ' ORDER BY valid_from) AS path
            FROM segment_history WHERE kind = ? GROUP BY customer_id
        )
        SELECT path, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share
        FROM paths GROUP BY path ORDER BY customers DESC, path LIMIT ?
        """,
        [kind, int(top)],
    )


def stage_sizes(wh: DuckDBWarehouse, kind: str = "lifecycle") -> pd.DataFrame:
    """``as_of, segment, customers`` for every stored snapshot of a layer."""
    return wh.fetch_df(
        "SELECT as_of, segment_id AS segment, count(*) AS customers FROM segment_memberships "
        "WHERE kind = ? GROUP BY ALL ORDER BY as_of, segment",
        [kind],
    )

"""Named queries of how customers move: memberships between snapshots, stays, paths and sizes.

``transitions`` is an Ibis relation over the stored tables (``transitions_relation``), so the
same counts come from DuckDB and from Spark; the others are read from the DuckDB file.
See ``microseg.dynamics.migration`` for what the numbers mean.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir
import pandas as pd

from microseg.config import suggest
from microseg.errors import MicrosegError
from microseg.registry import MULTI_LAYERS
from microseg.warehouse.duckdb import DuckDBWarehouse

NEW, GONE, OUT = "(new)", "(gone)", "(out)"
#: Layers where a customer can be in several segments.
MULTI_KINDS = MULTI_LAYERS


def stored_dates(wh: DuckDBWarehouse, kind: str | None = None) -> list[dt.date]:
    """Dates with stored memberships (of one layer), oldest first."""
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    rows = wh.fetch(f"SELECT DISTINCT as_of FROM segment_memberships {where} ORDER BY as_of", params)
    return [r[0] for r in rows]


def check_name(what: str, name: str, known: Sequence[str]) -> None:
    """Raise a clear error when ``name`` is not among the ``known`` names."""
    known = sorted(str(k) for k in known)
    if name not in known:
        hint = suggest(name, known)
        shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "") if known else "none yet"
        raise MicrosegError(f"no {what} {name!r}{hint}; known: {shown}")


def _check_dates(wh: DuckDBWarehouse, kind: str, dates: Sequence[dt.date]) -> None:
    known = [r[0] for r in wh.fetch("SELECT DISTINCT kind FROM segment_memberships")]
    check_name("segment layer", kind, known)
    known = stored_dates(wh, kind)
    for date in dates:
        if date not in known:
            shown = ", ".join(d.isoformat() for d in known[-12:]) or "none"
            raise MicrosegError(f"no snapshot of {kind} on {date}; snapshots: {shown}")


def transitions_relation(
    memberships: ir.Table,
    values: ir.Table,
    summary: ir.Table,
    kind: str,
    start: dt.date,
    end: dt.date,
) -> ir.Table:
    """``[segment,] source, target, customers, clv_from, clv_to, revenue`` between two snapshots
    of a layer, as an engine relation over the ``segment_memberships``, ``customer_values`` and
    ``customer_summary`` tables (see ``microseg.dynamics.migration`` for the meaning)."""

    def on_day(day: dt.date, prefix: str) -> ir.Table:
        rows = memberships.view()  # the table twice: a self-join
        rows = rows.filter((rows.kind == kind) & (rows.as_of == day))
        return rows.select(**{f"{prefix}_id": rows.customer_id, f"{prefix}_segment": rows.segment_id})

    a, b = on_day(start, "a"), on_day(end, "b")
    multi = kind in MULTI_KINDS
    if multi:
        joined = a.outer_join(b, [a.a_id == b.b_id, a.a_segment == b.b_segment])
        pairs = joined.select(
            segment=ibis.coalesce(joined.a_segment, joined.b_segment),
            source=ibis.ifelse(joined.a_id.isnull(), OUT, joined.a_segment),
            target=ibis.ifelse(joined.b_id.isnull(), OUT, joined.b_segment),
            customer_id=ibis.coalesce(joined.a_id, joined.b_id),
        )
    else:
        joined = a.outer_join(b, a.a_id == b.b_id)
        pairs = joined.select(
            source=joined.a_segment.fill_null(NEW),
            target=joined.b_segment.fill_null(GONE),
            customer_id=ibis.coalesce(joined.a_id, joined.b_id),
        )

    def on(table: ir.Table, day: dt.date, columns: dict[str, str]) -> ir.Table:
        rows = table.view()
        rows = rows.filter(rows.as_of == day)
        return rows.select(
            **{"customer_id": rows.customer_id}, **{new: rows[old] for new, old in columns.items()}
        )

    pairs = pairs.view()  # a relation of its own, not a longer chain of the join above
    for part in (
        on(values, start, {"clv_1": "clv"}),
        on(values, end, {"clv_2": "clv"}),
        on(summary, start, {"net_1": "net_revenue"}),
        on(summary, end, {"net_2": "net_revenue"}),
    ):
        pairs = pairs.left_join(part, "customer_id").drop("customer_id_right")
    keys = ["segment", "source", "target"] if multi else ["source", "target"]
    zero = ibis.literal(0, type=summary.net_revenue.type())
    moved = pairs.net_2.fill_null(zero) - pairs.net_1.fill_null(zero)
    return (
        pairs.group_by(keys)
        .aggregate(
            customers=pairs.count(),
            clv_from=pairs.clv_1.sum(),
            clv_to=pairs.clv_2.sum(),
            revenue=moved.sum().cast("float64"),
        )
        .order_by(keys)
    )


def transitions(wh: DuckDBWarehouse, kind: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """``transitions_relation`` of the stored tables, after checking the layer and the dates."""
    if end <= start:
        raise MicrosegError(f"the later snapshot ({end}) must come after the earlier one ({start})")
    _check_dates(wh, kind, [start, end])
    tables = (wh.table(n) for n in ("segment_memberships", "customer_values", "customer_summary"))
    frame = transitions_relation(*tables, kind, start, end).to_pandas()
    frame["customers"] = frame["customers"].astype("int64")
    return frame


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
    profile_columns: Sequence[str] = (),
    value_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per customer and snapshot: ``customer_id, as_of, state`` (the segment of ``kind``),
    ``group`` (the segment of ``group_kind``) and ``clv``: the input of the Markov forecast.
    With ``profile_columns`` and ``value_columns``, also those columns of the customer's profile
    and values on that date: the input of the customer forecast."""
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
    if profile_columns or value_columns:
        columns = [f"p.{c}" for c in profile_columns] + [f"v.{c}" for c in value_columns if c != "clv"]
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

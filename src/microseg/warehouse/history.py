"""Membership history: every stay of a customer in a segment, as an interval of snapshots.

``segment_memberships`` holds who was in which segment at each snapshot. ``segment_history``
condenses it: a customer who is in a segment at consecutive snapshots has one row
``(valid_from, valid_to)``, from the first of those snapshots to the first snapshot after them
at which the customer was no longer in the segment (empty while still in it). A customer was in
a segment on a date D when ``valid_from <= D < valid_to``: membership between two snapshots is
that of the earlier one.

A new snapshot later than every earlier one updates the history in place (stays that ended are
closed, new stays opened), and so does the latest snapshot computed again (what it wrote is taken
back first); a snapshot inserted between others, or an earlier one computed again, rebuilds it.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir
import pandas as pd

from microseg.schema import SEGMENT_HISTORY, SEGMENT_MEMBERSHIPS
from microseg.warehouse.duckdb import DuckDBWarehouse

HISTORY = SEGMENT_HISTORY.name
MEMBERS = SEGMENT_MEMBERSHIPS.name


def update_history(wh: DuckDBWarehouse, as_of: dt.date, *, recomputed: bool = False) -> str:
    """Bring ``segment_history`` up to date after the snapshot of ``as_of`` was stored.

    Returns ``"appended"`` when the snapshot extended the history in place, ``"rebuilt"`` when
    the history was rebuilt from every snapshot."""
    latest_before = wh.fetch(f"SELECT max(as_of) FROM {MEMBERS} WHERE as_of < ?", [as_of])[0][0]
    later = wh.fetch(f"SELECT count(*) FROM {MEMBERS} WHERE as_of > ?", [as_of])[0][0]
    covered = wh.fetch(f"SELECT greatest(max(valid_from), max(valid_to)) FROM {HISTORY}")[0][0]
    if later or (covered != latest_before and not (recomputed and covered == as_of)):
        rebuild_history(wh)
        return "rebuilt"
    with wh.rewriting(SEGMENT_HISTORY) as history:
        if recomputed and covered == as_of:
            # the latest snapshot computed again: take back what it wrote, then append it anew
            wh.sql(f"DELETE FROM {history} WHERE valid_from = ?", [as_of])
            wh.sql(f"UPDATE {history} SET valid_to = NULL WHERE valid_to = ?", [as_of])
        # stays that did not continue into this snapshot end here
        wh.sql(
            f"UPDATE {history} h SET valid_to = ? WHERE h.valid_to IS NULL AND NOT EXISTS ("
            f"SELECT 1 FROM {MEMBERS} m WHERE m.as_of = ? AND m.customer_id = h.customer_id "
            "AND m.kind = h.kind AND m.segment_id = h.segment_id)",
            [as_of, as_of],
        )
        # memberships without an open stay start one
        wh.sql(
            f"INSERT INTO {history} SELECT m.customer_id, m.kind, m.segment_id, m.as_of, NULL "
            f"FROM {MEMBERS} m WHERE m.as_of = ? AND NOT EXISTS (SELECT 1 FROM {history} h "
            "WHERE h.valid_to IS NULL AND h.customer_id = m.customer_id AND h.kind = m.kind "
            "AND h.segment_id = m.segment_id)",
            [as_of],
        )
    return "appended"


def history_intervals(memberships: ir.Table) -> ir.Table:
    """Every stay of a customer in a segment, from a table of memberships at every snapshot:
    ``customer_id, kind, segment_id, valid_from, valid_to`` (gaps and islands, as an engine
    relation that DuckDB and Spark evaluate alike).

    Snapshots are numbered in date order; the memberships of one customer in one segment at
    consecutive snapshots form an island. A stay ends at the first snapshot after its island;
    one that reaches the latest snapshot is still open (``valid_to`` empty).
    """
    dates = memberships.select("as_of").distinct()
    dates = dates.mutate(
        k=ibis.row_number().over(order_by=dates.as_of),
        next_as_of=dates.as_of.lead().over(order_by=dates.as_of),
    ).view()
    m = memberships.select("customer_id", "kind", "segment_id", "as_of")
    numbered = m.join(dates, "as_of").view()
    within = ibis.row_number().over(
        group_by=[numbered.customer_id, numbered.kind, numbered.segment_id], order_by=numbered.k
    )
    numbered = numbered.mutate(island=numbered.k - within).view()
    stays = numbered.group_by("customer_id", "kind", "segment_id", "island").aggregate(
        valid_from=numbered.as_of.min(),
        last_next=numbered.next_as_of.max(),
        open=numbered.next_as_of.isnull().any(),
    )
    return stays.select(
        "customer_id",
        "kind",
        "segment_id",
        "valid_from",
        valid_to=ibis.ifelse(stays.open, ibis.null("date"), stays.last_next),
    )


def rebuild_history(wh: DuckDBWarehouse) -> None:
    """Recompute ``segment_history`` from every stored snapshot (:func:`history_intervals`)."""
    stays = wh.ibis.compile(history_intervals(wh.table(MEMBERS)))
    columns = "customer_id, kind, segment_id, valid_from, valid_to"
    with wh.rewriting(SEGMENT_HISTORY) as history:
        wh.sql(f"DELETE FROM {history}")
        wh.sql(f"INSERT INTO {history} ({columns}) SELECT {columns} FROM ({stays})")


def members_on(wh: DuckDBWarehouse, segment_id: str, on: dt.date, kind: str) -> pd.DataFrame:
    """Customers in a segment of a layer on a date: ``customer_id, kind, segment_id, valid_from,
    valid_to``, one row per customer.

    A segment id alone can name segments of several layers (``at_risk`` is a lifecycle stage and
    an RFM tier), so the layer is required; ``segment_layers`` says which layers have an id."""
    return wh.fetch_df(
        f"SELECT customer_id, kind, segment_id, valid_from, valid_to FROM {HISTORY} "
        "WHERE kind = ? AND segment_id = ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?) "
        "ORDER BY customer_id",
        [kind, segment_id, on, on],
    )


def segment_layers(wh: DuckDBWarehouse, segment_id: str, on: dt.date) -> dict[str, int]:
    """The layers that have a segment ``segment_id`` in any snapshot, each with the number of
    customers in it on ``on``."""
    rows = wh.fetch(
        f"SELECT kind, count(DISTINCT customer_id) FILTER (WHERE valid_from <= ? "
        f"AND (valid_to IS NULL OR valid_to > ?)) FROM {HISTORY} WHERE segment_id = ? GROUP BY kind",
        [on, on, segment_id],
    )
    return {kind: int(count) for kind, count in rows}


def customer_history(wh: DuckDBWarehouse, customer_id: str, kind: str | None = None) -> pd.DataFrame:
    """Every stay of one customer: ``kind, segment_id, valid_from, valid_to``, oldest first."""
    where, params = ("AND kind = ?", [kind]) if kind else ("", [])
    return wh.fetch_df(
        f"SELECT kind, segment_id, valid_from, valid_to FROM {HISTORY} WHERE customer_id = ? {where} "
        "ORDER BY kind, valid_from, segment_id",
        [customer_id, *params],
    )

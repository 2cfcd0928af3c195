"""Named queries: what the rest of microseg asks the warehouse, by name.

Each function reads (or, where it says so, writes) the stored tables of ``microseg.schema``;
callers never write SQL themselves.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from microseg.errors import InvalidInputError, MicrosegError
from microseg.schema import TABLES
from microseg.warehouse.duckdb import DuckDBWarehouse, quote_ident

#: Tables with one row per customer and snapshot, read by ``customer_rows``.
PER_CUSTOMER = ("customer_summary", "customer_values", "customer_profiles", "customer_categories")


def latest_event_time(wh: DuckDBWarehouse) -> dt.datetime | None:
    """The time of the latest stored event (None: no events)."""
    return wh.fetch("SELECT max(ts) FROM events")[0][0]


def first_known_event_day(wh: DuckDBWarehouse) -> dt.date | None:
    """The day of the first event of a known customer."""
    return wh.fetch("SELECT min(ts)::DATE FROM events WHERE customer_id IS NOT NULL")[0][0]


def first_purchase_day(wh: DuckDBWarehouse, until: dt.date) -> dt.date | None:
    """The first day with a purchase of a known customer, on or before ``until``."""
    return wh.fetch(
        "SELECT min(ts)::DATE FROM events WHERE event_type = 'purchase' AND customer_id IS NOT NULL "
        "AND ts::DATE <= ?",
        [until],
    )[0][0]


def export_parquet(wh: DuckDBWarehouse, table: str, path: Path) -> None:
    """Write a stored table to one Parquet file (for an engine that reads files)."""
    wh.sql(f"COPY {quote_ident(table)} TO '{str(path).replace(chr(39), chr(39) * 2)}' (FORMAT parquet)")


def latest_as_of(wh: DuckDBWarehouse, table: str) -> dt.date | None:
    """The latest snapshot date stored in a per-snapshot table (None: nothing stored)."""
    return wh.fetch(f"SELECT max(as_of) FROM {quote_ident(table)}")[0][0]


def snapshot_rows(wh: DuckDBWarehouse, table: str, as_of: dt.date) -> pd.DataFrame:
    """Every row of a per-customer table on one snapshot, by customer id."""
    return wh.fetch_df(f"SELECT * FROM {quote_ident(table)} WHERE as_of = ? ORDER BY customer_id", [as_of])


def delete_snapshot(wh: DuckDBWarehouse, table: str, as_of: dt.date) -> None:
    """Remove the rows of one snapshot from a per-snapshot table."""
    wh.delete_as_of(TABLES[table], as_of)


def memberships(wh: DuckDBWarehouse, as_of: dt.date, kind: str | None = None) -> pd.DataFrame:
    """``customer_id, kind, segment_id`` on one snapshot (one layer or all)."""
    where, params = ("AND kind = ?", [kind]) if kind else ("", [])
    return wh.fetch_df(
        f"SELECT customer_id, kind, segment_id FROM segment_memberships WHERE as_of = ? {where} "
        "ORDER BY kind, segment_id, customer_id",
        [as_of, *params],
    )


def segments(wh: DuckDBWarehouse, as_of: dt.date, kind: str | None = None) -> pd.DataFrame:
    """The segments of one snapshot with label, size, shares, value and card."""
    where, params = ("AND kind = ?", [kind]) if kind else ("", [])
    return wh.fetch_df(
        "SELECT kind, segment_id, label, size, share, revenue_share, mean_clv, card FROM segments "
        f"WHERE as_of = ? {where} ORDER BY kind, size DESC, segment_id",
        [as_of, *params],
    )


def segment_models(wh: DuckDBWarehouse, as_of: dt.date) -> pd.DataFrame:
    """The clustering models of one snapshot."""
    return wh.fetch_df("SELECT * FROM segment_models WHERE as_of = ? ORDER BY kind, scope", [as_of])


def segment_changes(wh: DuckDBWarehouse, as_of: dt.date) -> pd.DataFrame:
    """How the clustered segments of one snapshot continue those of the one before."""
    return wh.fetch_df("SELECT * FROM segment_changes WHERE as_of = ? ORDER BY kind, event", [as_of])


def customer_rows(wh: DuckDBWarehouse, table: str, as_of: dt.date, customer_id: str) -> pd.DataFrame:
    """One customer's rows of a per-customer table on one snapshot."""
    if table not in PER_CUSTOMER:
        raise InvalidInputError(f"not a per-customer table: {table}")
    return wh.fetch_df(
        f"SELECT * FROM {quote_ident(table)} WHERE as_of = ? AND customer_id = ?", [as_of, customer_id]
    )


def customer_segments(wh: DuckDBWarehouse, as_of: dt.date, customer_id: str) -> pd.DataFrame:
    """``customer_id, kind, segment_id, label`` of one customer's segments on one snapshot."""
    return wh.fetch_df(
        "SELECT m.customer_id, m.kind, m.segment_id, s.label FROM segment_memberships m "
        "LEFT JOIN segments s ON s.as_of = m.as_of AND s.kind = m.kind AND s.segment_id = m.segment_id "
        "WHERE m.as_of = ? AND m.customer_id = ?",
        [as_of, customer_id],
    )


def layers(wh: DuckDBWarehouse) -> list[str]:
    """The layers with stored memberships."""
    return sorted(str(r[0]) for r in wh.fetch("SELECT DISTINCT kind FROM segment_memberships"))


def history_segment_ids(wh: DuckDBWarehouse, kind: str | None = None) -> list[str]:
    """Every segment id in the membership history (of one layer)."""
    where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
    rows = wh.fetch(f"SELECT DISTINCT segment_id FROM segment_history {where}", params)
    return sorted(str(r[0]) for r in rows)


def value_models(wh: DuckDBWarehouse, as_of: dt.date | None) -> tuple[dt.date | None, pd.DataFrame]:
    """(date, rows) of the value models considered on a snapshot (the latest when None)."""
    as_of = as_of or latest_as_of(wh, "value_models")
    return as_of, wh.fetch_df(
        "SELECT * FROM value_models WHERE as_of = ? ORDER BY status <> 'chosen', model = 'GammaGamma', model",
        [as_of],
    )


def model_fits(wh: DuckDBWarehouse, as_of: dt.date | None) -> pd.DataFrame:
    """The fitted parameters of the value models of a snapshot (the latest when None)."""
    as_of = as_of or latest_as_of(wh, "model_fits")
    return wh.fetch_df("SELECT * FROM model_fits WHERE as_of = ? ORDER BY model, parameter", [as_of])


def quarantined_in(wh: DuckDBWarehouse, source: str) -> int:
    """Rows in quarantine from one source."""
    return int(wh.fetch("SELECT count(*) FROM quarantine WHERE source = ?", [source])[0][0])


def imports(wh: DuckDBWarehouse) -> pd.DataFrame:
    """The import log, oldest first."""
    return wh.fetch_df("SELECT * FROM imports ORDER BY started_at")


def as_of_is(as_of: dt.date) -> str:
    """The condition that picks the rows of one snapshot, for ``replace_rows``/``replace_frame``.

    >>> as_of_is(dt.date(2025, 12, 31))
    "as_of = DATE '2025-12-31'"
    """
    return f"as_of = DATE '{as_of.isoformat()}'"


def stored_as_of(wh: DuckDBWarehouse, table: str, as_of: dt.date | None) -> dt.date:
    """``as_of``, or when None the latest snapshot stored in ``table`` (an error if none is)."""
    if as_of is not None:
        return as_of
    latest = latest_as_of(wh, table)
    if latest is None:
        raise MicrosegError("no pipeline run is stored yet; run `microseg run` first")
    return latest


#: The tables ``Project.status`` counts.
MAIN_TABLES = (
    "events",
    "customers",
    "products",
    "quarantine",
    "imports",
    "customer_summary",
    "customer_values",
)


def main_table_counts(wh: DuckDBWarehouse) -> dict[str, int]:
    """Row counts of the main tables (``MAIN_TABLES``)."""
    return {name: wh.count(name) for name in MAIN_TABLES}

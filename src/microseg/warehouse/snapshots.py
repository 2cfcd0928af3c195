"""The ``snapshots`` table: which dates were computed, from which inputs, in how long.

A snapshot's *fingerprint* sums up everything its results depend on (the events up to its date
with the import that stored each, the customers and products it can see, the settings, and the
snapshot it continues): a stored snapshot whose fingerprint is unchanged need not be computed
again.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd

from microseg.warehouse.duckdb import DuckDBWarehouse


def is_stored(wh: DuckDBWarehouse, as_of: dt.date) -> bool:
    """Whether a snapshot of ``as_of`` is stored."""
    return bool(wh.fetch("SELECT count(*) FROM snapshots WHERE as_of = ?", [as_of])[0][0])


def stored_fingerprint(wh: DuckDBWarehouse, as_of: dt.date) -> tuple[str, int] | None:
    """(fingerprint, customers) of the stored snapshot of ``as_of``, None when there is none."""
    rows = wh.fetch("SELECT fingerprint, customers FROM snapshots WHERE as_of = ?", [as_of])
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def record(
    wh: DuckDBWarehouse, as_of: dt.date, seconds: float, customers: int, events: int, fingerprint: str
) -> None:
    """Store (or replace) the row of the snapshot of ``as_of``."""
    with wh.transaction():
        wh.sql("DELETE FROM snapshots WHERE as_of = ?", [as_of])
        wh.sql(
            "INSERT INTO snapshots VALUES (?, now()::TIMESTAMP, ?, ?, ?, ?)",
            [as_of, seconds, customers, events, fingerprint],
        )


def listing(wh: DuckDBWarehouse) -> pd.DataFrame:
    """``as_of, computed_at, seconds, customers, events`` of every stored snapshot, oldest first."""
    return wh.fetch_df("SELECT as_of, computed_at, seconds, customers, events FROM snapshots ORDER BY as_of")


def signature(wh: DuckDBWarehouse) -> tuple:
    """A value that changes whenever a snapshot is stored or recomputed."""
    return tuple(wh.fetch("SELECT count(*), max(computed_at) FROM snapshots")[0])


def fingerprint(wh: DuckDBWarehouse, as_of: dt.date, settings: str) -> tuple[str, int]:
    """(fingerprint, number of events) of the inputs of the snapshot of ``as_of``; ``settings``
    is the digest of the settings that change its results."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    by_import = events_by_import(wh, as_of)
    events = sum(int(n) for _, n in by_import)
    event_hash = ";".join(f"{i}:{n}" for i, n in by_import)
    # customers and products the snapshot can see: later sign-ups and products first sold later
    # do not make an old snapshot stale (as the summary: signed up by then, seen by then, or
    # undated and never seen); one pass over the events for each
    customers = wh.fetch(
        "WITH seen AS (SELECT customer_id, min(ts) AS first_ts FROM events WHERE customer_id IS NOT NULL "
        "GROUP BY customer_id) SELECT count(*), coalesce(bit_xor(hash(c)), 0) FROM customers c "
        "LEFT JOIN seen s ON s.customer_id = c.customer_id WHERE c.signup_date <= ? OR s.first_ts < ? "
        "OR (c.signup_date IS NULL AND s.customer_id IS NULL)",
        [as_of, cutoff],
    )[0]
    products = wh.fetch(
        "WITH seen AS (SELECT DISTINCT product_id FROM events WHERE ts < ? AND product_id IS NOT NULL) "
        "SELECT count(*), coalesce(bit_xor(hash(p)), 0), string_agg(DISTINCT category ORDER BY category) "
        "FROM products p JOIN seen s ON s.product_id = p.product_id",
        [cutoff],
    )[0]
    parts = [str(events), str(event_hash), *map(str, customers), *map(str, products), settings]
    parts.append(lineage(wh, as_of))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32], int(events)


def events_by_import(wh: DuckDBWarehouse, as_of: dt.date) -> list[tuple[str, int]]:
    """``(import_id, events)`` of the events up to the end of ``as_of``, by import: stored events
    never change, and a corrected event is stored again by the correcting import (its old row
    goes), so any change to an event up to the date changes these counts."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    rows = wh.fetch(
        "SELECT import_id, count(*) FROM events WHERE ts < ? GROUP BY import_id ORDER BY import_id", [cutoff]
    )
    return [(str(i), int(n)) for i, n in rows]


def lineage(wh: DuckDBWarehouse, as_of: dt.date) -> str:
    """The snapshot that the snapshot of ``as_of`` continues: the date and fingerprint of the
    latest stored snapshot before it ("first" when there is none)."""
    before = wh.fetch(
        "SELECT as_of, fingerprint FROM snapshots WHERE as_of < ? ORDER BY as_of DESC LIMIT 1", [as_of]
    )
    return f"after {before[0][0]}:{before[0][1]}" if before else "first"

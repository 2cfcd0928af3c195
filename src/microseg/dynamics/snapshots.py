"""Snapshot dates and input fingerprints.

A *snapshot* is one pipeline run as of a date: summary, values, profile and every segment layer,
computed from the events up to the end of that day only (every feature query filters on
``events_until``), so a snapshot of a past date is what the pipeline would have said that day.

Backfilling runs a series of dates in order, oldest first, so that each run's segment ids are
matched with the run before it. A snapshot is recomputed only when its inputs changed: the
*fingerprint* digests the events up to the date (their number and an order-free hash of their
ids: imports only ever add events, never change one), the customers and products tables, and
the settings that shape the results. Events after the date do not enter it, so importing new
events leaves the fingerprints of earlier snapshots, and the snapshots, as they are.

A snapshot's segment ids and clustering models continue the snapshot before it, so its
fingerprint also holds its *lineage*: the date and fingerprint of the snapshot before it. A
snapshot computed before its predecessors existed (the analysis date first, then a backfill of
the months before) is recomputed once they do, and every later snapshot follows in turn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

import pandas as pd

from microseg.config import ProjectConfig
from microseg.errors import InvalidInputError
from microseg.warehouse import snapshots as stored
from microseg.warehouse.duckdb import DuckDBWarehouse

EVERY = ("month", "week")


def snapshot_dates(start: dt.date, end: dt.date, every: str = "month") -> list[dt.date]:
    """The snapshot dates from ``start`` to ``end`` (both included when they are snapshot dates).

    ``month``: the last day of every month from ``start``'s month on, up to ``end``;
    ``week``: ``end`` and every 7 days before it, back to ``start``.

    >>> snapshot_dates(dt.date(2025, 1, 15), dt.date(2025, 4, 30))
    [datetime.date(2025, 1, 31), datetime.date(2025, 2, 28), datetime.date(2025, 3, 31), datetime.date(2025, 4, 30)]
    >>> snapshot_dates(dt.date(2025, 3, 1), dt.date(2025, 3, 31), "week")
    [datetime.date(2025, 3, 3), datetime.date(2025, 3, 10), datetime.date(2025, 3, 17), datetime.date(2025, 3, 24), datetime.date(2025, 3, 31)]
    """
    if every not in EVERY:
        raise InvalidInputError(f"every must be one of {', '.join(EVERY)}, got {every!r}")
    if end < start:
        raise InvalidInputError(f"the end date {end} is before the start date {start}")
    if every == "week":  # counted back from the end, so the end is always a snapshot date
        dates = pd.date_range(end=end, periods=(end - start).days // 7 + 1, freq="7D")
    else:
        dates = pd.date_range(start, end, freq="ME")
    return [day.date() for day in dates]


def settings_digest(config: ProjectConfig) -> str:
    """A digest of the settings that change a snapshot's results."""
    relevant = {
        "clv": dataclasses.asdict(config.clv),
        "segments": dataclasses.asdict(config.segments),
        "backend": config.backend,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(wh: DuckDBWarehouse, as_of: dt.date, config: ProjectConfig) -> tuple[str, int]:
    """(fingerprint, number of events) of the inputs of the snapshot of ``as_of``: the events,
    customers and products it can see, the settings that change its results and the snapshot
    it continues (see ``microseg.warehouse.snapshots.fingerprint``)."""
    return stored.fingerprint(wh, as_of, settings_digest(config))

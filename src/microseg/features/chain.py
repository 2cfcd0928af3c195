"""Incremental snapshots: the last snapshot a project computed, kept to continue from.

A backfill computes month ends oldest first, and most of what a month end's aggregates hold was
already in the month end before it. :class:`SnapshotChain` keeps the aggregates of the last
snapshot a project computed (temporary tables of the engine, never per-customer frames in
Python) and builds the next snapshot from them plus the events after that date
(:meth:`AsOf.advance <microseg.features.asof.AsOf.advance>`), when that gives exactly what a
computation from all events gives:

* the next date is on or after the kept one, with the same page flags;
* the events up to the kept date are the ones the kept snapshot saw: the count of stored events
  up to that date by the import that stored them (what the snapshot fingerprint reads) is
  unchanged. An import of events dated before it (a late file, a correction) changes the counts,
  and the next snapshot is computed from all its events;
* the engine is DuckDB, whose temporary tables hold their rows until dropped. On Spark the
  project exports the warehouse to Parquet files again for every run, and a persisted frame
  that Spark evicts is recomputed from the files as they are then, so a snapshot is always
  computed from all its events there.

The models are not continued here. The CLV model is fitted again at every snapshot: its data
(the customers' repeat purchases, recency and age) changes with every date, the fit runs on the
counts compressed to distinct (x, t_x, T) rows, which is cheap, and a fit started from the
previous parameters could stop at a slightly different optimum than a fresh one, which would make
a snapshot depend on the order the dates were computed in. The clustering models are continued
from the snapshot before by the segmentation itself (``microseg.segments.clustered``), whether
the aggregates were continued or not, so the segments are the same either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import ibis
import ibis.expr.types as ir

from microseg.features.asof import AsOf

__all__ = ["SnapshotChain"]


def _on_duckdb(table: ir.Table) -> bool:
    try:
        return ibis.get_backend(table).name == "duckdb"
    except Exception:  # an in-memory table not bound to a connection yet
        return False


class SnapshotChain:
    """The last snapshot computed, kept to continue from.

    ``seen`` gives, for a date, a value that changes whenever any stored event up to the end of
    that day changes (``microseg.warehouse.snapshots.events_by_import``).

    >>> import datetime as dt, ibis
    >>> con = ibis.duckdb.connect()
    >>> events = con.create_table("events", ibis.memtable({
    ...     "customer_id": ["a", "a", "b"], "event_type": ["purchase"] * 3,
    ...     "ts": [dt.datetime(2024, 1, 2), dt.datetime(2024, 2, 3), dt.datetime(2024, 2, 9)],
    ...     "amount": [10.0, 5.0, 4.0]}))
    >>> chain = SnapshotChain(seen=lambda day: "unchanged")
    >>> for month_end in (dt.date(2024, 1, 31), dt.date(2024, 2, 29)):
    ...     snapshot = chain.open(events, month_end)
    ...     with chain.computing(snapshot):
    ...         customers = snapshot.customer_activity.count().to_pyarrow().as_py()
    ...     print(month_end, snapshot.continued_from, customers)
    2024-01-31 None 1
    2024-02-29 2024-01-31 2
    >>> chain.release()
    """

    def __init__(self, seen: Callable[[dt.date], object]) -> None:
        self._seen = seen
        self._last: AsOf | None = None
        self._seen_then: object = None  # ``seen`` of the kept snapshot's date, when it was kept

    def open(
        self,
        events: ir.Table,
        as_of: dt.date,
        *,
        customers: ir.Table | None = None,
        products: ir.Table | None = None,
        page_flags: Mapping[str, str] | None = None,
    ) -> AsOf:
        """The snapshot of ``as_of`` (its aggregates cached for the run): continuing the kept one
        when that is exact (see the module docstring), else computed from all its events."""
        last, flags = self._last, dict(page_flags or {})
        if (
            last is not None
            and last.as_of <= as_of
            and last.page_flags == flags
            and _on_duckdb(events)
            and self._seen(last.as_of) == self._seen_then
        ):
            self._last = None  # advancing spends it
            return last.advance(as_of, events=events, customers=customers, products=products)
        self.release()
        return AsOf(events, as_of, customers=customers, products=products, page_flags=flags, cache=True)

    @contextmanager
    def computing(self, snapshot: AsOf) -> Iterator[AsOf]:
        """Use ``snapshot`` for one run: kept to continue from when the run succeeds, released
        when it fails (its tables may hold what a rolled-back transaction undid)."""
        try:
            yield snapshot
        except BaseException:
            snapshot.release()
            raise
        self.release()
        if _on_duckdb(snapshot.events):
            self._last, self._seen_then = snapshot, self._seen(snapshot.as_of)
        else:
            snapshot.release()

    def release(self) -> None:
        """Drop the kept snapshot's tables: the next snapshot is computed from all its events."""
        if self._last is not None:
            self._last.release()
        self._last, self._seen_then = None, None

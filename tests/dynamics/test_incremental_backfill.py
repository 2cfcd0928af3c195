"""A backfill that continues each snapshot from the one before stores exactly what a backfill
computing every snapshot from all its events stores."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from microseg.features.asof import AsOf
from microseg.project import Project

#: Every per-customer table a snapshot stores, and the tables of its segments and models.
STORED = (
    "customer_summary",
    "customer_values",
    "model_fits",
    "value_models",
    "segment_memberships",
    "segments",
    "segment_changes",
    "segment_models",
    "segment_history",
)
#: Columns that say when or how fast something was computed, not what.
WHEN = {"computed_at", "fitted_at", "seconds", "created_at", "updated_at"}
START, END = dt.date(2025, 7, 1), dt.date(2025, 12, 31)  # six month ends of the demo


def is_json(value) -> bool:
    return isinstance(value, str) and value[:1] in ("{", "[")


def stored_rows(project: Project, table: str) -> pd.DataFrame:
    frame = project.warehouse.table(table).to_pandas()
    frame = frame.drop(columns=[c for c in frame.columns if c in WHEN])
    # rows in order of everything but JSON text (whose numbers may differ in the last digit)
    plain = [c for c in frame.columns if not frame[c].map(is_json).any()]
    frame = frame.sort_values(plain, na_position="first", ignore_index=True)
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = frame[column].astype("datetime64[us]")
    return frame


def assert_close(a, b, where: str) -> None:
    """Parsed JSON values equal, numbers to 1e-9 relative (1e-12 absolute: a cluster centre
    that is zero up to rounding, 1e-17 in one run and -1e-17 in another)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        both_nan = math.isnan(a) and math.isnan(b)
        assert both_nan or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_tables(one: Project, other: Project) -> None:
    """Every stored table equal: money and counts exactly, floats to 1e-9 relative (also the
    numbers of the fitted models, stored as JSON text)."""
    for table in STORED:
        a, b = stored_rows(one, table), stored_rows(other, table)
        assert len(a) > 0 or table in ("segment_changes", "model_fits"), table
        models = [c for c in a.columns if a[c].map(is_json).any()]
        for column in models:
            for i, (x, y) in enumerate(zip(a.pop(column), b.pop(column), strict=True)):
                parsed = [json.loads(v) if isinstance(v, str) else v for v in (x, y)]
                assert_close(*parsed, f"{table}.{column}[{i}]")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, obj=table)


@pytest.fixture
def continued(monkeypatch) -> list[tuple[dt.date, dt.date]]:
    """(from, to) of every snapshot continued from another during the test."""
    return spy_on_advance(monkeypatch)


def spy_on_advance(monkeypatch) -> list[tuple[dt.date, dt.date]]:
    """Record (from, to) of every call of ``AsOf.advance`` from now on."""
    calls = []
    advance = AsOf.advance

    def spy(self, to_date, **tables):
        calls.append((self.as_of, to_date))
        return advance(self, to_date, **tables)

    monkeypatch.setattr(AsOf, "advance", spy)
    return calls


@pytest.fixture(scope="module")
def demo_imported(tmp_path_factory) -> Path:
    """A 3,000-customer demo, imported and not run yet (tests copy it)."""
    root = tmp_path_factory.mktemp("incremental") / "demo"
    with Project.create_demo(root, customers=3_000, seed=13) as project:
        project.import_sources()
    return root


def copy_of(root: Path, tmp_path: Path, name: str) -> Project:
    target = tmp_path / name
    shutil.copytree(root, target)
    return Project(target)


@pytest.mark.slow
def test_incremental_backfill_stores_what_a_full_one_stores(demo_imported, tmp_path, continued):
    with copy_of(demo_imported, tmp_path, "incremental") as incremental:
        result = incremental.backfill(START, END)
        month_ends = [run.as_of for run in result.runs]
        assert len(month_ends) == 6 and not any(run.reused for run in result.runs)
        assert continued == list(zip(month_ends, month_ends[1:], strict=False))
        continued.clear()
        with copy_of(demo_imported, tmp_path, "full") as full:
            full.backfill(START, END, force=True, incremental=False)
            assert continued == []
            assert_same_tables(incremental, full)


def add_late_events(project: Project, shift_days: int, import_id: str) -> int:
    """Store again, under a new import, the purchases of December 2025 moved ``shift_days``
    earlier (with new ids): events the earlier snapshots did not see."""
    wh = project.warehouse
    before = wh.count("events")
    wh.sql(
        "INSERT INTO events SELECT * REPLACE (event_id || '-late' AS event_id, "
        f"ts - INTERVAL {shift_days} DAY AS ts, '{import_id}' AS import_id) FROM events "
        "WHERE event_type = 'purchase' AND ts >= TIMESTAMP '2025-12-01' AND customer_id IS NOT NULL"
    )
    return wh.count("events") - before


@pytest.mark.slow
def test_events_imported_with_old_dates_are_not_missed(demo_imported, tmp_path, continued):
    """Events dated before the kept snapshot, imported after it was computed: the next snapshot
    is computed from all its events, and equals the one of a from-scratch backfill."""
    september, october = dt.date(2025, 9, 30), dt.date(2025, 10, 31)
    with copy_of(demo_imported, tmp_path, "late") as late:
        late.backfill(START, september)
        continued.clear()
        assert add_late_events(late, 90, "late-import") > 0  # into September (and October 1st)
        result = late.backfill(START, october)
        # July and August are as they were; September is computed again from all its events,
        # not from the kept September, which missed the late events; October continues it
        assert [run.reused for run in result.runs] == [True, True, False, False]
        assert continued == [(september, october)]
        with copy_of(demo_imported, tmp_path, "full") as full:
            add_late_events(full, 90, "late-import")
            full.backfill(START, october, force=True, incremental=False)
            assert_same_tables(late, full)


@pytest.mark.slow
def test_newer_events_do_not_stop_the_continuation(demo_imported, tmp_path, continued):
    """Events dated after the kept snapshot change nothing it saw: the next one continues it."""
    august, september = dt.date(2025, 8, 31), dt.date(2025, 9, 30)
    with copy_of(demo_imported, tmp_path, "newer") as newer:
        newer.backfill(START, august)
        newer.warehouse.sql("DELETE FROM events WHERE ts >= TIMESTAMP '2025-09-01'")
        add_late_events(newer, 80, "newer-import")  # December moved into September
        result = newer.backfill(START, september)
        assert [run.reused for run in result.runs] == [True, True, False]
        assert continued[-1] == (august, september)
        with copy_of(demo_imported, tmp_path, "full") as full:
            full.warehouse.sql("DELETE FROM events WHERE ts >= TIMESTAMP '2025-09-01'")
            add_late_events(full, 80, "newer-import")
            full.backfill(START, september, force=True, incremental=False)
            assert_same_tables(newer, full)

"""Import speed: microseg's validated import against a bare DuckDB load of the same file.

Builds one file of N generated events (default 10M, all event kinds mixed), then in one process:

* reference: ``CREATE TABLE AS SELECT * FROM read_parquet(...)`` into a fresh DuckDB file
  (no validation, no deduplication);
* microseg: ``Project.import_sources()`` into a fresh project (mapping, per-row checks,
  quarantine, event identity and corrections, customers and products);
* microseg again on the same file (the idempotent re-import: everything is a duplicate).

Prints rows/s and the ratio microseg / reference. Usage::

    python benchmarks/import_speed.py [--events 10000000] [--format parquet|csv] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import duckdb

from microseg.demo import generate_demo
from microseg.project import Project

EVENTS_PER_CUSTOMER = 38  # about what the demo generator writes over three years


def build_event_file(workdir: Path, events: int, fmt: str) -> Path:
    """One file of ``events`` generated events of every kind, in time order."""
    customers = max(1_000, int(events / EVENTS_PER_CUSTOMER * 1.1))
    demo = workdir / "demo"
    while True:
        manifest = generate_demo(demo, customers, seed=7)
        total = sum(
            n
            for kind, n in manifest.counts.items()
            if kind not in ("customers", "products", "truth", "truth_pairs")
        )
        if total >= events:
            break
        shutil.rmtree(demo)
        customers = int(customers * events / total * 1.05)
    parts = [
        str(p)
        for kind, paths in manifest.files.items()
        if kind not in ("customers", "products", "truth", "truth_pairs")
        for p in paths
    ]
    out = workdir / f"events.{fmt}"
    con = duckdb.connect()
    options = "(FORMAT parquet)" if fmt == "parquet" else "(HEADER, DELIMITER ',')"
    con.execute(
        f"COPY (SELECT * FROM read_parquet({parts!r}, union_by_name = true) ORDER BY ts LIMIT {events}) "
        f"TO '{out}' {options}"
    )
    shutil.rmtree(demo)
    return out


def reference_load(workdir: Path, path: Path, fmt: str) -> float:
    db = workdir / "reference.duckdb"
    con = duckdb.connect(str(db))
    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    started = time.perf_counter()
    con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}('{path}')")
    con.execute("CHECKPOINT")
    seconds = time.perf_counter() - started
    con.close()
    db.unlink()
    return seconds


def microseg_import(workdir: Path, path: Path) -> tuple[float, float, int]:
    root = workdir / "project"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    (root / "microseg.toml").write_text(f'[sources.events]\npath = "{path}"\n')
    with Project(root) as project:
        started = time.perf_counter()
        first = project.import_sources()
        project.warehouse.sql("CHECKPOINT")
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        second = project.import_sources()
        again = time.perf_counter() - started
        rows = sum(r.rows_read for r in first)
        assert sum(r.loaded for r in second) == 0, "re-import must add nothing"
        assert sum(r.loaded + r.duplicates + r.corrected + r.quarantined for r in first) == rows
    return seconds, again, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="microseg-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    path = build_event_file(workdir, args.events, args.format)
    print(f"built {path} ({path.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - started:.1f} s")
    reference = reference_load(workdir, path, args.format)
    seconds, again, rows = microseg_import(workdir, path)
    print(f"rows: {rows:,}")
    print(f"reference (bare DuckDB load): {reference:6.1f} s  {rows / reference:12,.0f} rows/s")
    print(f"microseg import:              {seconds:6.1f} s  {rows / seconds:12,.0f} rows/s")
    print(f"microseg re-import (no-op):   {again:6.1f} s  {rows / again:12,.0f} rows/s")
    print(f"ratio microseg / reference:   {seconds / reference:6.2f}x")
    if args.workdir is None:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()

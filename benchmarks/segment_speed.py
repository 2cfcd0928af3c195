"""Segmentation speed: the whole pipeline run against a bare DuckDB scan of the same events.

Generates the demo data for N customers (default 1M) and imports it into a fresh project (or
reuses the project given with ``--project``), then in one process:

* reference: ``CREATE TEMP TABLE AS SELECT customer_id, count(*), sum(amount), min(ts), max(ts)
  FROM events GROUP BY customer_id`` on the project's warehouse (a bare per-customer scan);
* microseg: ``Project.run()``: customer summary, RFM and CLV values, then the profile, lifecycle
  stages, tiers, clusters with stable ids, rule segments, persona cards and the stored
  memberships (the ``segments`` step).

Prints the seconds of every step and the ratios segments / reference and whole run / reference.
Usage::

    python benchmarks/segment_speed.py [--customers 1000000] [--workdir DIR] [--project DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from microseg.project import Project

SCAN = (
    "CREATE OR REPLACE TEMP TABLE __bench_scan AS SELECT customer_id, count(*) AS n, sum(amount) AS amount, "
    "min(ts) AS first_at, max(ts) AS last_at FROM events GROUP BY customer_id"
)


def build_project(workdir: Path, customers: int) -> Path:
    root = workdir / "project"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    with Project.create_demo(root, customers=customers, seed=7) as project:
        project.import_sources()
        events = project.warehouse.count("events")
    print(
        f"generated and imported {customers:,} customers, {events:,} events in {time.perf_counter() - started:.0f} s"
    )
    return root


def bare_scan(project: Project) -> tuple[float, int]:
    con = project.warehouse
    started = time.perf_counter()
    con.sql(SCAN)
    seconds = time.perf_counter() - started
    rows = con.fetch("SELECT count(*) FROM __bench_scan")[0][0]
    con.sql("DROP TABLE __bench_scan")
    return seconds, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--project", type=Path, default=None, help="reuse an imported project")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="microseg-bench-"))
    root = args.project or build_project(workdir, args.customers)
    with Project(root) as project:
        events = project.warehouse.count("events")
        bare_scan(project)  # warm the table's pages once, as the run finds them
        reference, customers = bare_scan(project)
        result = project.run()
        again, _ = bare_scan(project)
    reference = min(reference, again)
    segments = result.steps["segments"]
    print(f"customers: {customers:,}  events: {events:,}  as of {result.as_of}")
    print(f"reference  bare GROUP BY customer scan: {reference:8.2f} s")
    for name, seconds in result.steps.items():
        print(f"microseg   {name:<28} {seconds:8.2f} s")
    print(f"microseg   whole run                    {result.seconds:8.2f} s")
    print(f"ratio      segments step / reference:   {segments / reference:8.1f}x")
    print(f"ratio      whole run / reference:       {result.seconds / reference:8.1f}x")
    if args.project is None and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

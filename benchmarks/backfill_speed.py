"""Backfill speed: 12 month-end snapshots against one run of the same project.

Generates the demo data for N customers (default 1M) and imports it into a fresh project (or
reuses the project given with ``--project``), then in one process:

* reference: ``Project.run()`` as of the analysis date (one snapshot, every step);
* microseg: ``Project.backfill()`` of the 12 month ends before it, each from the events up to its
  date only, forced to compute (no stored snapshot reused); each snapshot continues the
  aggregates of the one before (incremental snapshots);
* with ``--compare``: the same backfill again, each snapshot computed from all its events
  (``incremental=False``), so the two are measured in one process on the same project.

Prints the seconds of both, the ratio backfill / one run (the target is 4x or less: the
snapshots share what stays the same from one month to the next), the seconds of each step, and
the processor seconds of the process (less sensitive than wall time to a busy machine).
Usage::

    python benchmarks/backfill_speed.py [--customers 1000000] [--months 12] [--workdir DIR] [--project DIR]
                                        [--compare]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from segment_speed import build_project  # same folder: the same generated project

from microseg.project import Project


def month_end_before(day: dt.date, months: int) -> dt.date:
    """The last day of the month ``months`` months before the month of ``day``."""
    first = day.replace(day=1)
    for _ in range(months - 1):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return first - dt.timedelta(days=1)


def print_steps(result, one) -> None:
    """Seconds of each step: the one run, and the mean and total over the backfill's snapshots."""
    names = list(one.steps)
    print(f"{'step':<18}{'one run':>10}{'backfill mean':>15}{'backfill total':>16}")
    for name in names:
        times = [run.steps.get(name, 0.0) for run in result.runs if not run.reused]
        mean = sum(times) / max(len(times), 1)
        print(f"{name:<18}{one.steps[name]:>10.2f}{mean:>15.2f}{sum(times):>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--project", type=Path, default=None, help="reuse an imported project")
    parser.add_argument(
        "--compare", action="store_true", help="also backfill each snapshot from all its events"
    )
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="microseg-bench-"))
    root = args.project or build_project(workdir, args.customers)
    with Project(root) as project:
        as_of = project.analysis_date()
        started = time.perf_counter()
        one = project.run(as_of)
        reference = time.perf_counter() - started
        start = month_end_before(as_of, args.months)
        end = month_end_before(as_of, 1)
        modes = [("incremental", True), ("from scratch", False)] if args.compare else [("incremental", True)]
        results = []
        for name, incremental in modes:
            cpu = time.process_time()
            result = project.backfill(start, end, every="month", force=True, incremental=incremental)
            results.append((name, result, time.process_time() - cpu))
    print(f"customers: {one.customers:,}  as of {as_of}")
    print(f"reference  one run as of {as_of}:            {reference:8.2f} s")
    for name, result, cpu in results:
        snapshots = len(result.runs)
        print(
            f"microseg   backfill of {snapshots} month ends ({start} to {end}), {name}: {result.seconds:8.2f} s"
        )
        for run in result.runs:
            print(f"           {run.as_of}  {run.seconds:8.2f} s  {run.customers:,} customers")
        print(f"ratio      backfill / one run:          {result.seconds / reference:8.1f}x")
        print(f"processor  seconds of the backfill:     {cpu:8.2f} s")
        print_steps(result, one)
    if args.project is None and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

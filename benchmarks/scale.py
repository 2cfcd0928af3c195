"""Scale: a project of N customers (default 10M, about 330M events) end to end on DuckDB.

Generates the demo data for N customers (or reuses the data of ``--project``), then times the
three things a company does with it, in this process:

* import: every source file into a fresh warehouse (validation, quarantine, lineage);
* run: the whole pipeline as of the analysis date;
* one more month-end snapshot: the month end before it (history and migration follow).

Prints the seconds of each, the end-to-end minutes and the peak resident memory of the process
(the targets at 10M customers: 10 minutes or less, 8 GB or less). DuckDB holds at most
``--memory-limit`` (``engine.memory_limit``, default 6GB) and spills the rest to disk.
Usage::

    python benchmarks/scale.py [--customers 10000000] [--workdir DIR] [--project DIR] [--memory-limit 6GB]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from microseg.project import Project


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far, in GB (ru_maxrss is in KB on Linux)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * (1 if sys.platform != "darwin" else 1 / 1024) / 1024**2


def generate(workdir: Path, customers: int) -> Path:
    root = workdir / "project"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    Project.create_demo(root, customers=customers, seed=7).close()
    print(f"generated {customers:,} customers in {time.perf_counter() - started:.0f} s (not timed below)")
    return root


def limit_memory(root: Path, limit: str) -> None:
    """Set ``engine.memory_limit`` in the project's configuration."""
    config = root / "microseg.toml"
    text = config.read_text()
    engine = tomllib.loads(text).get("engine", {})
    if engine.get("memory_limit", limit) != limit:
        raise SystemExit(f"{config} sets engine.memory_limit = {engine['memory_limit']!r}: remove it first")
    if "memory_limit" not in engine:
        if "engine" in tomllib.loads(text):
            raise SystemExit(f"{config} has an [engine] section: add memory_limit = {limit!r} to it")
        config.write_text(text.rstrip("\n") + f'\n\n[engine]\nmemory_limit = "{limit}"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--project", type=Path, default=None, help="reuse the generated data of a project")
    parser.add_argument("--memory-limit", default="6GB", help="engine.memory_limit of the run")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="microseg-bench-"))
    root = args.project or generate(workdir, args.customers)
    limit_memory(root, args.memory_limit)
    for stale in (root / "warehouse.duckdb", root / "warehouse.duckdb.wal"):
        stale.unlink(missing_ok=True)  # the import is timed from an empty warehouse
    steps: dict[str, float] = {}
    with Project(root) as project:
        started = time.perf_counter()
        project.import_sources()
        steps["import"] = time.perf_counter() - started
        events = project.warehouse.count("events")
        as_of = project.analysis_date()
        started = time.perf_counter()
        run = project.run(as_of)
        steps[f"run as of {as_of}"] = time.perf_counter() - started
        before = as_of.replace(day=1) - dt.timedelta(days=1)
        started = time.perf_counter()
        project.snapshot(before, force=True)
        steps[f"snapshot as of {before}"] = time.perf_counter() - started
    total = sum(steps.values())
    print(
        f"customers: {run.customers:,}  events: {events:,}  engine: duckdb  cores: {os.cpu_count()}  "
        f"memory limit: {args.memory_limit}"
    )
    for name, seconds in steps.items():
        print(f"microseg   {name:<32} {seconds:8.1f} s")
    print(f"end to end                                  {total / 60:8.2f} min")
    print(f"peak resident memory                        {peak_rss_gb():8.2f} GB")
    if args.project is None and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""``Project``: the one entry point every front end (CLI, API, Python) calls.

A project is a folder with a ``microseg.toml`` and a DuckDB warehouse file. ``Project`` imports
the configured sources, runs the pipeline as of an analysis date, and answers questions about
the results as DataFrames.

>>> import tempfile
>>> project = Project.init(tempfile.mkdtemp())
>>> project.status()["events"]
0
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from microseg.config import CONFIG_FILE, ProjectConfig, load_config
from microseg.engine.duckdb import DuckDBWarehouse
from microseg.errors import ConfigError, MicrosegError
from microseg.features.summary import customer_summary
from microseg.schema import CUSTOMER_SUMMARY
from microseg.sources.files import ImportResult, import_source

TEMPLATE = """\
# microseg project configuration: every setting is listed in docs/configuration.md
[project]
name = "{name}"
# analysis_date = "2025-12-31"   # "auto": the day of the latest event

[engine]
backend = "duckdb"               # or "spark"

# One table per source. Fields not listed under `columns` are matched by name.
# [sources.orders]
# path = "data/orders-*.csv"
# event_type = "purchase"
# columns = {{ customer_id = "CustomerID", ts = "InvoiceDate", order_id = "InvoiceNo" }}
"""

StepCallback = Callable[[str, int, int], None]


@dataclass
class RunResult:
    """What ``Project.run`` computed."""

    as_of: dt.date
    backend: str
    customers: int
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)


class Project:
    """A microseg project folder."""

    def __init__(self, path: str | Path = ".") -> None:
        self.config: ProjectConfig = load_config(path)
        self.root = self.config.root
        self._warehouse: DuckDBWarehouse | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def init(cls, path: str | Path = ".", *, name: str | None = None, force: bool = False) -> Project:
        """Create a project folder with a commented ``microseg.toml``."""
        root = Path(path).resolve()
        root.mkdir(parents=True, exist_ok=True)
        config = root / CONFIG_FILE
        if config.exists() and not force:
            raise MicrosegError(f"{config} already exists; use --force to overwrite it")
        config.write_text(TEMPLATE.format(name=name or root.name), encoding="utf-8")
        (root / "data").mkdir(exist_ok=True)
        return cls(root)

    @classmethod
    def create_demo(
        cls,
        path: str | Path,
        *,
        customers: int = 10_000,
        seed: int = 42,
        fmt: str = "parquet",
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Project:
        """Create a project with generated demo data (see ``microseg.demo``) configured as sources."""
        from microseg.demo import generate_demo

        root = Path(path).resolve()
        if (root / CONFIG_FILE).exists() and not force:
            raise MicrosegError(f"{root / CONFIG_FILE} already exists; use --force to replace the demo")
        if force:
            for stale in (root / "warehouse.duckdb", root / "warehouse.duckdb.wal"):
                stale.unlink(missing_ok=True)
        manifest = generate_demo(root / "data", customers, seed=seed, fmt=fmt, progress=progress)
        lines = [
            "# microseg demo project: generated data with planted truth (data/truth.*)",
            "[project]",
            'name = "microseg-demo"',
            f'analysis_date = "{manifest.as_of.isoformat()}"',
            "",
        ]
        for name, body in manifest.sources().items():
            lines.append(f"[sources.{name}]")
            lines.append(f'path = "data/{body["path"]}"')
            lines.extend(f'{k} = "{v}"' for k, v in body.items() if k != "path")
            lines.append("")
        (root / CONFIG_FILE).write_text("\n".join(lines), encoding="utf-8")
        return cls(root)

    @property
    def warehouse(self) -> DuckDBWarehouse:
        if self._warehouse is None:
            self._warehouse = DuckDBWarehouse(self.config.warehouse, self.config.threads)
        return self._warehouse

    def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- import -------------------------------------------------------------------------------
    def import_sources(
        self,
        names: Iterable[str] | None = None,
        *,
        on_file: Callable[[str, Path, ImportResult | None], None] | None = None,
    ) -> list[ImportResult]:
        """Import the named sources (all when ``names`` is empty), customers and products first
        so that traits are in place before events arrive."""
        sources = self.config.sources
        wanted = list(names) if names else list(sources)
        for name in wanted:
            if name not in sources:
                known = ", ".join(sources) or "none configured"
                raise ConfigError(f"no such source (sources: {known})", key=f"sources.{name}")
        order = {"customers": 0, "products": 1, "events": 2}
        wanted.sort(key=lambda n: order[sources[n].kind])
        results: list[ImportResult] = []
        for name in wanted:
            callback = (lambda p, r, n=name: on_file(n, p, r)) if on_file else None
            results += import_source(
                self.warehouse, sources[name], self.root, currency=self.config.currency, on_file=callback
            )
        return results

    # -- pipeline -----------------------------------------------------------------------------
    def analysis_date(self) -> dt.date:
        """The configured analysis date, or the day of the latest event."""
        if self.config.analysis_date is not None:
            return self.config.analysis_date
        latest = self.warehouse.fetch("SELECT max(ts) FROM events")[0][0]
        if latest is None:
            raise MicrosegError("the warehouse has no events yet; run `microseg import` first")
        return latest.date()

    def _tables(self, *names: str) -> list:
        """Warehouse tables on the configured engine (for Spark, exported to Parquet first)."""
        if self.config.backend == "duckdb":
            return [self.warehouse.table(name) for name in names]
        from microseg.engine.spark import connect_spark

        spark = connect_spark(self.config.spark_master)
        lake = self.root / "lake"
        lake.mkdir(exist_ok=True)
        tables = []
        for name in names:
            path = lake / f"{name}.parquet"
            self.warehouse.sql(f"COPY {name} TO '{path}' (FORMAT parquet)")
            tables.append(spark.read_parquet(str(path)))
        return tables

    def run(self, as_of: dt.date | None = None, *, on_step: StepCallback | None = None) -> RunResult:
        """Run the pipeline as of ``as_of`` (default: ``analysis_date()``) and store the results."""
        started = time.perf_counter()
        as_of = as_of or self.analysis_date()
        steps: dict[str, float] = {}
        plan = ["customer summary"]

        def step(i: int, name: str) -> None:
            if on_step:
                on_step(name, i, len(plan))

        step(0, plan[0])
        t = time.perf_counter()
        events, customers = self._tables("events", "customers")
        count = self._store(CUSTOMER_SUMMARY, customer_summary(events, as_of, customers), as_of)
        steps[plan[0]] = time.perf_counter() - t
        step(1, "done")
        return RunResult(as_of, self.config.backend, count, time.perf_counter() - started, steps)

    def _store(self, table, expr, as_of: dt.date) -> int:
        """Replace the rows of ``as_of`` in ``table`` by the result of ``expr``."""
        wh = self.warehouse
        where = f"as_of = DATE '{as_of.isoformat()}'"
        if self.config.backend == "duckdb":
            return wh.replace_rows(table, expr, where=where)
        wh.con.register("__result", expr.to_pyarrow())  # computed on Spark, stored here
        try:
            return wh.replace_rows(table, wh.ibis.table("__result"), where=where)
        finally:
            wh.con.unregister("__result")

    # -- answers ------------------------------------------------------------------------------
    def status(self) -> dict[str, int]:
        """Row counts of the main warehouse tables."""
        wh = self.warehouse
        return {
            name: wh.count(name)
            for name in ("events", "customers", "products", "quarantine", "imports", "customer_summary")
        }

    def customer_summary(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The stored per-customer summary of a run (the latest when ``as_of`` is None)."""
        wh = self.warehouse
        if as_of is None:
            as_of = wh.fetch("SELECT max(as_of) FROM customer_summary")[0][0]
            if as_of is None:
                raise MicrosegError("no pipeline run is stored yet; run `microseg run` first")
        return wh.fetch_df("SELECT * FROM customer_summary WHERE as_of = ? ORDER BY customer_id", [as_of])

    def quarantine(self, source: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Quarantined rows with their reasons, newest import first."""
        where, params = ("WHERE q.source = ?", [source]) if source else ("", [])
        sql = (
            "SELECT q.source, q.file, q.row_number, q.reason, q.record FROM quarantine q "
            f"LEFT JOIN imports i USING (import_id) {where} "
            "ORDER BY i.started_at DESC, q.file, q.row_number"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.warehouse.fetch_df(sql, params)

    def imports(self) -> pd.DataFrame:
        """The import log."""
        return self.warehouse.fetch_df("SELECT * FROM imports ORDER BY started_at")

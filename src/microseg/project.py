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
import pyarrow as pa

from microseg.config import CONFIG_FILE, ProjectConfig, load_config
from microseg.engine.duckdb import DuckDBWarehouse
from microseg.errors import ConfigError, MicrosegError
from microseg.features.summary import customer_summary
from microseg.features.values import rfm_table, value_customers
from microseg.schema import CUSTOMER_SUMMARY, CUSTOMER_VALUES, MODEL_FITS
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
    valued: int = 0  # buying customers with RFM and CLV values
    steps: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


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
        """Run the pipeline as of ``as_of`` (default: ``analysis_date()``) and store the results:
        the customer summary, then RFM and CLV values."""
        started = time.perf_counter()
        as_of = as_of or self.analysis_date()
        result = RunResult(as_of, self.config.backend, 0, 0.0)
        events, customers = self._tables("events", "customers")
        steps = [
            ("customer summary", lambda: self._run_summary(events, customers, as_of, result)),
            ("customer values", lambda: self._run_values(events, as_of, result)),
        ]
        for i, (name, work) in enumerate(steps):
            if on_step:
                on_step(name, i, len(steps))
            t = time.perf_counter()
            work()
            result.steps[name] = time.perf_counter() - t
        if on_step:
            on_step("done", len(steps), len(steps))
        result.seconds = time.perf_counter() - started
        return result

    def _run_summary(self, events, customers, as_of: dt.date, result: RunResult) -> None:
        result.customers = self._store(CUSTOMER_SUMMARY, customer_summary(events, as_of, customers), as_of)

    def _run_values(self, events, as_of: dt.date, result: RunResult) -> None:
        rfm = rfm_table(events, as_of, self.config.clv.period).to_pyarrow()
        valuation = value_customers(rfm, as_of, self.config.clv)
        where = f"as_of = DATE '{as_of.isoformat()}'"
        values = valuation.values.append_column(
            "as_of", pa.array([as_of] * valuation.values.num_rows, pa.date32())
        )
        result.valued = self.warehouse.replace_frame(CUSTOMER_VALUES, values, where)
        if not valuation.fits.empty:
            self.warehouse.replace_frame(MODEL_FITS, valuation.fits, where)
        result.warnings += valuation.warnings

    def _store(self, table, expr, as_of: dt.date) -> int:
        """Replace the rows of ``as_of`` in ``table`` by the result of ``expr``."""
        where = f"as_of = DATE '{as_of.isoformat()}'"
        if self.config.backend == "duckdb":
            return self.warehouse.replace_rows(table, expr, where=where)
        return self.warehouse.replace_frame(table, expr.to_pyarrow(), where)  # computed on Spark

    # -- answers ------------------------------------------------------------------------------
    def status(self) -> dict[str, int]:
        """Row counts of the main warehouse tables."""
        wh = self.warehouse
        return {
            name: wh.count(name)
            for name in (
                "events",
                "customers",
                "products",
                "quarantine",
                "imports",
                "customer_summary",
                "customer_values",
            )
        }

    def _snapshot(self, table: str, as_of: dt.date | None) -> pd.DataFrame:
        wh = self.warehouse
        if as_of is None:
            as_of = wh.fetch(f"SELECT max(as_of) FROM {table}")[0][0]
            if as_of is None:
                raise MicrosegError("no pipeline run is stored yet; run `microseg run` first")
        return wh.fetch_df(f"SELECT * FROM {table} WHERE as_of = ? ORDER BY customer_id", [as_of])

    def customer_summary(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The stored per-customer summary of a run (the latest when ``as_of`` is None)."""
        return self._snapshot("customer_summary", as_of)

    def customer_values(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """RFM, scores and CLV predictions per buying customer (the latest run when None)."""
        return self._snapshot("customer_values", as_of)

    def model_fits(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """Fitted model parameters with standard errors (the latest run when None)."""
        wh = self.warehouse
        as_of = as_of or wh.fetch("SELECT max(as_of) FROM model_fits")[0][0]
        return wh.fetch_df("SELECT * FROM model_fits WHERE as_of = ? ORDER BY model, parameter", [as_of])

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

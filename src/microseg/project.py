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
from typing import TYPE_CHECKING

import ibis
import pandas as pd
import pyarrow as pa

from microseg.config import CONFIG_FILE, ProjectConfig, load_config
from microseg.dynamics import migration
from microseg.dynamics.snapshots import fingerprint, snapshot_dates
from microseg.errors import ConfigError, InvalidInputError, MicrosegError
from microseg.features.asof import AsOf
from microseg.features.chain import SnapshotChain
from microseg.features.profile import browsing_of, customer_profile, profile_of, spend_of
from microseg.features.summary import summary_of
from microseg.features.valuation import holdout_for, rfm_table, value_customers
from microseg.models.rules import parse_rules
from microseg.registry import LAYERS, TIER_LAYERS, check_layer, suggest
from microseg.schema import CUSTOMER_SUMMARY, CUSTOMER_VALUES, MODEL_FITS, VALUE_MODELS
from microseg.segments.segmentation import segment_customers
from microseg.warehouse import queries
from microseg.warehouse import snapshots as stored
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.history import customer_history, members_on, segment_layers, update_history
from microseg.warehouse.ingest.files import ImportResult, import_source
from microseg.warehouse.segments import CustomerNumbers, kept_models, previous_segments, store_segmentation

if TYPE_CHECKING:
    from microseg.demo.shock import Shock
    from microseg.dynamics.model_choice import Choice, Forecast
    from microseg.dynamics.periods import Periods
    from microseg.models.clv.validation import ClvValidation

#: Value columns the segmentation reads from ``customer_values``.
VALUE_COLUMNS = (
    "clv",
    "p_alive",
    "churn_risk",
    "expected_purchases",
    "expected_spend",
    "rfm_segment",
    "r_score",
    "f_score",
    "m_score",
)

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
    with_clv: int = 0  # customers with a CLV
    value_model: str | None = None  # the repeat-buying model of the CLV, e.g. "BG/NBD"
    value_model_reason: str = ""  # why that model
    dropout_identified: bool | None = None  # whether the model finds dropout (None: no model)
    segments: int = 0  # micro-segments
    clusters: list[str] = field(default_factory=list)  # per clustered layer: models kept or refitted
    steps: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    reused: bool = False  # the stored snapshot was up to date: nothing was computed


@dataclass
class BackfillResult:
    """What ``Project.backfill`` did: one ``RunResult`` per snapshot date, oldest first."""

    runs: list[RunResult]
    seconds: float

    @property
    def computed(self) -> list[dt.date]:
        return [r.as_of for r in self.runs if not r.reused]

    @property
    def reused(self) -> list[dt.date]:
        return [r.as_of for r in self.runs if r.reused]


class Project:
    """A microseg project folder."""

    def __init__(self, path: str | Path = ".") -> None:
        self.config: ProjectConfig = load_config(path)
        self.root = self.config.root
        self._warehouse: DuckDBWarehouse | None = None
        # the last snapshot computed: the next one continues its aggregates where that is exact
        self._kept = SnapshotChain(lambda day: stored.events_by_import(self.warehouse, day))
        # fitted forecasts by (layer, group layer, state of the snapshots): one fit per change
        self._forecasts: dict[tuple, Forecast] = {}

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
        as_of: dt.date | None = None,
        years: float = 3.0,
        shock: Shock | None = None,
    ) -> Project:
        """Create a project with generated demo data (see ``microseg.demo``) configured as sources:
        ``years`` of history up to ``as_of`` (default 31 December 2025); ``shock`` plants a cohort
        of frequent buyers who stop buying on a date."""
        from microseg.demo import generate_demo

        root = Path(path).resolve()
        if (root / CONFIG_FILE).exists() and not force:
            raise MicrosegError(f"{root / CONFIG_FILE} already exists; use --force to replace the demo")
        if force:
            for stale in (root / "warehouse.duckdb", root / "warehouse.duckdb.wal"):
                stale.unlink(missing_ok=True)
        manifest = generate_demo(
            root / "data",
            customers,
            seed=seed,
            fmt=fmt,
            progress=progress,
            shock=shock,
            years=years,
            **({"as_of": as_of} if as_of else {}),
        )
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
        self._kept.release()
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
        so that traits are in place before events arrive.

        Returns one result per file. A file with more quarantined rows than its source's
        ``max_rejected_share`` is imported all the same; ``microseg.warehouse.ingest.files.check_rejections``
        raises for it (as ``microseg import`` exits 1)."""
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
        latest = queries.latest_event_time(self.warehouse)
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
            queries.export_parquet(self.warehouse, name, path)
            tables.append(spark.read_parquet(str(path)))
        return tables

    def run(
        self, as_of: dt.date | None = None, *, on_step: StepCallback | None = None, refit: bool = False
    ) -> RunResult:
        """Run the pipeline as of ``as_of`` (default: ``analysis_date()``) and store the results:
        the customer summary, RFM and CLV values, then profiles and every segment layer.
        Clustered layers continue the models of the snapshot before; ``refit`` fits them anew
        (their segments keep the ids of the segments they continue)."""
        return self._run(as_of or self.analysis_date(), on_step, refit=refit)

    def _run(
        self,
        as_of: dt.date,
        on_step: StepCallback | None,
        inputs: tuple[str, int] | None = None,
        refit: bool = False,
    ) -> RunResult:
        """``run``; ``inputs`` is the snapshot's ``fingerprint`` when the caller has it already."""
        started = time.perf_counter()
        result = RunResult(as_of, self.config.backend, 0, 0.0)
        events, customers, products = self._tables("events", "customers", "products")
        self._check_rules(events, customers, products, as_of)  # a bad rule stops the run before any step
        recomputed = stored.is_stored(self.warehouse, as_of)
        # the one cut at as_of: every step reads the events through this snapshot, whose shared
        # aggregates the engine computes once for the run (or continues from the last snapshot)
        flags = self.config.segments.page_flags
        snapshot = self._kept.open(events, as_of, customers=customers, products=products, page_flags=flags)
        steps = [
            ("customer summary", lambda: self._run_summary(snapshot, result)),
            ("customer values", lambda: self._run_values(snapshot, result)),
            ("segments", lambda: self._run_segments(snapshot, result, refit)),
            ("history", lambda: update_history(self.warehouse, as_of, recomputed=recomputed)),
        ]
        # The results of a date are replaced in one transaction: a run that fails or is killed at
        # any point leaves the previous results of that date whole and consistent.
        with self._kept.computing(snapshot), self.warehouse.transaction():
            for i, (name, work) in enumerate(steps):
                if on_step:
                    on_step(name, i, len(steps))
                t = time.perf_counter()
                work()
                result.steps[name] = time.perf_counter() - t
            result.seconds = time.perf_counter() - started
            self._record_snapshot(result, inputs)
        if on_step:
            on_step("done", len(steps), len(steps))
        return result

    def _profile_expr(self, events, customers, products, as_of: dt.date):
        """The customer profile as of ``as_of``, as an engine expression."""
        settings = self.config.segments
        return customer_profile(
            events,
            customers,
            products,
            as_of,
            settings.reactivation_gap_days,
            settings.page_flags,
            settings.attributes,
        )

    def _check_rules(self, events, customers, products, as_of: dt.date) -> None:
        """Check every rule segment against the columns the run will give it (the profile, the
        values, the stage and the tiers), before anything is computed."""
        rules = self.config.segments.rules
        if not rules:
            return
        columns = dict(self._profile_expr(events, customers, products, as_of).schema().items())
        values = CUSTOMER_VALUES.ibis_schema()
        columns.update({c: values[c] for c in VALUE_COLUMNS})
        columns.update({layer: "string" for layer in ("stage", *TIER_LAYERS, "composite_code")})
        columns.pop("customer_id", None)
        parse_rules(rules, ibis.schema(columns))

    def _record_snapshot(self, result: RunResult, inputs: tuple[str, int] | None) -> None:
        digest, events = inputs or fingerprint(self.warehouse, result.as_of, self.config)
        stored.record(self.warehouse, result.as_of, result.seconds, result.customers, events, digest)

    def snapshot(
        self, as_of: dt.date, *, force: bool = False, on_step: StepCallback | None = None
    ) -> RunResult:
        """The snapshot of ``as_of``: computed, unless one is stored whose inputs have not changed
        since (then ``reused`` is true); ``force`` computes it anyway."""
        inputs = fingerprint(self.warehouse, as_of, self.config)
        if not force:
            kept = stored.stored_fingerprint(self.warehouse, as_of)
            if kept and kept[0] == inputs[0]:
                return RunResult(as_of, self.config.backend, kept[1], 0.0, reused=True)
        return self._run(as_of, on_step, inputs)

    def backfill(
        self,
        start: dt.date,
        end: dt.date | None = None,
        *,
        every: str | None = None,
        force: bool = False,
        on_snapshot: Callable[[dt.date, int, int], None] | None = None,
        incremental: bool = True,
    ) -> BackfillResult:
        """Snapshots of every ``every`` (``month``: month ends; ``week``: weeks ending on ``end``)
        from ``start`` to ``end`` (default: the analysis date), oldest first, each from the events
        up to its date only. Snapshots whose inputs did not change are kept as they are.
        Each snapshot continues the aggregates of the one computed before it where the result
        is the same (``microseg.features.chain``); ``incremental=False`` computes each from all
        its events."""
        started = time.perf_counter()
        end = end or self.analysis_date()
        dates = snapshot_dates(start, end, every or self.config.dynamics.every)
        if not dates:
            raise MicrosegError(f"no {every or self.config.dynamics.every} end between {start} and {end}")
        runs = []
        for i, date in enumerate(dates):
            if on_snapshot:
                on_snapshot(date, i, len(dates))
            if not incremental:
                self._kept.release()
            runs.append(self.snapshot(date, force=force))
        if on_snapshot:
            on_snapshot(dates[-1], len(dates), len(dates))
        return BackfillResult(runs, time.perf_counter() - started)

    def snapshots(self) -> pd.DataFrame:
        """Every stored snapshot: ``as_of, period, computed_at, seconds, customers, events``;
        ``period`` says how the period ending at it compares with the cadence of the snapshots
        (``full``, ``stub (9 days)``, ``gap (61 days)``; empty for the first)."""
        from microseg.dynamics.periods import FULL, describe_periods

        frame = stored.listing(self.warehouse)
        periods = describe_periods(frame["as_of"])
        kinds = {
            r.to_date: r.kind if r.kind == FULL else f"{r.kind} ({r.days} days)"
            for r in periods.table.itertuples()
        }
        frame.insert(1, "period", [kinds.get(day, "") for day in pd.to_datetime(frame["as_of"]).dt.date])
        return frame

    def _run_summary(self, snapshot: AsOf, result: RunResult) -> None:
        as_of = snapshot.as_of
        result.customers = self._store(CUSTOMER_SUMMARY, summary_of(snapshot), as_of)
        if result.customers == 0:
            raise MicrosegError(self._nobody_known(as_of))

    def _nobody_known(self, as_of: dt.date) -> str:
        """Why a run as of ``as_of`` has no customer to work on."""
        first = queries.first_known_event_day(self.warehouse)
        if first is None:
            return (
                "no customer to segment: the warehouse holds no events of known customers yet; "
                "run `microseg import` first"
            )
        return f"no customer to segment as of {as_of}: the first event of a known customer is on {first}"

    def _run_values(self, snapshot: AsOf, result: RunResult) -> None:
        settings, as_of = self.config.clv, snapshot.as_of
        rfm = rfm_table(snapshot, as_of, settings.period).to_pyarrow()
        holdout = holdout_for(snapshot, rfm, as_of, settings) if settings.model == "auto" else None
        valuation = value_customers(rfm, as_of, settings, holdout)
        where = f"as_of = DATE '{as_of.isoformat()}'"
        values = valuation.values.append_column(
            "as_of", pa.array([as_of] * valuation.values.num_rows, pa.date32())
        )
        result.valued = self.warehouse.replace_frame(CUSTOMER_VALUES, values, where)
        if valuation.fits.empty:  # a failed fit leaves no parameters of an earlier run behind
            queries.delete_snapshot(self.warehouse, MODEL_FITS.name, as_of)
        else:
            self.warehouse.replace_frame(MODEL_FITS, valuation.fits, where)
        self.warehouse.replace_frame(VALUE_MODELS, valuation.models, where)
        result.with_clv = valuation.with_clv
        result.value_model, result.value_model_reason = valuation.model, valuation.model_reason
        result.dropout_identified = valuation.dropout.identified if valuation.dropout else None
        result.warnings += valuation.warnings + _value_warnings(valuation)

    def _stage_settings(self, result: RunResult):
        """The segment settings of this run: the lifecycle rules ignore P(alive) when the value
        model cannot tell whether anybody leaves (P(alive) is then near 1 for everyone)."""
        import dataclasses

        settings = self.config.segments
        if result.dropout_identified is False:
            settings = dataclasses.replace(settings, at_risk_p_alive=None, churned_p_alive=None)
        return settings

    def _run_segments(self, snapshot: AsOf, result: RunResult, refit: bool = False) -> None:
        settings = self._stage_settings(result)
        wh, as_of = self.warehouse, snapshot.as_of
        segment_settings = self.config.segments
        profile = (
            profile_of(snapshot, segment_settings.reactivation_gap_days, segment_settings.attributes)
            .order_by("customer_id")
            .to_pyarrow()
        )
        # customers are numbered by their sorted ids: pandas then works on integers
        numbers = CustomerNumbers(wh, profile.column("customer_id"))
        try:
            categories = numbers.number(spend_of(snapshot).to_pyarrow())
            browsing = numbers.number(browsing_of(snapshot).to_pyarrow())
            values = numbers.values(as_of, VALUE_COLUMNS)
        finally:
            numbers.close()
        frame = profile.drop_columns(["customer_id"]).to_pandas().join(values.drop(columns="customer"))
        # the run before this date (never a later one) gives the models, segments and ids to continue
        previous, retired = previous_segments(wh, as_of)
        segmentation = segment_customers(
            frame,
            categories,
            settings,
            previous,
            retired,
            browsing,
            customer_ids=profile.column("customer_id").to_numpy(zero_copy_only=False),
            models=kept_models(wh, as_of),
            as_of=as_of,
            refit=refit,
        )
        store_segmentation(wh, segmentation, categories, as_of)
        result.segments = len(segmentation.layers["micro"].categories)
        result.clusters = segmentation.model_lines()
        result.warnings += segmentation.warnings

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
            as_of = queries.latest_as_of(wh, table)
            if as_of is None:
                raise MicrosegError("no pipeline run is stored yet; run `microseg run` first")
        return queries.snapshot_rows(wh, table, as_of)

    def customer_summary(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The stored per-customer summary of a run (the latest when ``as_of`` is None)."""
        return self._snapshot("customer_summary", as_of)

    def customer_values(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """RFM, scores and CLV predictions per buying customer (the latest run when None)."""
        return self._snapshot("customer_values", as_of)

    def memberships(self, kind: str | None = None, as_of: dt.date | None = None) -> pd.DataFrame:
        """Who is in which segment (customer_id, kind, segment_id), for one layer or all."""
        if kind is not None:
            check_layer(kind)
        return queries.memberships(self.warehouse, self._latest("segment_memberships", as_of), kind)

    def segments(self, kind: str | None = None, as_of: dt.date | None = None) -> pd.DataFrame:
        """Segments with their persona label, size, shares and value (one layer or all)."""
        if kind is not None:
            check_layer(kind)
        return queries.segments(self.warehouse, self._latest("segments", as_of), kind)

    def segment_models(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The clustering model of each clustered layer and scope of a run (the latest when
        None): whether it was reused or refitted and why, its stability across seeds and its
        silhouette now and when fitted."""
        return queries.segment_models(self.warehouse, self._latest("segment_models", as_of))

    def segment_changes(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """How the clustered segments of a run continue those of the previous run."""
        return queries.segment_changes(self.warehouse, self._latest("segment_changes", as_of))

    def persona(self, segment_id: str, kind: str | None = None, as_of: dt.date | None = None) -> dict:
        """The persona card of a segment; ``kind`` names its layer, needed only when several
        layers have a segment of that id."""
        import json

        frame = self.segments(kind, as_of)
        match = frame[frame["segment_id"] == segment_id]
        if match.empty:
            ids = sorted(frame["segment_id"].unique())
            known = ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else "")
            raise InvalidInputError(
                f"no segment {segment_id!r}{f' in {kind}' if kind else ''}{suggest(segment_id, ids)}; "
                f"segments include: {known}"
            )
        if len(match) > 1:
            sizes = dict(zip(match["kind"], match["size"], strict=True))
            _one_layer(segment_id, sizes, "")
        return json.loads(match.iloc[0]["card"])

    def customer_card(self, customer_id: str, as_of: dt.date | None = None) -> dict:
        """The segment-of-one card of a customer: stage, tiers, segments, value, favourites."""
        from microseg.segments.personas import customer_card

        as_of = self._latest("customer_profiles", as_of)
        wh = self.warehouse
        profile = queries.customer_rows(wh, "customer_profiles", as_of, customer_id)
        values = queries.customer_rows(wh, "customer_values", as_of, customer_id)
        if not values.empty:
            profile = profile.merge(
                values.drop(columns=["as_of"]), on="customer_id", how="left", suffixes=("", "_v")
            )
        categories = queries.customer_rows(wh, "customer_categories", as_of, customer_id)[
            ["customer_id", "category", "spend", "share"]
        ]
        memberships = queries.customer_segments(wh, as_of, customer_id)
        return customer_card(customer_id, profile, categories, memberships)

    def _latest(self, table: str, as_of: dt.date | None) -> dt.date:
        if as_of is not None:
            return as_of
        latest = queries.latest_as_of(self.warehouse, table)
        if latest is None:
            raise MicrosegError("no pipeline run is stored yet; run `microseg run` first")
        return latest

    # -- dynamics -----------------------------------------------------------------------------
    def _pair(self, kind: str, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
        """The two snapshots compared: by default the last two."""
        dates = migration.stored_dates(self.warehouse, kind)
        if not dates:
            self._check_layers(kind)
        if end is None:
            end = dates[-1] if dates else None
        if start is None:
            earlier = [d for d in dates if end is not None and d < end]
            start = earlier[-1] if earlier else None
        if start is None or end is None:
            raise MicrosegError(
                "migration needs two snapshots; run `microseg backfill` (or `microseg run` on two dates)"
            )
        return start, end

    def _check_layers(self, *kinds: str | None) -> None:
        """A clear error for a misspelt layer (once anything is segmented)."""
        if not self.warehouse.count("segment_memberships"):
            return
        for kind in kinds:
            if kind is not None:
                migration.check_name("segment layer", kind, queries.layers(self.warehouse))

    def transitions(
        self, kind: str = "lifecycle", start: dt.date | None = None, end: dt.date | None = None
    ) -> pd.DataFrame:
        """How customers moved between the segments of a layer from ``start`` to ``end`` (default:
        the last two snapshots): ``source, target, customers, clv_from, clv_to, revenue``."""
        return migration.transitions(self.warehouse, kind, *self._pair(kind, start, end))

    def transition_matrix(
        self,
        kind: str = "lifecycle",
        start: dt.date | None = None,
        end: dt.date | None = None,
        value: str = "customers",
    ) -> pd.DataFrame:
        """Sources x targets of ``customers``, ``rate``, ``clv_from``, ``clv_to`` or ``revenue``."""
        return migration.transition_matrix(self.warehouse, kind, *self._pair(kind, start, end), value)

    def flows(self, kind: str = "lifecycle", dates: Iterable[dt.date] | None = None) -> pd.DataFrame:
        """Transitions between consecutive snapshots (all of them, or of ``dates``)."""
        return migration.flows(self.warehouse, kind, list(dates) if dates is not None else None)

    def journey(self, customer_id: str, kind: str = "lifecycle") -> pd.DataFrame:
        """A customer's stays in the segments of a layer, with their dates, oldest first."""
        return migration.journey(self.warehouse, customer_id, kind)

    def typical_paths(self, kind: str = "lifecycle", top: int = 10) -> pd.DataFrame:
        """The most common sequences of segments customers went through."""
        return migration.typical_paths(self.warehouse, kind, top)

    def members_on(self, segment_id: str, on: dt.date, kind: str | None = None) -> pd.DataFrame:
        """Who was in a segment on a date (by the latest snapshot on or before it), one row per
        customer. ``kind`` names the layer; it may be left out when only one layer has a segment
        of that id (``at_risk`` is both a lifecycle stage and an RFM tier)."""
        layers = segment_layers(self.warehouse, segment_id, on)
        if kind is not None:
            check_layer(kind)
        elif layers:
            kind = _one_layer(segment_id, layers, f" on {on}")
        if kind not in layers:  # an unknown segment is an error, not an empty audience
            what = f"{kind} segment" if kind else "segment"
            migration.check_name(what, segment_id, queries.history_segment_ids(self.warehouse, kind))
        return members_on(self.warehouse, segment_id, on, kind)

    def customer_history(self, customer_id: str, kind: str | None = None) -> pd.DataFrame:
        """When a customer entered and left each segment."""
        return customer_history(self.warehouse, customer_id, kind)

    def stage_sizes(self, kind: str = "lifecycle") -> pd.DataFrame:
        """Segment sizes at every snapshot: ``as_of, segment, customers``."""
        return migration.stage_sizes(self.warehouse, kind)

    def periods(self, kind: str = "lifecycle") -> Periods:
        """The periods between the stored snapshots of a layer: which are full, which are stub
        periods (a snapshot off the cadence, such as an analysis date on the 9th after month-end
        snapshots) and which are longer (a snapshot missing). Rates, forecasts, backtests and
        alerts use the full periods only (see ``microseg.dynamics.periods``)."""
        from microseg.dynamics.periods import describe_periods

        self._check_layers(kind)
        return describe_periods(migration.stored_dates(self.warehouse, kind))

    def _forecaster(self, kind: str, group_kind: str | None) -> Forecast:
        """Both forecast models fitted on the full periods, backtested, one chosen; kept until
        the snapshots change."""
        from microseg.dynamics.model_choice import build_forecast
        from microseg.dynamics.periods import describe_periods

        self._check_layers(kind, group_kind)
        signature = stored.signature(self.warehouse)
        key = (kind, group_kind, signature, self.config.dynamics)
        if key in self._forecasts:
            return self._forecasts[key]
        states = migration.states_over_time(self.warehouse, kind, group_kind, features=True)
        if states["as_of"].nunique() < 2:
            raise MicrosegError("a forecast needs at least two snapshots; run `microseg backfill` first")
        periods = describe_periods(states["as_of"].unique())
        if not periods.full:
            raise MicrosegError(
                "a forecast needs a full period between two snapshots; "
                + (periods.note() or "")
                + " Run `microseg backfill` for earlier snapshots."
            )
        settings = self.config.dynamics
        forecast = build_forecast(
            states,
            periods,
            setting=settings.forecast_model,
            smoothing=settings.forecast_smoothing,
            window=settings.forecast_window,
            condition_on_group=group_kind is not None,
        )
        self._forecasts = {key: forecast}  # only the latest: a forecast holds every snapshot's rows
        return forecast

    def forecast(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", periods: int = 1
    ) -> pd.DataFrame:
        """Segment sizes now and expected after ``periods`` periods: ``segment, current,
        forecast, change``. The first period is forecast by the chosen model
        (:meth:`forecast_choice`), later ones by the Markov chain of the transitions between
        stored snapshots; new customers arrive at the rate of the learned periods."""
        return _forecast_table(self._forecaster(kind, group_kind), periods)

    def forecast_choice(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> Choice:
        """Which model gives the next-period probabilities (``model``: ``customer`` or
        ``chain``) and why (``reason``, with the backtest figures it was chosen on)."""
        return self._forecaster(kind, group_kind).choice

    def at_risk(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", to_states=("at_risk", "churned")
    ) -> pd.DataFrame:
        """Each customer's probability of moving into ``to_states`` next period (``p_move``,
        from the chosen model: with the customer model it depends on the customer's own
        history) and the CLV at stake: ``p_move`` x the customer's CLV, largest first."""
        return self._forecaster(kind, group_kind).at_risk(tuple(to_states))

    def next_period(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> pd.DataFrame:
        """Each customer's probability of being in each segment of ``kind`` next period (one
        column per segment, ``(gone)`` included), with their current segment, group, CLV and
        the ``model`` that gave the probabilities (``customer`` or ``chain``)."""
        forecast = self._forecaster(kind, group_kind)
        current = forecast.current.set_index("customer_id")[["state", "group", "clv"]].rename(
            columns={"state": "segment"}
        )
        current["model"] = forecast.choice.model
        return current.join(forecast.proba()).reset_index()

    def forecast_backtest(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> pd.DataFrame:
        """One-period-ahead backtest on past full periods: per origin, the log-loss and Brier
        score of each customer's predicted segment for the group chain and the customer model,
        and the mean absolute error of the segment shares for both and for "same as last
        period" (``as_of, target, customers, mae_chain, mae_customer, mae_naive,
        log_loss_chain, log_loss_customer, brier_chain, brier_customer``)."""
        return self._forecaster(kind, group_kind).backtest.copy()

    def alert_period(self, kind: str = "lifecycle", as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
        """The period the alerts test: the full period ending ``as_of`` (default: the latest
        full period; a stub period at the end is not tested)."""
        periods = self.periods(kind)
        if not periods.full:
            raise MicrosegError(
                "alerts need full periods between snapshots; run `microseg backfill` first"
                + (f". {periods.note()}" if periods.note() else "")
            )
        if as_of is None:
            return periods.full[-1]
        for start, end in periods.full:
            if end == as_of:
                return start, end
        latest = f"the latest full period ends on {periods.full_ends[-1]}"
        if as_of in periods.dates and as_of != periods.dates[0]:
            earlier = max(d for d in periods.dates if d < as_of)
            reason = periods.describe(earlier, as_of) or "not a period between regular snapshots"
            raise MicrosegError(
                f"the period ending {as_of} is a {reason}: alerts compare full periods only; {latest}"
            )
        raise MicrosegError(f"no full period ends on {as_of}; {latest}")

    def alerts(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", as_of: dt.date | None = None
    ) -> pd.DataFrame:
        """Transitions of the full period ending ``as_of`` (default: the latest full period, see
        :meth:`alert_period`) whose rate departs significantly from the earlier full periods,
        overall and within each ``group_kind`` segment."""
        from microseg.dynamics.alerts import transition_alerts

        self._check_layers(kind, group_kind)
        _, end = self.alert_period(kind, as_of)
        periods = self.periods(kind)
        counts = migration.period_counts(self.warehouse, kind, group_kind, dates=periods.regular_dates)
        counts = counts[pd.to_datetime(counts["as_of"]).dt.date.isin(periods.full_ends)]
        if counts.empty:
            raise MicrosegError("alerts need at least two snapshots; run `microseg backfill` first")
        settings = self.config.dynamics
        return transition_alerts(
            counts,
            as_of=end,
            alpha=settings.alert_alpha,
            min_ratio=settings.alert_min_ratio,
            min_moved=settings.alert_min_moved,
            min_history=settings.alert_min_history,
        )

    def report(
        self,
        path: str | Path | None = None,
        *,
        kind: str = "lifecycle",
        persona_kind: str = "behaviour",
        group_kind: str | None = "clv_tier",
    ) -> Path:
        """Write the migration report (one self-contained HTML file, default
        ``reports/report-<date>.html`` in the project) and return its path: stage sizes over time,
        flows of the last ``report_periods`` periods, the latest transition matrix, persona cards,
        alerts and the forecast for the next period."""
        from microseg.dynamics.report import write_report

        dates = migration.stored_dates(self.warehouse, kind)
        if len(dates) < 2:
            raise MicrosegError(
                "a report needs at least two snapshots; run `microseg backfill` (or `microseg run` on two dates)"
            )
        settings = self.config.dynamics
        as_of = dates[-1]
        periods = self.periods(kind)
        notes = [periods.note()] if periods.note() else []
        alerts = self.alerts(kind, group_kind)
        tested_from, tested_to = self.alert_period(kind)
        history = len(periods.full) - 1
        if history < settings.alert_min_history:
            notes.append(
                f"Alerts need {settings.alert_min_history} earlier full periods to compare with; "
                f"{history} stored before the period from {tested_from} to {tested_to}, so none was tested."
            )
        else:
            notes.append(
                f"Alerts: the period from {tested_from} to {tested_to} was tested against the {history} "
                "full periods before it."
            )
        forecast = self._forecaster(kind, group_kind)
        table = _forecast_table(forecast, periods=1)
        stake = forecast.at_risk().groupby("state")["clv_at_stake"].sum()
        table["at_stake_clv"] = table["segment"].map(stake)
        stake_text = clv_at_stake_text(self.config.clv.horizon_months)
        forecast_note = f"Next-period probabilities come from {forecast.choice.reason}. {stake_text}"
        matrix_from, matrix_to = periods.full[-1] if periods.full else (dates[-2], as_of)
        target = Path(path) if path else self.root / "reports" / f"report-{as_of.isoformat()}.html"
        return write_report(
            target,
            title=f"{self.config.name}: how customers move",
            as_of=as_of,
            stage_sizes=self.stage_sizes(kind),
            flows=self.flows(kind, dates[-(settings.report_periods + 1) :]),
            matrix=self.transition_matrix(kind, matrix_from, matrix_to),
            matrix_period=(matrix_from, matrix_to),
            personas=self.segments(persona_kind, as_of),
            alerts=alerts,
            forecast=table,
            forecast_note=forecast_note,
            notes=notes,
        )

    def value_models(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The models a run considered for customer value (the latest run when None): which
        repeat-buying model was chosen and why, the others' holdout scores or errors, the
        evidence for dropout, and the spend model (the ``value_models`` table)."""
        return queries.value_models(self.warehouse, as_of)[1]

    def why_no_clv(self, as_of: dt.date | None = None) -> str | None:
        """Why the customers of a run (the latest when None) have no CLV; None when they have."""
        from microseg.features.valuation import why_no_clv

        return why_no_clv(self.value_models(as_of))

    def validate_clv(
        self,
        *,
        calibration_end: dt.date | None = None,
        holdout_days: int | None = None,
        as_of: dt.date | None = None,
        models: Iterable[str] | None = None,
    ) -> ClvValidation:
        """Check the repeat-buying models on a holdout period: fitted on the customers who bought
        by ``calibration_end`` (default: ``holdout_days`` before ``as_of``, itself by default
        ``clv.holdout_days``, 0 meaning a third of the history up to a year), compared with what
        they bought up to ``as_of`` (default: the analysis date). ``models`` defaults to the
        configured model, all three with ``auto``. See ``microseg.models.clv.validation``."""
        from microseg.features.rfm import calibration_holdout
        from microseg.features.valuation import repeat_transaction_days
        from microseg.models.clv.selection import REPEAT_BUYING_MODELS, plan_holdout
        from microseg.models.clv.validation import validate_models

        settings = self.config.clv
        end = as_of or self.analysis_date()
        if models:
            names = list(models)
        else:
            names = list(REPEAT_BUYING_MODELS) if settings.model == "auto" else [settings.model]
        for name in names:
            if name not in REPEAT_BUYING_MODELS:
                raise InvalidInputError(
                    f"no repeat-buying model {name!r}{suggest(name, REPEAT_BUYING_MODELS)}; "
                    f"models: {', '.join(REPEAT_BUYING_MODELS)}"
                )
        if holdout_days is not None and holdout_days < 1:
            raise InvalidInputError(f"holdout_days must be 1 or more, got {holdout_days}")
        (events,) = self._tables("events")
        if calibration_end is None:
            first = queries.first_purchase_day(self.warehouse, end)
            plan = plan_holdout(first, end, holdout_days or settings.holdout_days)
            if plan.calibration_end is None:
                raise MicrosegError(f"no holdout check possible: {plan.reason}")
            calibration_end = plan.calibration_end
        if calibration_end >= end:
            raise InvalidInputError(
                f"the calibration end ({calibration_end}) must be before the end of the holdout ({end})"
            )
        calibration = calibration_holdout(events, calibration_end, end, settings.period).to_pandas()
        if calibration.empty:
            raise MicrosegError(f"nobody bought by the calibration end {calibration_end}: nothing to check")
        repeat_days = repeat_transaction_days(events, calibration_end, end).to_pandas()
        return validate_models(
            calibration,
            repeat_days,
            calibration_end=calibration_end,
            observation_end=end,
            period=settings.period,
            models=names,
            penalizer=settings.penalizer,
        )

    def model_fits(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """Fitted model parameters with standard errors (the latest run when None)."""
        return queries.model_fits(self.warehouse, as_of)

    def quarantine(
        self, source: str | None = None, limit: int | None = None, *, file: str | Path | None = None
    ) -> pd.DataFrame:
        """Quarantined rows with their reasons, newest import first; ``source`` and ``file`` (a
        path as imported, or just the file name) narrow them down."""
        from microseg.warehouse.ingest import quarantine

        self._check_quarantine_source(source)
        return quarantine.list_rows(self.warehouse, source, file, limit)

    def quarantine_count(self, source: str | None = None, *, file: str | Path | None = None) -> int:
        """How many rows ``quarantine`` would list without a limit.

        >>> import tempfile
        >>> Project.init(tempfile.mkdtemp()).quarantine_count()
        0
        """
        from microseg.warehouse.ingest import quarantine

        self._check_quarantine_source(source)
        return quarantine.count_rows(self.warehouse, source, file)

    def clear_quarantine(self, source: str | None = None, *, file: str | Path | None = None) -> int:
        """Delete quarantined rows of a source and/or file (all rows when neither is given);
        returns how many. Importing a file again also replaces its rows.

        >>> import tempfile
        >>> Project.init(tempfile.mkdtemp()).clear_quarantine(file="orders.csv")
        0
        """
        from microseg.warehouse.ingest import quarantine

        self._check_quarantine_source(source)
        return quarantine.clear(self.warehouse, source, file)

    def _check_quarantine_source(self, source: str | None) -> None:
        """A source must be configured or have quarantined rows left from an earlier config."""
        if source is None or source in self.config.sources:
            return
        if queries.quarantined_in(self.warehouse, source):
            return
        from microseg.registry import suggest

        known = list(self.config.sources)
        raise ConfigError(
            f"no such source{suggest(source, known)} (sources: {', '.join(known) or 'none configured'})",
            key=f"sources.{source}",
        )

    def imports(self) -> pd.DataFrame:
        """The import log."""
        return queries.imports(self.warehouse)


def clv_at_stake_text(horizon_months: int) -> str:
    """What "CLV at stake" means, for every place that shows it."""
    return (
        "CLV at stake = P(move to at_risk or churned next period) x the customer's CLV (the "
        f"discounted spend expected from them over the next {horizon_months} months): the value "
        "that is expected to slip away if nothing is done; a segment's figure is the sum over its customers."
    )


def _value_warnings(valuation) -> list[str]:
    """What a user must know about the run's customer values: no CLV (and why), or a value model
    that cannot tell whether anybody leaves."""
    if valuation.unavailable is not None and valuation.values.num_rows:
        if valuation.with_clv == 0:
            rhythm = (
                "; the lifecycle stages rely on each customer's buying rhythm only"
                if valuation.model is None
                else ""
            )
            return [f"No customer has a CLV: {valuation.unavailable}{rhythm}."]
        return [f"Some customers have no CLV: {valuation.unavailable}."]
    if valuation.dropout is not None and not valuation.dropout.identified:
        return [
            f"{valuation.dropout.describe()}. The lifecycle stages ignore P(alive) and follow each "
            "customer's buying rhythm; the CLV assumes customers keep buying at their own rate."
        ]
    return []


def _forecast_table(forecast: Forecast, periods: int) -> pd.DataFrame:
    """``segment, current, forecast, change``: sizes now and expected after ``periods``."""
    expected = forecast.sizes(periods)
    current = forecast.current["state"].value_counts()
    frame = pd.DataFrame({"current": current, "forecast": expected}).fillna(0.0)
    frame.index.name = "segment"
    frame["current"] = frame["current"].astype("int64")
    frame["change"] = frame["forecast"] - frame["current"]
    return frame.reset_index()


def _one_layer(segment_id: str, sizes: dict[str, int], when: str) -> str:
    """The one layer in ``sizes`` (layer -> customers), else an error that lists them."""
    if len(sizes) == 1:
        return next(iter(sizes))
    listed = ", ".join(f"{layer} ({sizes[layer]:,} customers{when})" for layer in LAYERS if layer in sizes)
    raise InvalidInputError(
        f"segment id {segment_id!r} is in {len(sizes)} layers: {listed}; "
        "name the layer with --kind (kind= in Python)"
    )

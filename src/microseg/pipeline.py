"""The pipeline: a run of every step as of one date, snapshots and backfills.

A run reads the events, customers and products through one as-of cut (``features.asof.AsOf``)
and stores, date by date, the customer summary, the RFM and CLV values, the profiles with every
segment layer, and the membership history. The results of a date are replaced in one
transaction. ``Project.run``, ``Project.snapshot`` and ``Project.backfill`` call this module.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import pyarrow as pa

from microseg.config import ProjectConfig
from microseg.dynamics.snapshots import fingerprint, snapshot_dates
from microseg.errors import MicrosegError
from microseg.features.asof import AsOf
from microseg.features.chain import SnapshotChain
from microseg.features.profile import browsing_of, customer_profile, profile_of, spend_of
from microseg.features.summary import summary_of
from microseg.features.valuation import holdout_for, rfm_table, value_customers
from microseg.models.rules import parse_rules
from microseg.registry import TIER_LAYERS
from microseg.schema import CUSTOMER_SUMMARY, CUSTOMER_VALUES, MODEL_FITS, VALUE_MODELS
from microseg.segments.base import VALUE_COLUMNS, rule_members, with_values
from microseg.segments.segmentation import EngineCustomers, in_memory_columns, segment_customers
from microseg.warehouse import queries
from microseg.warehouse import snapshots as stored
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.history import update_history
from microseg.warehouse.segments import SegmentBase, kept_models, previous_segments, store_segmentation

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


class Pipeline:
    """The steps of a run over a project's configuration and warehouse.

    >>> import tempfile
    >>> from microseg.project import Project
    >>> with Project.init(tempfile.mkdtemp()) as project:
    ...     Pipeline(project.config, project.warehouse).backfill(dt.date(2025, 1, 1))
    Traceback (most recent call last):
    ...
    microseg.errors.MicrosegError: the warehouse has no events yet; run `microseg import` first
    """

    def __init__(
        self, config: ProjectConfig, warehouse: DuckDBWarehouse, chain: SnapshotChain | None = None
    ) -> None:
        self.config = config
        self.root = config.root
        self.warehouse = warehouse
        # the last snapshot computed: the next one continues its aggregates where that is exact
        self.chain = chain or SnapshotChain(lambda day: stored.events_by_import(warehouse, day))

    def analysis_date(self) -> dt.date:
        """The configured analysis date, or the day of the latest event."""
        if self.config.analysis_date is not None:
            return self.config.analysis_date
        latest = queries.latest_event_time(self.warehouse)
        if latest is None:
            raise MicrosegError("the warehouse has no events yet; run `microseg import` first")
        return latest.date()

    def tables(self, *names: str) -> list:
        """Warehouse tables on the configured engine (for Spark: read from the lake, or exported to Parquet)."""
        if self.config.backend == "duckdb":
            return [self.warehouse.table(name) for name in names]
        from microseg.engine.spark import connect_spark

        spark = connect_spark(self.config.spark_master)
        return [self.warehouse.spark_table(spark, name, self.root / "lake") for name in names]

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
        events, customers, products = self.tables("events", "customers", "products")
        self._check_rules(events, customers, products, as_of)  # a bad rule stops the run before any step
        recomputed = stored.is_stored(self.warehouse, as_of)
        # the one cut at as_of: every step reads the events through this snapshot, whose shared
        # aggregates the engine computes once for the run (or continues from the last snapshot)
        flags = self.config.segments.page_flags
        snapshot = self.chain.open(events, as_of, customers=customers, products=products, page_flags=flags)
        steps = [
            ("customer summary", lambda: self._run_summary(snapshot, result)),
            ("customer values", lambda: self._run_values(snapshot, result)),
            ("segments", lambda: self._run_segments(snapshot, result, refit)),
            ("history", lambda: update_history(self.warehouse, as_of, recomputed=recomputed)),
        ]
        # The results of a date are replaced in one transaction: a run that fails or is killed at
        # any point leaves the previous results of that date whole and consistent.
        with self.chain.computing(snapshot), self.warehouse.transaction():
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
                self.chain.release()
            runs.append(self.snapshot(date, force=force))
        if on_snapshot:
            on_snapshot(dates[-1], len(dates), len(dates))
        return BackfillResult(runs, time.perf_counter() - started)

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
        where = queries.as_of_is(as_of)
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
        profile = profile_of(snapshot, segment_settings.reactivation_gap_days, segment_settings.attributes)
        if self.config.backend != "duckdb":  # computed on Spark; stages and tiers join the values here
            profile = ibis.memtable(profile.to_pyarrow())
        values = wh.table(CUSTOMER_VALUES.name)
        with SegmentBase(wh, with_values(profile, values.filter(values.as_of == as_of)), settings) as base:
            # in memory: only what the clustering and the checks read (the engine has the rest)
            rows = base.to_pyarrow(in_memory_columns(segment_settings))
            here = self.config.backend == "duckdb"  # else computed on Spark, numbered here
            spend = spend_of(snapshot) if here else spend_of(snapshot).to_pyarrow()
            categories = base.number(spend, keep="__segment_spend")
            browsing = base.number(browsing_of(snapshot) if here else browsing_of(snapshot).to_pyarrow())
            frame = rows.drop_columns(["customer_id"]).to_pandas()
            rules = rule_members(base.table(), segment_settings.rules).to_pandas() if settings.rules else None
            # the run before this date (never a later one) gives the models, segments and ids to continue
            previous, retired = previous_segments(wh, as_of)
            segmentation = segment_customers(
                frame,
                categories,
                settings,
                previous,
                retired,
                browsing,
                customer_ids=rows.column("customer_id").to_numpy(zero_copy_only=False),
                models=kept_models(wh, as_of),
                as_of=as_of,
                refit=refit,
                rules=rules,
                engine=EngineCustomers(base.table(), wh.ibis.table("__segment_spend"), base.put),
            )
            store_segmentation(wh, segmentation, categories, as_of, base)
        result.segments = len(segmentation.layers["micro"].categories)
        result.clusters = segmentation.model_lines()
        result.warnings += segmentation.warnings

    def _store(self, table, expr, as_of: dt.date) -> int:
        """Replace the rows of ``as_of`` in ``table`` by the result of ``expr``."""
        where = queries.as_of_is(as_of)
        if self.config.backend == "duckdb":
            return self.warehouse.replace_rows(table, expr, where=where)
        return self.warehouse.replace_frame(table, expr.to_pyarrow(), where)  # computed on Spark


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

"""``Project``: the one entry point every front end (CLI, API, Python) calls.

A project is a folder with a ``microseg.toml`` and a DuckDB warehouse file. ``Project`` imports
the configured sources, runs the pipeline as of an analysis date (``microseg.pipeline``), and
answers questions about the results as DataFrames; the work is done by the modules it calls.

>>> import tempfile
>>> project = Project.init(tempfile.mkdtemp())
>>> project.status()["events"]
0
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from microseg.config import ProjectConfig, load_config
from microseg.dynamics import migration
from microseg.dynamics.answers import Dynamics, clv_at_stake_text, forecast_table
from microseg.features.chain import SnapshotChain
from microseg.pipeline import BackfillResult, Pipeline, RunResult, StepCallback
from microseg.registry import check_layer
from microseg.segments import lookup
from microseg.warehouse import history, open_warehouse, queries
from microseg.warehouse import snapshots as stored
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.ingest import quarantine as quarantined
from microseg.warehouse.ingest.files import ImportResult, import_sources

if TYPE_CHECKING:
    from microseg.demo.shock import Shock
    from microseg.dynamics.model_choice import Choice, Forecast
    from microseg.dynamics.periods import Periods
    from microseg.models.clv.validation import ClvValidation

__all__ = ["BackfillResult", "Project", "RunResult", "clv_at_stake_text"]


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
        from microseg.scaffold import new_project_folder

        return cls(new_project_folder(path, name, force))

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
        """Create a project with ``years`` of generated demo data up to ``as_of`` (default 31
        December 2025) as its sources (see ``microseg.demo`` and ``microseg.scaffold``)."""
        from microseg.scaffold import demo_project_folder

        options = dict(fmt=fmt, force=force, progress=progress, as_of=as_of, years=years, shock=shock)
        return cls(demo_project_folder(path, customers=customers, seed=seed, **options))

    @property
    def warehouse(self) -> DuckDBWarehouse:
        if self._warehouse is None:
            self._warehouse = open_warehouse(self.config)
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

    def _pipeline(self) -> Pipeline:
        return Pipeline(self.config, self.warehouse, self._kept)

    def _dynamics(self) -> Dynamics:
        return Dynamics(self.warehouse, self.config.dynamics, self._forecasts)

    def _latest(self, table: str, as_of: dt.date | None) -> dt.date:
        return queries.stored_as_of(self.warehouse, table, as_of)

    # -- import and pipeline ------------------------------------------------------------------
    def import_sources(
        self,
        names: Iterable[str] | None = None,
        *,
        on_file: Callable[[str, Path, ImportResult | None], None] | None = None,
    ) -> list[ImportResult]:
        """Import the named sources (all when ``names`` is empty); one result per file."""
        return import_sources(self.warehouse, self.config, names, on_file)

    def analysis_date(self) -> dt.date:
        """The configured analysis date, or the day of the latest event."""
        return self._pipeline().analysis_date()

    def run(
        self, as_of: dt.date | None = None, *, on_step: StepCallback | None = None, refit: bool = False
    ) -> RunResult:
        """Run the pipeline as of ``as_of`` (default: ``analysis_date()``) and store the results;
        ``refit`` fits the clustered layers anew instead of continuing the previous models."""
        return self._pipeline().run(as_of, on_step=on_step, refit=refit)

    def snapshot(
        self, as_of: dt.date, *, force: bool = False, on_step: StepCallback | None = None
    ) -> RunResult:
        """The snapshot of ``as_of``, reused when its inputs have not changed (unless ``force``)."""
        return self._pipeline().snapshot(as_of, force=force, on_step=on_step)

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
        """Snapshots of every ``every`` (``month``, ``week``) from ``start`` to ``end`` (default: the
        analysis date), oldest first, each from the events up to its date only; each continues
        the aggregates of the one before where the result is the same (``incremental``)."""
        return self._pipeline().backfill(
            start, end, every=every, force=force, on_snapshot=on_snapshot, incremental=incremental
        )

    def snapshots(self) -> pd.DataFrame:
        """Every stored snapshot, and whether the period ending at it is ``full``, a stub or a gap."""
        return self._dynamics().snapshots()

    # -- answers (``as_of`` None: the latest run) ---------------------------------------------
    def status(self) -> dict[str, int]:
        """Row counts of the main warehouse tables."""
        return queries.main_table_counts(self.warehouse)

    def customer_summary(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The stored per-customer summary of a run."""
        return queries.snapshot_rows(
            self.warehouse, "customer_summary", self._latest("customer_summary", as_of)
        )

    def customer_values(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """RFM, scores and CLV predictions per buying customer."""
        return queries.snapshot_rows(
            self.warehouse, "customer_values", self._latest("customer_values", as_of)
        )

    def memberships(self, kind: str | None = None, as_of: dt.date | None = None) -> pd.DataFrame:
        """Who is in which segment (customer_id, kind, segment_id), for one layer or all."""
        kind = None if kind is None else check_layer(kind)
        return queries.memberships(self.warehouse, self._latest("segment_memberships", as_of), kind)

    def segments(self, kind: str | None = None, as_of: dt.date | None = None) -> pd.DataFrame:
        """Segments with their persona label, size, shares and value (one layer or all)."""
        kind = None if kind is None else check_layer(kind)
        return queries.segments(self.warehouse, self._latest("segments", as_of), kind)

    def segment_models(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The clustering model of each clustered layer and scope: reused or refitted, and why."""
        return queries.segment_models(self.warehouse, self._latest("segment_models", as_of))

    def segment_changes(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """How the clustered segments of a run continue those of the previous run."""
        return queries.segment_changes(self.warehouse, self._latest("segment_changes", as_of))

    def persona(self, segment_id: str, kind: str | None = None, as_of: dt.date | None = None) -> dict:
        """The persona card of a segment (``kind``: its layer, when several have that id)."""
        return lookup.persona_card(self.segments(kind, as_of), segment_id, kind)

    def customer_card(self, customer_id: str, as_of: dt.date | None = None) -> dict:
        """The segment-of-one card of a customer: stage, tiers, segments, value, favourites."""
        return lookup.customer_card(self.warehouse, customer_id, self._latest("customer_profiles", as_of))

    # -- dynamics -----------------------------------------------------------------------------
    def _pair(self, kind: str, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
        return self._dynamics().pair(kind, start, end)  # by default the last two snapshots

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
        """Who was in a segment on a date (``kind``: its layer, when several have that id)."""
        return self._dynamics().members_on(segment_id, on, kind)

    def customer_history(self, customer_id: str, kind: str | None = None) -> pd.DataFrame:
        """When a customer entered and left each segment."""
        return history.customer_history(self.warehouse, customer_id, kind)

    def stage_sizes(self, kind: str = "lifecycle") -> pd.DataFrame:
        """Segment sizes at every snapshot: ``as_of, segment, customers``."""
        return migration.stage_sizes(self.warehouse, kind)

    def periods(self, kind: str = "lifecycle") -> Periods:
        """The periods between the stored snapshots of a layer: full, stub or gap."""
        return self._dynamics().periods(kind)

    def _forecaster(self, kind: str, group_kind: str | None) -> Forecast:
        return self._dynamics().forecaster(kind, group_kind)

    def forecast(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", periods: int = 1
    ) -> pd.DataFrame:
        """Segment sizes now and expected after ``periods`` periods: ``segment, current,
        forecast, change`` (the first period by the chosen model, later ones by the chain)."""
        return forecast_table(self._forecaster(kind, group_kind), periods)

    def forecast_choice(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> Choice:
        """Which model gives the next-period probabilities (``customer`` or ``chain``) and why."""
        return self._forecaster(kind, group_kind).choice

    def at_risk(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", to_states=("at_risk", "churned")
    ) -> pd.DataFrame:
        """Each customer's probability of moving into ``to_states`` next period (``p_move``) and the
        CLV at stake, ``p_move`` x the customer's CLV, largest first."""
        return self._forecaster(kind, group_kind).at_risk(tuple(to_states))

    def next_period(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> pd.DataFrame:
        """Each customer's probability of each segment of ``kind`` next period."""
        return self._dynamics().next_period(kind, group_kind)

    def forecast_backtest(self, kind: str = "lifecycle", group_kind: str | None = "clv_tier") -> pd.DataFrame:
        """One-period-ahead backtest of both forecast models on past full periods."""
        return self._forecaster(kind, group_kind).backtest.copy()

    def alert_period(self, kind: str = "lifecycle", as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
        """The period the alerts test: the full period ending ``as_of`` (default: the latest)."""
        return self._dynamics().alert_period(kind, as_of)

    def alerts(
        self, kind: str = "lifecycle", group_kind: str | None = "clv_tier", as_of: dt.date | None = None
    ) -> pd.DataFrame:
        """Transitions of the period :meth:`alert_period` whose rate departs significantly."""
        return self._dynamics().alerts(kind, group_kind, as_of)

    def report(
        self,
        path: str | Path | None = None,
        *,
        kind: str = "lifecycle",
        persona_kind: str = "behaviour",
        group_kind: str | None = "clv_tier",
    ) -> Path:
        """Write the migration report (one HTML file) and return its path."""
        from microseg.outputs.migration_report import compose_report

        return compose_report(self, path, kind=kind, persona_kind=persona_kind, group_kind=group_kind)

    # -- customer value -----------------------------------------------------------------------
    def value_models(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """The models a run considered for customer value, and which was chosen and why."""
        return queries.value_models(self.warehouse, as_of)[1]

    def why_no_clv(self, as_of: dt.date | None = None) -> str | None:
        """Why the customers of a run have no CLV; None when they have."""
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
        """Check the repeat-buying models on a holdout period ending ``as_of``."""
        from microseg.features.clv_validation import validate_clv

        pipeline = self._pipeline()
        end = as_of or pipeline.analysis_date()
        (events,) = pipeline.tables("events")
        options = dict(calibration_end=calibration_end, holdout_days=holdout_days, models=models)
        return validate_clv(events, self.warehouse, self.config.clv, end, **options)

    def model_fits(self, as_of: dt.date | None = None) -> pd.DataFrame:
        """Fitted model parameters with standard errors."""
        return queries.model_fits(self.warehouse, as_of)

    # -- quarantine and imports ---------------------------------------------------------------
    def quarantine(
        self, source: str | None = None, limit: int | None = None, *, file: str | Path | None = None
    ) -> pd.DataFrame:
        """Quarantined rows with their reasons, newest import first, of a source and/or file."""
        quarantined.check_source(self.warehouse, self.config.sources, source)
        return quarantined.list_rows(self.warehouse, source, file, limit)

    def quarantine_count(self, source: str | None = None, *, file: str | Path | None = None) -> int:
        """How many rows ``quarantine`` would list without a limit.

        >>> import tempfile
        >>> Project.init(tempfile.mkdtemp()).quarantine_count()
        0
        """
        quarantined.check_source(self.warehouse, self.config.sources, source)
        return quarantined.count_rows(self.warehouse, source, file)

    def clear_quarantine(self, source: str | None = None, *, file: str | Path | None = None) -> int:
        """Delete quarantined rows of a source and/or file (all when neither is given); returns
        how many. Importing a file again also replaces its rows.

        >>> import tempfile
        >>> Project.init(tempfile.mkdtemp()).clear_quarantine(file="orders.csv")
        0
        """
        quarantined.check_source(self.warehouse, self.config.sources, source)
        return quarantined.clear(self.warehouse, source, file)

    def imports(self) -> pd.DataFrame:
        """The import log."""
        return queries.imports(self.warehouse)

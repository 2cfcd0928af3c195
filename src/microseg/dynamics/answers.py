"""Answers about movement between stored snapshots: the pair of snapshots a migration compares,
the periods between them, who was in a segment on a date, the chosen next-period forecast and
the alerts of a period. ``Project`` delegates its dynamics questions here.

The forecast is the costly answer (both models fitted and backtested on every stored
snapshot), so it is kept in a cache owned by the caller until the snapshots or the settings
change.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd

from microseg.config import DynamicsConfig
from microseg.dynamics import migration
from microseg.dynamics.periods import FULL, Periods, describe_periods
from microseg.errors import MicrosegError
from microseg.registry import check_layer
from microseg.segments.lookup import one_layer
from microseg.warehouse import queries
from microseg.warehouse import snapshots as stored
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.history import members_on, segment_layers

if TYPE_CHECKING:
    from microseg.dynamics.model_choice import Forecast


class Dynamics:
    """The dynamics questions of one warehouse; ``forecasts`` is the cache of fitted forecasts
    by (layer, group layer, state of the snapshots, settings), kept by the caller."""

    def __init__(self, warehouse: DuckDBWarehouse, settings: DynamicsConfig, forecasts: dict) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.forecasts = forecasts

    def pair(self, kind: str, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
        """The two snapshots compared: by default the last two."""
        dates = migration.stored_dates(self.warehouse, kind)
        if not dates:
            self.check_layers(kind)
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

    def check_layers(self, *kinds: str | None) -> None:
        """A clear error for a misspelt layer (once anything is segmented)."""
        if not self.warehouse.count("segment_memberships"):
            return
        for kind in kinds:
            if kind is not None:
                migration.check_name("segment layer", kind, queries.layers(self.warehouse))

    def snapshots(self) -> pd.DataFrame:
        """Every stored snapshot: ``as_of, period, computed_at, seconds, customers, events``;
        ``period`` says how the period ending at it compares with the cadence of the snapshots
        (``full``, ``stub (9 days)``, ``gap (61 days)``; empty for the first)."""
        frame = stored.listing(self.warehouse)
        periods = describe_periods(frame["as_of"])
        kinds = {
            r.to_date: r.kind if r.kind == FULL else f"{r.kind} ({r.days} days)"
            for r in periods.table.itertuples()
        }
        frame.insert(1, "period", [kinds.get(day, "") for day in pd.to_datetime(frame["as_of"]).dt.date])
        return frame

    def members_on(self, segment_id: str, on: dt.date, kind: str | None) -> pd.DataFrame:
        """Who was in a segment on a date (by the latest snapshot on or before it), one row per
        customer. ``kind`` names the layer; it may be left out when only one layer has a segment
        of that id (``at_risk`` is both a lifecycle stage and an RFM tier)."""
        layers = segment_layers(self.warehouse, segment_id, on)
        if kind is not None:
            check_layer(kind)
        elif layers:
            kind = one_layer(segment_id, layers, f" on {on}")
        if kind not in layers:  # an unknown segment is an error, not an empty audience
            what = f"{kind} segment" if kind else "segment"
            migration.check_name(what, segment_id, queries.history_segment_ids(self.warehouse, kind))
        return members_on(self.warehouse, segment_id, on, kind)

    def periods(self, kind: str) -> Periods:
        """The periods between the stored snapshots of a layer: which are full, which are stub
        periods (a snapshot off the cadence, such as an analysis date on the 9th after month-end
        snapshots) and which are longer (a snapshot missing). Rates, forecasts, backtests and
        alerts use the full periods only (see ``microseg.dynamics.periods``)."""
        self.check_layers(kind)
        return describe_periods(migration.stored_dates(self.warehouse, kind))

    def forecaster(self, kind: str, group_kind: str | None) -> Forecast:
        """Both forecast models fitted on the full periods, backtested, one chosen; kept until
        the snapshots change."""
        from microseg.dynamics.model_choice import build_forecast

        self.check_layers(kind, group_kind)
        signature = stored.signature(self.warehouse)
        key = (kind, group_kind, signature, self.settings)
        if key in self.forecasts:
            return self.forecasts[key]
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
        settings = self.settings
        forecast = build_forecast(
            states,
            periods,
            setting=settings.forecast_model,
            smoothing=settings.forecast_smoothing,
            window=settings.forecast_window,
            condition_on_group=group_kind is not None,
        )
        # only the latest: a forecast holds every snapshot's rows
        self.forecasts.clear()
        self.forecasts[key] = forecast
        return forecast

    def next_period(self, kind: str, group_kind: str | None) -> pd.DataFrame:
        """Each customer's probability of being in each segment of ``kind`` next period (one
        column per segment, ``(gone)`` included), with their current segment, group, CLV and
        the ``model`` that gave the probabilities (``customer`` or ``chain``)."""
        forecast = self.forecaster(kind, group_kind)
        current = forecast.current.set_index("customer_id")[["state", "group", "clv"]].rename(
            columns={"state": "segment"}
        )
        current["model"] = forecast.choice.model
        return current.join(forecast.proba()).reset_index()

    def alert_period(self, kind: str, as_of: dt.date | None) -> tuple[dt.date, dt.date]:
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

    def alerts(self, kind: str, group_kind: str | None, as_of: dt.date | None) -> pd.DataFrame:
        """Transitions of the full period ending ``as_of`` whose rate departs significantly
        from the earlier full periods, overall and within each ``group_kind`` segment."""
        from microseg.dynamics.alerts import transition_alerts

        self.check_layers(kind, group_kind)
        _, end = self.alert_period(kind, as_of)
        periods = self.periods(kind)
        counts = migration.period_counts(self.warehouse, kind, group_kind, dates=periods.regular_dates)
        counts = counts[pd.to_datetime(counts["as_of"]).dt.date.isin(periods.full_ends)]
        if counts.empty:
            raise MicrosegError("alerts need at least two snapshots; run `microseg backfill` first")
        settings = self.settings
        return transition_alerts(
            counts,
            as_of=end,
            alpha=settings.alert_alpha,
            min_ratio=settings.alert_min_ratio,
            min_moved=settings.alert_min_moved,
            min_history=settings.alert_min_history,
        )


def forecast_table(forecast: Forecast, periods: int) -> pd.DataFrame:
    """``segment, current, forecast, change``: sizes now and expected after ``periods``. The
    first period is forecast by the chosen model, later ones by the Markov chain of the
    transitions between stored snapshots; new customers arrive at the rate of the learned periods."""
    expected = forecast.sizes(periods)
    current = forecast.current["state"].value_counts()
    frame = pd.DataFrame({"current": current, "forecast": expected}).fillna(0.0)
    frame.index.name = "segment"
    frame["current"] = frame["current"].astype("int64")
    frame["change"] = frame["forecast"] - frame["current"]
    return frame.reset_index()


def clv_at_stake_text(horizon_months: int) -> str:
    """What "CLV at stake" means, for every place that shows it.

    >>> clv_at_stake_text(12).startswith("CLV at stake = P(move to at_risk or churned next period)")
    True
    """
    return (
        "CLV at stake = P(move to at_risk or churned next period) x the customer's CLV (the "
        f"discounted spend expected from them over the next {horizon_months} months): the value "
        "that is expected to slip away if nothing is done; a segment's figure is the sum over its customers."
    )

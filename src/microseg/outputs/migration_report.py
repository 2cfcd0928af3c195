"""The migration report's content, gathered from a project's answers and handed to the renderer
(``microseg.dynamics.report.write_report``): stage sizes over time, recent flows, the latest
transition matrix, persona cards, alerts with what they tested, and the next-period forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from microseg.dynamics import migration
from microseg.dynamics.answers import clv_at_stake_text
from microseg.errors import MicrosegError

if TYPE_CHECKING:
    from microseg.project import Project


def compose_report(
    project: Project, path: str | Path | None, *, kind: str, persona_kind: str, group_kind: str | None
) -> Path:
    """Write the migration report of ``project`` (one self-contained HTML file at ``path``,
    default ``reports/report-<date>.html`` in the project) and return its path: stage sizes over
    time, flows of the last ``report_periods`` periods, the latest transition matrix, persona
    cards of ``persona_kind``, alerts and the forecast for the next period. It needs at least
    two snapshots of ``kind``."""
    from microseg.dynamics.report import write_report

    dates = migration.stored_dates(project.warehouse, kind)
    if len(dates) < 2:
        raise MicrosegError(
            "a report needs at least two snapshots; run `microseg backfill` (or `microseg run` on two dates)"
        )
    settings = project.config.dynamics
    as_of = dates[-1]
    periods = project.periods(kind)
    notes = [periods.note()] if periods.note() else []
    alerts = project.alerts(kind, group_kind)
    tested_from, tested_to = project.alert_period(kind)
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
    table = project.forecast(kind, group_kind, periods=1)
    stake = project.at_risk(kind, group_kind).groupby("state")["clv_at_stake"].sum()
    table["at_stake_clv"] = table["segment"].map(stake)
    stake_text = clv_at_stake_text(project.config.clv.horizon_months)
    reason = project.forecast_choice(kind, group_kind).reason
    forecast_note = f"Next-period probabilities come from {reason}. {stake_text}"
    matrix_from, matrix_to = periods.full[-1] if periods.full else (dates[-2], as_of)
    target = Path(path) if path else project.root / "reports" / f"report-{as_of.isoformat()}.html"
    return write_report(
        target,
        title=f"{project.config.name}: how customers move",
        as_of=as_of,
        stage_sizes=project.stage_sizes(kind),
        flows=project.flows(kind, dates[-(settings.report_periods + 1) :]),
        matrix=project.transition_matrix(kind, matrix_from, matrix_to),
        matrix_period=(matrix_from, matrix_to),
        personas=project.segments(persona_kind, as_of),
        alerts=alerts,
        forecast=table,
        forecast_note=forecast_note,
        notes=notes,
    )

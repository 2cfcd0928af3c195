"""An analysis date after the last month end: the short last period is marked and not compared.

The demo ends on 9 December 2025: `run` stores a snapshot of that day, `backfill` the month ends
before it, so the last period is nine days long. Its moves are not a month's moves: it is listed
(marked as a stub) but not learned from, backtested or tested for alerts.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from microseg.cli import main, state
from microseg.errors import MicrosegError
from microseg.project import Project

pytestmark = pytest.mark.slow

END = dt.date(2025, 12, 9)
LAST_MONTH_END = dt.date(2025, 11, 30)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("stub") / "demo"
    Project.create_demo(root, customers=1_200, seed=4, as_of=END)
    project = Project(root)
    project.import_sources()
    project.run()
    project.backfill(dt.date(2025, 5, 1))
    yield project
    project.close()


def cli(project: Project, capsys, *args: str) -> str:
    state.debug = False
    code = main(["--project", str(project.root), *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_the_last_period_is_a_stub(project):
    periods = project.periods()
    assert periods.dates[-2:] == [LAST_MONTH_END, END]
    last = periods.table.iloc[-1]
    assert (last.from_date, last.to_date, last.days, last.kind) == (LAST_MONTH_END, END, 9, "stub")
    assert (periods.table.iloc[:-1]["kind"] == "full").all()
    assert periods.full_ends[-1] == LAST_MONTH_END


def test_snapshots_and_flows_mark_the_stub(project, capsys):
    snapshots = project.snapshots().set_index("as_of")
    assert snapshots.loc[pd.Timestamp(END), "period"] == "stub (9 days)"
    assert snapshots.loc[pd.Timestamp(LAST_MONTH_END), "period"] == "full"
    flows = project.flows()
    assert set(flows.loc[flows["to_date"] == END, "period"]) == {"stub"}
    assert set(flows.loc[flows["to_date"] < END, "period"]) == {"full"}
    out = cli(project, capsys, "snapshots")
    assert "stub (9 days)" in out
    out = cli(project, capsys, "migration")
    assert f"{LAST_MONTH_END} (rows) -> {END}" in out and "9-day stub" in out


def test_alerts_test_the_latest_full_period(project, capsys):
    assert project.alert_period() == (dt.date(2025, 10, 31), LAST_MONTH_END)
    with pytest.raises(
        MicrosegError, match=r"2025-12-09 .*9-day stub.*latest full period ends on 2025-11-30"
    ):
        project.alerts(as_of=END)
    out = cli(project, capsys, "alerts")
    assert "2025-10-31 to 2025-11-30" in out and "9-day stub" in out


def test_the_forecast_learns_from_full_periods_and_starts_from_today(project):
    forecast = project._forecaster("lifecycle", "clv_tier")
    window = project.config.dynamics.forecast_window
    assert forecast.chain.periods_ == window
    assert max(forecast.chain.snapshot_dates_).date() == LAST_MONTH_END
    if forecast.customer is not None:
        assert max(forecast.customer.snapshot_dates_).date() == LAST_MONTH_END
    # the forecast starts from the customers of the latest snapshot
    assert project.forecast()["current"].sum() == len(project.memberships("lifecycle", END))


def test_the_backtest_never_forecasts_the_stub(project):
    errors = project.forecast_backtest()
    assert len(errors) >= 2
    assert END not in set(pd.to_datetime(errors["target"]).dt.date)
    assert pd.to_datetime(errors["target"]).dt.date.max() == LAST_MONTH_END


def test_forecast_and_report_say_so(project, capsys, tmp_path):
    out = cli(project, capsys, "forecast", "--backtest")
    assert "9-day stub" in out
    html = project.report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "9-day stub" in html
    # the heatmap shows the latest full month, not the stub
    assert f"from {LAST_MONTH_END - dt.timedelta(days=30)} to {LAST_MONTH_END}" in html

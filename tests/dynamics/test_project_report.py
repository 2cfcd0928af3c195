"""The dynamics commands end to end: backfill, migration, journeys, forecast, alerts and report."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from microseg.cli import main, state
from microseg.project import Project
from tests.dynamics.conftest import offline_report

START, END = dt.date(2025, 5, 1), dt.date(2025, 12, 31)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "demo"
    Project.create_demo(root, customers=1_500, seed=5)
    project = Project(root)
    project.import_sources()
    yield project
    project.close()


def cli(project: Project, capsys, *args: str) -> str:
    state.debug = False
    code = main(["--project", str(project.root), *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


@pytest.fixture(scope="module")
def backfilled(project):
    state.debug = False
    assert main(["--project", str(project.root), "backfill", "--from", str(START), "--to", str(END)]) == 0
    return project


def test_cli_backfill_and_snapshots(backfilled, capsys):
    out = cli(backfilled, capsys, "backfill", "--from", str(START), "--to", str(END))
    assert "8 snapshots (2025-05-31 to 2025-12-31): 0 computed, 8 up to date" in out
    out = cli(backfilled, capsys, "snapshots")
    assert out.count("2025-") >= 8 and "2025-08-31" in out


def test_cli_migration_matrix_matches_the_api(backfilled, capsys):
    out = cli(backfilled, capsys, "migration", "--from", "2025-11-30", "--to", "2025-12-31")
    matrix = backfilled.transition_matrix("lifecycle", dt.date(2025, 11, 30), dt.date(2025, 12, 31))
    row = next(line for line in out.splitlines() if re.search(r"\bactive\b", line) and "│" in line)
    cells = [c.strip().replace(",", "") for c in row.split("│") if c.strip()]
    assert cells[0] == "active"
    assert [int(c) for c in cells[1:]] == [int(v) for v in matrix.loc["active"]]
    out = cli(backfilled, capsys, "migration", "--value", "rate")
    assert "%" in out


def test_cli_journey_members_and_paths(backfilled, capsys):
    members = backfilled.memberships("lifecycle", dt.date(2025, 9, 30))
    customer = members.loc[members.segment_id == "at_risk", "customer_id"].iloc[0]
    out = cli(backfilled, capsys, "journey", customer, "--kind", "lifecycle")
    assert customer in out and "at_risk" in out
    out = cli(
        backfilled, capsys, "members", "at_risk", "--on", "2025-10-15", "--kind", "lifecycle", "--limit", "0"
    )
    expected = (members.segment_id == "at_risk").sum()
    assert f"{expected:,} customers were in at_risk on 2025-10-15" in out
    out = cli(backfilled, capsys, "paths", "--top", "3")
    assert "->" in out or "active" in out


def test_cli_forecast_and_alerts(backfilled, capsys):
    out = " ".join(cli(backfilled, capsys, "forecast", "--backtest").split())
    assert "Most CLV at stake" in out and "Backtest" in out and "same as last period" in out
    # which model gave the probabilities, and what CLV at stake means
    choice = backfilled.forecast_choice()
    assert f"Next-period probabilities: {choice.reason}" in out
    assert "CLV at stake = P(move to at_risk or churned next period) x the customer's CLV" in out
    assert "Mean log-loss: customer model" in out and "ll_customer" in out
    out = cli(backfilled, capsys, "alerts")
    assert "No alerts" in out or "Alert" in out


def test_forecast_sizes_keep_the_customers(backfilled):
    sizes = backfilled.forecast()
    latest = backfilled.memberships("lifecycle", END)
    assert sizes["current"].sum() == len(latest)
    # every current customer is somewhere next period ("(gone)" included), plus the new arrivals
    forecast = backfilled._forecaster("lifecycle", "clv_tier")
    assert sizes["forecast"].sum() == pytest.approx(len(latest) + forecast.chain.inflow_.sum())
    assert forecast.chain.periods_ == backfilled.config.dynamics.forecast_window
    risky = backfilled.at_risk()
    assert (risky["p_move"].between(0, 1)).all()
    assert risky["clv_at_stake"].dropna().is_monotonic_decreasing
    valued = risky.dropna(subset=["clv"])
    assert len(valued) > 0
    assert valued["clv_at_stake"].to_numpy() == pytest.approx((valued["p_move"] * valued["clv"]).to_numpy())


def test_project_report_file(backfilled, tmp_path, capsys):
    out = cli(backfilled, capsys, "report", "--out", str(tmp_path / "r.html"))
    assert "Wrote" in out
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    for heading in ("Stage sizes over time", "Migration between stages", "Transition matrix", "Personas"):
        assert heading in html
    assert "Alerts" in html and "Forecast for next period" in html
    # the forecast says which model gave it and what CLV at stake means
    reason = backfilled.forecast_choice().reason
    assert f"Next-period probabilities come from {reason}." in html
    assert "CLV at stake = P(move to at_risk or churned next period) x the customer&#x27;s CLV" in html
    assert "the period from 2025-11-30 to 2025-12-31 was tested" in html
    # one file: no script, style sheet or image is loaded from anywhere
    assert re.search(r"<script[^>]*\bsrc=", html) is None
    assert re.search(r"<(link|img)\b", html) is None
    default = backfilled.report()
    assert default == backfilled.root / "reports" / "report-2025-12-31.html" and default.exists()


@pytest.mark.browser
def test_project_report_opens_offline_in_chromium(backfilled, chromium, tmp_path):
    path = backfilled.report(tmp_path / "report.html")
    with offline_report(chromium, path) as (page, log):
        labels = [t.text_content() for t in page.locator("#microseg-migration .node-label").all()]
        shown = backfilled.config.dynamics.report_periods + 1  # snapshots of the last periods
        assert labels.count("active") == shown  # one node per snapshot
        columns = page.locator("#microseg-migration .annotation-text").all_text_contents()
        assert columns[-1] == "2025-12-31" and len(columns) == shown
        assert page.locator(".card h3").count() == len(backfilled.segments("behaviour", END))
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert log.blocked == [] and log.errors == []
    assert shot.stat().st_size > 50_000


def test_misspelt_names_are_errors_with_a_suggestion(backfilled):
    from microseg.errors import MicrosegError

    with pytest.raises(MicrosegError, match='no segment layer .lifecylce. \\(did you mean "lifecycle"\\?\\)'):
        backfilled.transition_matrix("lifecylce")
    with pytest.raises(MicrosegError, match='did you mean "clv_tier"'):
        backfilled.alerts(group_kind="clv_tire")
    with pytest.raises(MicrosegError, match='did you mean "lifecycle"'):
        backfilled.forecast("lifecylce")
    with pytest.raises(
        MicrosegError, match="no lifecycle segment 'at_rsk' \\(did you mean \"at_risk\"\\?\\)"
    ):
        backfilled.members_on("at_rsk", END, "lifecycle")
    # a known segment nobody was in on a date is an empty audience, not an error
    assert backfilled.members_on("at_risk", dt.date(2020, 1, 1), "lifecycle").empty


def test_tier_matrices_read_from_the_top(backfilled):
    matrix = backfilled.transition_matrix("clv_tier")
    tiers = [c for c in matrix.columns if not c.startswith("(")]
    assert tiers == [t for t in ("top_1", "top_5", "top_20", "rest", "none") if t in tiers]
    assert list(matrix.index[-1:]) == ["(new)"] or "(new)" not in matrix.index


@pytest.mark.slow
def test_weekly_snapshots(tmp_path, capsys):
    root = tmp_path / "weekly"
    Project.create_demo(root, customers=800, seed=9)
    state.debug = False
    args = ["--project", str(root), "backfill", "--from", "2025-12-01", "--every", "week"]
    assert main(["--project", str(root), "import"]) == 0
    assert main(args) == 0
    assert "5 snapshots (2025-12-03 to 2025-12-31): 5 computed" in capsys.readouterr().out
    with Project(root) as project:
        dates = [d.isoformat() for d in project.snapshots()["as_of"].dt.date]
        assert dates == ["2025-12-03", "2025-12-10", "2025-12-17", "2025-12-24", "2025-12-31"]
        flows = project.flows()
        assert flows.groupby("from_date")["customers"].sum().size == 4


def test_next_period_probabilities_per_customer(backfilled, tmp_path, capsys):
    table = backfilled.next_period()
    latest = backfilled.memberships("lifecycle", END).set_index("customer_id")["segment_id"]
    assert len(table) == len(latest)
    assert (
        table.set_index("customer_id")["segment"] == latest.reindex(table["customer_id"]).to_numpy()
    ).all()
    states = [c for c in table.columns if c not in ("customer_id", "segment", "group", "clv", "model")]
    assert table[states].sum(axis=1).to_numpy() == pytest.approx(1.0)
    forecast = backfilled._forecaster("lifecycle", "clv_tier")
    assert set(table["model"]) == {forecast.choice.model}
    if forecast.choice.model == "chain":
        # each customer's row is the transition row of their stage within their CLV tier
        chain = forecast.chain
        for _, row in table.sample(20, random_state=1).iterrows():
            matrix = chain.group_matrices_.get(row["group"], chain.transition_matrix_)
            expected = matrix.loc[row["segment"]].reindex(states, fill_value=0.0)
            assert row[states].astype(float).to_numpy() == pytest.approx(expected.to_numpy())
    else:
        # each customer's own probabilities: customers of one stage and tier differ
        own = forecast.customer.predict_proba(forecast.current)
        assert table.set_index("customer_id")[list(own.columns)].to_numpy() == pytest.approx(own.to_numpy())
        active = table[(table["segment"] == "active") & (table["group"] == "rest")]
        assert active["at_risk"].nunique() > 5
    out = cli(backfilled, capsys, "forecast", "--top", "0", "--out", str(tmp_path / "next.csv"))
    assert f"of {len(table):,} customers" in out
    written = pd.read_csv(tmp_path / "next.csv")
    assert list(written.columns) == list(table.columns) and len(written) == len(table)

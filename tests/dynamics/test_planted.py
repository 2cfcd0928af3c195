"""Planted movements in generated data: the matrices and alerts show them, and nothing else.

The demo's history runs to 30 June 2026 and the snapshots are the month ends of 2025, so the
demo's own end effects (its planted new and reactivated customers of the last 90 days) lie
outside the window and the plain data is a steady business. It also holds 300 weekly buyers
(an extra file) who buy every week from January 2024 on. Three movements are planted:

* a churn wave: the weekly buyers stop buying on 1 July 2025, so at the 31 July snapshot they are
  more than four rhythms late and go from ``active`` straight to ``churned``;
* a win-back wave: on 10 July 2025 half of the customers who were churned on 30 June and had
  not bought for over a year buy again, which makes them ``reactivated`` at the 31 July snapshot;
* a slow churn wave (``Shock``, from the demo generator): the regular buyers of the demo, who buy
  every two to six months, stop from 1 July 2025; each crosses the at-risk line when 1.6 of their
  own rhythms late, spread over the following months.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microseg.demo import Shock
from microseg.dynamics.snapshots import snapshot_dates
from microseg.project import Project

pytestmark = pytest.mark.slow

DEMO_END = dt.date(2026, 6, 30)
START, END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
BEFORE, AFTER = dt.date(2025, 6, 30), dt.date(2025, 7, 31)
WAVE_DAY = dt.datetime(2025, 7, 10, 12)
CUSTOMERS, SEED = 5_000, 7


#: Stages from each customer's own history only. By default a stage also depends on everybody:
#: through P(alive) from the CLV model fitted to all customers, and through the rhythm one-time
#: buyers are measured with (the median of the repeat buyers', at least ``one_time_floor_days``).
#: A wave of returns after long silences moves both, and with them other customers' stages: real,
#: but not the planted movement alone. Here P(alive) is ignored and the floor (180 days) lies
#: above the median rhythm, before and after the wave.
OWN_HISTORY_ONLY = """
[segments]
at_risk_p_alive = -1
churned_p_alive = -1
one_time_floor_days = 180
"""


WEEKLY = [f"W{i:08d}" for i in range(300)]
WEEKLY_FILE = "purchases-90000.parquet"


def _write_weekly_buyers(data: Path, until: dt.date) -> None:
    """The weekly buyers: customers signed up on 1 January 2024 who order one item a week (give
    or take a day) up to ``until``."""
    customers = pq.read_schema(data / "customers.parquet")
    table = pa.table(
        {
            "customer_id": WEEKLY,
            "signup_date": [dt.date(2024, 1, 1)] * len(WEEKLY),
            "country": ["United Kingdom"] * len(WEEKLY),
        }
    )
    columns = {
        name: table[name] if name in table.column_names else pa.nulls(len(WEEKLY)) for name in customers.names
    }
    pq.write_table(pa.table(columns).cast(customers), data / "customers-weekly.parquet")

    rng = np.random.default_rng(3)
    start = np.datetime64("2024-01-01T09:00", "s")
    weeks = (until - dt.date(2024, 1, 1)).days // 7 + 1
    days = np.arange(weeks)[None, :] * 7 + rng.uniform(0, 1, (len(WEEKLY), weeks))
    ts = (start + (days * 86_400).astype("timedelta64[s]")).ravel()
    owner = np.repeat(WEEKLY, weeks)
    keep = ts < np.datetime64(until + dt.timedelta(days=1), "s")
    ts, owner = ts[keep], owner[keep]
    n = len(ts)
    rows = pd.DataFrame(
        {
            "event_id": [f"WEEKLY{i:010d}" for i in range(n)],
            "event_type": "purchase",
            "ts": ts,
            "customer_id": owner,
            "channel": "web",
            "order_id": [f"OWEEKLY{i:09d}" for i in range(n)],
            "product_id": [f"P{1 + i % 20:04d}" for i in range(n)],
            "quantity": 1,
            "unit_price": [Decimal("25.00")] * n,
            "currency": "GBP",
        }
    )
    schema = pq.read_schema(data / "purchases-00000.parquet")
    pq.write_table(pa.Table.from_pandas(rows, schema=schema, preserve_index=False), data / WEEKLY_FILE)


def _demo(root, shock=None) -> Project:
    Project.create_demo(root, customers=CUSTOMERS, seed=SEED, as_of=DEMO_END, shock=shock)
    with (root / "microseg.toml").open("a") as f:
        f.write(OWN_HISTORY_ONLY)
    _write_weekly_buyers(root / "data", DEMO_END)
    project = Project(root)
    project.import_sources()
    project.backfill(START, END)
    return project


def _copy(project: Project, root: Path) -> Path:
    shutil.copytree(project.root / "data", root / "data")
    shutil.copy(project.root / "microseg.toml", root / "microseg.toml")
    return root


def _backfilled(root: Path) -> Project:
    project = Project(root)
    project.import_sources()
    project.backfill(START, END)
    return project


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    project = _demo(tmp_path_factory.mktemp("plain") / "demo")
    yield project
    project.close()


@pytest.fixture(scope="module")
def weekly_churn(plain, tmp_path_factory):
    """The plain data with the weekly buyers' purchases from 1 July 2025 on taken out."""
    root = _copy(plain, tmp_path_factory.mktemp("weekly_churn") / "demo")
    _write_weekly_buyers(root / "data", BEFORE)
    project = _backfilled(root)
    yield project
    project.close()


def _win_back_cohort(project: Project) -> list[str]:
    """Every other customer (by id) churned on BEFORE whose last purchase is over a year before
    the wave: buying again makes them reactivated (a pause of at least 365 days)."""
    churned = project.memberships("lifecycle", BEFORE)
    churned = set(churned.loc[churned["segment_id"] == "churned", "customer_id"])
    last = project.warehouse.fetch_df(
        "SELECT customer_id, max(ts) AS last FROM events WHERE event_type = 'purchase' "
        "AND ts <= TIMESTAMP '2025-06-30 23:59:59' GROUP BY customer_id"
    )
    long_gone = last.loc[last["last"] < pd.Timestamp(WAVE_DAY - dt.timedelta(days=366)), "customer_id"]
    eligible = sorted(churned & set(long_gone))
    return eligible[::2]


@pytest.fixture(scope="module")
def win_back(plain, tmp_path_factory):
    """The plain data plus one purchase on WAVE_DAY by each customer of the cohort."""
    cohort = _win_back_cohort(plain)
    root = _copy(plain, tmp_path_factory.mktemp("win_back") / "demo")
    schema = pq.read_schema(plain.root / "data" / "purchases-00000.parquet")
    rows = pd.DataFrame(
        {
            "event_id": [f"WINBACK{i:06d}" for i in range(len(cohort))],
            "event_type": "purchase",
            "ts": pd.Timestamp(WAVE_DAY) + pd.to_timedelta(np.arange(len(cohort)), unit="min"),
            "customer_id": cohort,
            "channel": "web",
            "order_id": [f"OWINBACK{i:06d}" for i in range(len(cohort))],
            "product_id": "P0001",
            "quantity": 1,
            "unit_price": [Decimal("20.00")] * len(cohort),
            "currency": "GBP",
        }
    )
    pq.write_table(
        pa.Table.from_pandas(rows, schema=schema, preserve_index=False),
        root / "data" / "purchases-99999.parquet",
    )
    project = _backfilled(root)
    yield project, cohort
    project.close()


@pytest.fixture(scope="module")
def churn_wave(tmp_path_factory):
    shock = Shock(dt.date(2025, 7, 1), share=1.0, min_orders_per_month=0.3)
    project = _demo(tmp_path_factory.mktemp("churn") / "demo", shock=shock)
    truth = pd.read_parquet(project.root / "data" / "truth.parquet")
    yield project, sorted(truth.loc[truth["shocked"], "customer_id"])
    project.close()


def _stage(project: Project, as_of: dt.date) -> pd.Series:
    return project.memberships("lifecycle", as_of).set_index("customer_id")["segment_id"]


def test_plain_data_fires_no_alert(plain):
    dates = snapshot_dates(START, END)
    tested = 0
    for as_of in dates[4:]:  # three earlier periods are needed to judge one
        alerts = plain.alerts(as_of=as_of)
        assert alerts.empty, alerts["message"].tolist()
        tested += 1
    assert tested == 8


def test_churn_wave_moves_the_weekly_buyers_from_active_to_churned(plain, weekly_churn):
    before, after = _stage(weekly_churn, BEFORE), _stage(weekly_churn, AFTER)
    assert (before.loc[WEEKLY] == "active").all() and (after.loc[WEEKLY] == "churned").all()
    assert (_stage(plain, AFTER).loc[WEEKLY] == "active").all()
    others = after.index.difference(WEEKLY)
    assert (after.loc[others] == _stage(plain, AFTER).loc[others]).all()
    difference = weekly_churn.transition_matrix("lifecycle", BEFORE, AFTER).sub(
        plain.transition_matrix("lifecycle", BEFORE, AFTER), fill_value=0
    )
    expected = pd.DataFrame(0, index=difference.index, columns=difference.columns)
    expected.loc["active", "churned"] = len(WEEKLY)
    expected.loc["active", "active"] = -len(WEEKLY)
    pd.testing.assert_frame_equal(difference.astype(int), expected, check_names=False)


def test_churn_wave_fires_its_alert_and_no_other(weekly_churn):
    alerts = weekly_churn.alerts(as_of=AFTER)
    assert set(zip(alerts.source, alerts.target, strict=True)) == {("active", "churned")}
    everyone = alerts[alerts["group"] == "all"].iloc[0]
    assert everyone.moved >= len(WEEKLY) and everyone.p_adjusted < weekly_churn.config.dynamics.alert_alpha
    print(f"Alert {everyone.as_of}: {everyone.message}\n  test: {everyone.test}")
    for as_of in snapshot_dates(START, BEFORE)[4:]:
        assert weekly_churn.alerts(as_of=as_of).empty


def test_win_back_wave_shows_in_the_matrix_exactly(plain, win_back):
    project, cohort = win_back
    assert len(cohort) >= 50
    before, after = _stage(project, BEFORE), _stage(project, AFTER)
    plain_after = _stage(plain, AFTER)
    # the cohort is reactivated; everybody else is where they are without the wave
    assert (after.loc[cohort] == "reactivated").all()
    others = after.index.difference(cohort)
    assert (after.loc[others] == plain_after.loc[others]).all()
    wave = project.transition_matrix("lifecycle", BEFORE, AFTER)
    base = plain.transition_matrix("lifecycle", BEFORE, AFTER)
    difference = wave.sub(base, fill_value=0)
    assert wave.loc["churned", "reactivated"] - base.loc["churned"].get("reactivated", 0) == len(cohort)
    expected = pd.DataFrame(0, index=difference.index, columns=difference.columns)
    expected.loc["churned", "reactivated"] = len(cohort)
    expected.loc["churned", "churned"] = -len(cohort)
    pd.testing.assert_frame_equal(difference.astype(int), expected, check_names=False)
    # rows still add up to the sizes of the source stages
    sizes = before.value_counts()
    sizes["(new)"] = len(after.index.difference(before.index))
    assert wave.sum(axis=1).to_dict() == sizes[sizes > 0].to_dict()


def test_win_back_wave_fires_its_alert_and_no_other(win_back):
    project, cohort = win_back
    alerts = project.alerts(as_of=AFTER)
    assert not alerts.empty
    top = alerts.iloc[0]
    assert (top.source, top.target) == ("churned", "reactivated")
    everyone = alerts[alerts["group"] == "all"]
    assert set(zip(everyone.source, everyone.target, strict=True)) == {("churned", "reactivated")}
    row = everyone.iloc[0]
    print(f"Alert {row.as_of}: {row.message}\n  test: {row.test}")
    assert row.moved >= len(cohort) and row.p_adjusted < project.config.dynamics.alert_alpha
    assert "z-test" in row.test and "Holm" in row.test
    # the periods before the wave are quiet
    for as_of in snapshot_dates(START, BEFORE)[4:]:
        assert project.alerts(as_of=as_of).empty


def test_slow_churn_wave_moves_the_cohort_and_nobody_else(plain, churn_wave):
    project, cohort = churn_wave
    assert len(cohort) >= 100
    dates = snapshot_dates(START, END)
    for as_of in dates:
        stage, plain_stage = _stage(project, as_of), _stage(plain, as_of)
        others = stage.index.difference(cohort)
        assert (stage.loc[others] == plain_stage.loc[others]).all(), as_of
        if as_of <= BEFORE:  # before the wave the cohort is where it would be anyway
            assert stage.reindex(cohort).equals(plain_stage.reindex(cohort)), as_of
    # the cohort members buying at the start leave 'active' once they are 1.6 rhythms late (a
    # few one-time buyers, measured with the 180-day floor, are not late enough by December)
    before, end = _stage(project, BEFORE), _stage(project, END)
    active = before.index[before == "active"].intersection(cohort)
    assert len(active) >= 50
    assert end.reindex(active).isin(["at_risk", "churned"]).mean() >= 0.95
    # so the half-year matrix differs from the plain one in the cohort's moves only
    moves = pd.crosstab(before.reindex(cohort).rename("source"), end.reindex(cohort).rename("target"))
    plain_moves = pd.crosstab(
        _stage(plain, BEFORE).reindex(cohort).rename("source"),
        _stage(plain, END).reindex(cohort).rename("target"),
    )
    difference = project.transition_matrix("lifecycle", BEFORE, END).sub(
        plain.transition_matrix("lifecycle", BEFORE, END), fill_value=0
    )
    explained = moves.sub(plain_moves, fill_value=0).reindex_like(difference).fillna(0)
    pd.testing.assert_frame_equal(difference.astype(int), explained.astype(int), check_names=False)
    assert difference.loc["active", ["at_risk", "churned"]].sum() >= 0.5 * len(active)


def test_forecast_beats_same_as_last_period(plain):
    errors = plain.forecast_backtest()
    assert len(errors) >= 8
    print(errors.to_string())
    means = errors.mean(numeric_only=True)
    assert means["mae_chain"] < means["mae_naive"] and means["mae_customer"] < means["mae_naive"]
    # each customer's history predicts their next stage better than their stage and tier alone
    assert means["log_loss_customer"] < means["log_loss_chain"]
    assert means["brier_customer"] < means["brier_chain"]
    assert plain.forecast_choice().model == "customer"

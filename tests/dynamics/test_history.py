"""Snapshots over time, membership history and migration, on generated data through Project."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

from microseg.dynamics.snapshots import snapshot_dates
from microseg.errors import MicrosegError
from microseg.project import Project
from microseg.warehouse.history import rebuild_history, update_history

#: a year of monthly snapshots of a 3,000-customer demo: a minute of work, so not in test-fast
pytestmark = pytest.mark.slow

START, END = dt.date(2025, 1, 1), dt.date(2025, 12, 31)
RULES = """
[segments]
rules = { big_spenders = "revenue > 400", app_users = "app_events_90d >= 3" }
"""


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    root = tmp_path_factory.mktemp("dynamics") / "demo"
    Project.create_demo(root, customers=3_000, seed=11)
    with (root / "microseg.toml").open("a") as f:
        f.write(RULES)
    project = Project(root)
    project.import_sources()
    result = project.backfill(START, END)
    yield project, result
    project.close()


def members(project: Project, kind: str, as_of: dt.date) -> pd.Series:
    return project.memberships(kind, as_of).set_index("customer_id")["segment_id"]


def test_snapshot_dates():
    assert snapshot_dates(dt.date(2024, 1, 31), dt.date(2024, 3, 30)) == [
        dt.date(2024, 1, 31),
        dt.date(2024, 2, 29),
    ]
    weeks = snapshot_dates(dt.date(2025, 1, 1), dt.date(2025, 1, 31), "week")
    assert weeks[-1] == dt.date(2025, 1, 31) and all(
        (b - a).days == 7 for a, b in zip(weeks, weeks[1:], strict=False)
    )
    with pytest.raises(ValueError, match="before the start"):
        snapshot_dates(END, START)


def test_backfill_makes_twelve_monthly_snapshots(history):
    project, result = history
    dates = snapshot_dates(START, END)
    assert len(dates) == 12 and result.computed == dates
    stored = project.snapshots()
    stored["as_of"] = stored["as_of"].dt.date
    assert list(stored["as_of"]) == dates
    # each snapshot only knows the customers and events up to its date
    assert stored["events"].is_monotonic_increasing and stored["customers"].is_monotonic_increasing
    events = project.warehouse.fetch("SELECT count(*) FROM events WHERE ts < DATE '2025-07-01'")[0][0]
    assert stored.set_index("as_of").loc[dt.date(2025, 6, 30), "events"] == events
    for date in (dates[0], dates[-1]):
        assert len(members(project, "lifecycle", date)) == stored.set_index("as_of").loc[date, "customers"]


def test_backfill_again_reuses_unchanged_snapshots(history):
    project, _ = history
    again = project.backfill(START, END)
    assert again.computed == [] and len(again.reused) == 12
    # new events after a date leave that snapshot as it is, and only later ones are recomputed
    wh = project.warehouse
    wh.sql(
        "INSERT INTO events SELECT * REPLACE ('EXTRA' || event_id AS event_id, ts + INTERVAL 1 DAY AS ts) "
        "FROM events WHERE ts >= TIMESTAMP '2025-11-15' AND ts < TIMESTAMP '2025-11-20'"
    )
    try:
        partly = project.backfill(START, END)
        assert partly.computed == [dt.date(2025, 11, 30), dt.date(2025, 12, 31)]
    finally:
        wh.sql("DELETE FROM events WHERE event_id LIKE 'EXTRA%'")
        project.backfill(START, END)


def test_history_intervals_agree_with_every_snapshot(history):
    project, _ = history
    dates = snapshot_dates(START, END)
    for kind in ("lifecycle", "behaviour", "rule"):
        for date in (dates[0], dates[5], dates[5] + dt.timedelta(days=10), dates[-1]):
            snapshot = max(d for d in dates if d <= date)
            stored = project.memberships(kind, snapshot)
            for segment in stored["segment_id"].unique()[:4]:
                expected = set(stored.loc[stored.segment_id == segment, "customer_id"])
                assert set(project.members_on(segment, date, kind).customer_id) == expected, (kind, segment)
    # built snapshot by snapshot, the history equals one rebuilt from all snapshots at once
    wh = project.warehouse
    appended = wh.fetch_df("SELECT * FROM segment_history ORDER BY ALL")
    rebuild_history(wh)
    rebuilt = wh.fetch_df("SELECT * FROM segment_history ORDER BY ALL")
    pd.testing.assert_frame_equal(appended, rebuilt)
    # the latest snapshot computed again takes back what it wrote and appends it anew
    assert update_history(wh, END, recomputed=True) == "appended"
    pd.testing.assert_frame_equal(wh.fetch_df("SELECT * FROM segment_history ORDER BY ALL"), rebuilt)
    assert update_history(wh, dates[-2], recomputed=True) == "rebuilt"


def test_customer_history_and_journey(history):
    project, _ = history
    stage = {d: members(project, "lifecycle", d) for d in snapshot_dates(START, END)}
    movers = [
        c for c in stage[END].index if stage[dt.date(2025, 1, 31)].get(c, stage[END][c]) != stage[END][c]
    ]
    customer = movers[0]
    journey = project.journey(customer)
    assert len(journey) >= 2
    # each stay's segment is the customer's stage on its first date, and stays follow each other
    for row in journey.itertuples():
        assert stage[row.valid_from.date()][customer] == row.segment_id
    assert (journey["valid_from"].iloc[1:].to_numpy() == journey["valid_to"].iloc[:-1].to_numpy()).all()
    assert pd.isna(journey["valid_to"].iloc[-1]) and journey["segment_id"].iloc[-1] == stage[END][customer]
    assert journey["snapshots"].sum() == sum(customer in s.index for s in stage.values())
    everything = project.customer_history(customer)
    assert set(everything["kind"]) >= {"lifecycle", "behaviour", "clv_tier"}
    with pytest.raises(MicrosegError, match="no membership history"):
        project.journey("nobody")


def test_transition_rows_add_up_to_segment_sizes(history):
    project, _ = history
    start, end = dt.date(2025, 6, 30), dt.date(2025, 9, 30)
    for kind in ("lifecycle", "clv_tier", "behaviour", "micro"):
        matrix = project.transition_matrix(kind, start, end)
        sizes = members(project, kind, start).value_counts()
        rows = matrix.drop(index="(new)", errors="ignore").sum(axis=1)
        assert rows.sort_index().to_dict() == sizes.sort_index().to_dict(), kind
        columns = matrix.sum(axis=0).drop("(gone)", errors="ignore")
        assert (
            columns.sort_index().to_dict()
            == members(project, kind, end).value_counts().sort_index().to_dict()
        )
    # the matrix counts exactly the customers who made each move
    a, b = members(project, "lifecycle", start), members(project, "lifecycle", end)
    moved = ((a == "active") & (b.reindex(a.index) == "at_risk")).sum()
    assert project.transition_matrix("lifecycle", start, end).loc["active", "at_risk"] == moved
    rates = project.transition_matrix("lifecycle", start, end, value="rate")
    assert rates.sum(axis=1).to_numpy() == pytest.approx(1.0)


def test_transitions_carry_value_and_revenue(history):
    project, _ = history
    start, end = dt.date(2025, 11, 30), END
    moves = project.transitions("lifecycle", start, end)
    values = project.customer_values(start).set_index("customer_id")["clv"]
    a = members(project, "lifecycle", start)
    stayed = a[a == "active"].index.intersection(
        members(project, "lifecycle", end)[lambda s: s == "active"].index
    )
    row = moves[(moves.source == "active") & (moves.target == "active")].iloc[0]
    assert row.clv_from == pytest.approx(values.reindex(stayed).sum())
    s1 = project.customer_summary(start).set_index("customer_id")["net_revenue"].astype(float)
    s2 = project.customer_summary(end).set_index("customer_id")["net_revenue"].astype(float)
    assert row.revenue == pytest.approx((s2.reindex(stayed) - s1.reindex(stayed).fillna(0)).sum())
    assert moves.revenue.sum() == pytest.approx(s2.sum() - s1.sum())


def test_rule_segments_are_tracked_one_by_one(history):
    project, _ = history
    start, end = dt.date(2025, 10, 31), END
    matrix = project.transition_matrix("rule", start, end)
    a, b = project.memberships("rule", start), project.memberships("rule", end)
    for segment in ("big_spenders", "app_users"):
        before = set(a[a.segment_id == segment].customer_id)
        after = set(b[b.segment_id == segment].customer_id)
        block = matrix.loc[segment]
        assert block.loc[segment, segment] == len(before & after)
        assert block.loc[segment, "(out)"] == len(before - after)
        assert block.loc["(out)", segment] == len(after - before)
        assert block.loc[segment].sum() == len(before)


def test_flows_and_typical_paths(history):
    project, _ = history
    flows = project.flows("lifecycle")
    assert flows["to_date"].nunique() == 11
    first = flows[pd.to_datetime(flows.to_date) == pd.Timestamp(2025, 2, 28)]
    assert first.groupby("source").customers.sum().drop("(new)").to_dict() == (
        members(project, "lifecycle", dt.date(2025, 1, 31)).value_counts().to_dict()
    )
    paths = project.typical_paths(top=50)
    assert paths.customers.is_monotonic_decreasing
    assert paths.customers.sum() <= len(members(project, "lifecycle", END))
    # a path is the customer's stages over the snapshots with repeats collapsed
    stage = pd.DataFrame({d: members(project, "lifecycle", d) for d in snapshot_dates(START, END)})
    collapsed = stage.apply(
        lambda r: " -> ".join(v for i, v in enumerate(r.dropna()) if i == 0 or v != r.dropna().iloc[i - 1]),
        axis=1,
    )
    top = paths.iloc[0]
    assert (collapsed == top.path).sum() == top.customers


def test_no_leakage_from_events_after_the_snapshot_date(history, tmp_path):
    """Changing or adding events after a date changes nothing in that date's snapshot."""
    project, _ = history
    as_of = dt.date(2025, 6, 30)
    root = tmp_path / "changed"
    shutil.copytree(project.root / "data", root / "data")
    shutil.copy(project.root / "microseg.toml", root / "microseg.toml")
    cutoff = pd.Timestamp(as_of + dt.timedelta(days=1))
    for path in (root / "data").glob("*-0*.parquet"):
        table = pq.read_table(path).to_pandas()
        later = table["ts"] >= cutoff
        changed = table[~later | (table.index % 3 == 0)].copy()  # two thirds of later events gone
        if "unit_price" in changed:
            prices = changed["ts"] >= cutoff
            changed.loc[prices, "unit_price"] = changed.loc[prices, "unit_price"] * 10
        changed.to_parquet(path, index=False)
    other = Project(root)
    try:
        other.import_sources()
        assert other.warehouse.count("events") < project.warehouse.count("events")
        other.run(as_of)
        fresh_root = tmp_path / "fresh"
        shutil.copytree(project.root / "data", fresh_root / "data")
        shutil.copy(project.root / "microseg.toml", fresh_root / "microseg.toml")
        fresh = Project(fresh_root)
        try:
            fresh.import_sources()
            fresh.run(as_of)
            for table in (
                "customer_summary",
                "customer_values",
                "customer_profiles",
                "segment_memberships",
                "segments",
            ):
                query = f"SELECT * EXCLUDE (as_of) FROM {table} WHERE as_of = ? ORDER BY ALL"
                pd.testing.assert_frame_equal(
                    fresh.warehouse.fetch_df(query, [as_of]),
                    other.warehouse.fetch_df(query, [as_of]),
                    obj=table,
                )
        finally:
            fresh.close()
    finally:
        other.close()


def test_migration_needs_two_snapshots(tmp_path):
    project = Project.init(tmp_path / "empty")
    with pytest.raises(MicrosegError, match="two snapshots"):
        project.transition_matrix()

"""A run replaces the results of its date all at once or not at all.

The run is killed (SIGKILL, in a child process) at every step and fails in-process in the middle;
each time the results of that date stay exactly what the previous run stored. Rules are checked
before the first step, and date columns can be used in rules.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from microseg import Project
from microseg.errors import ConfigError, MicrosegError

AS_OF = dt.date(2025, 12, 31)
#: Every table a run writes for its date, and the table it keeps across dates.
DATED = (
    "customer_summary",
    "customer_values",
    "model_fits",
    "customer_profiles",
    "customer_categories",
    "segment_memberships",
    "segments",
    "segment_changes",
    "snapshots",
)
KEPT = ("segment_history", "segment_registry")


def _stored(project: Project) -> dict[str, pd.DataFrame]:
    """Everything a run of ``AS_OF`` wrote, sorted, without the snapshot's timing columns."""
    wh = project.warehouse
    out = {}
    for table in (*DATED, *KEPT):
        where = "WHERE as_of = ?" if table in DATED else ""
        frame = wh.fetch_df(f"SELECT * FROM {table} {where}", [AS_OF] if where else [])
        frame = frame.drop(columns=[c for c in ("computed_at", "seconds") if c in frame.columns])
        out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def _assert_same(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, check_dtype=False, obj=table)


@pytest.fixture(scope="module")
def changed_project(tmp_path_factory):
    """A demo project run as of AS_OF, then given more events so that a new run would change
    every result of that date."""
    root = tmp_path_factory.mktemp("atomic")
    project = Project.create_demo(root, customers=600, seed=7, as_of=AS_OF, years=2.0)
    project.import_sources()
    project.run(AS_OF)
    extra = root / "data" / "late_orders.csv"
    rows = ["customer_id,ts,order_id,product_id,quantity,unit_price"]
    rows += [f"C{n:08d},2025-12-30 10:00:00,LATE{n},P0001,3,19.99" for n in range(1, 400, 3)]
    extra.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with open(root / "microseg.toml", "a", encoding="utf-8") as config:
        config.write('\n[sources.late]\npath = "data/late_orders.csv"\nevent_type = "purchase"\n')
    project.close()
    project = Project(root)
    project.import_sources(["late"])
    before = _stored(project)
    project.close()
    return root, before


def _kill_run_at(root, step: str) -> int:
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal
        from microseg import Project

        def on_step(name, i, n):
            if name == {step!r}:
                os.kill(os.getpid(), signal.SIGKILL)

        Project({str(root)!r}).run(dt.date({AS_OF.year}, {AS_OF.month}, {AS_OF.day}), on_step=on_step)
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300).returncode


@pytest.mark.slow
@pytest.mark.parametrize("step", ["customer values", "segments", "history"])
def test_a_run_killed_at_any_step_leaves_the_previous_results_whole(changed_project, step):
    root, before = changed_project
    assert _kill_run_at(root, step) == -9
    with Project(root) as project:
        _assert_same(before, _stored(project))


@pytest.mark.slow
def test_a_run_killed_after_it_finished_keeps_the_new_results(changed_project, tmp_path):
    root, before = changed_project
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
    assert _kill_run_at(copy, "done") == -9
    with Project(copy) as project:
        after = _stored(project)
        assert not after["customer_summary"].equals(before["customer_summary"])
        late = project.customer_summary(AS_OF)
        assert (
            late.set_index("customer_id").loc["C00000001", "orders"]
            > before["customer_summary"].set_index("customer_id").loc["C00000001", "orders"]
        )
        dates = project.snapshots()["as_of"].dt.date.tolist()
        assert dates == [AS_OF]


def test_a_failure_in_the_middle_of_a_run_changes_nothing(changed_project, tmp_path, monkeypatch):
    root, before = changed_project
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(root), str(copy)], check=True)

    def broken(*args, **kwargs):
        raise RuntimeError("clustering failed")

    monkeypatch.setattr("microseg.pipeline.segment_customers", broken)
    with Project(copy) as project:
        with pytest.raises(RuntimeError, match="clustering failed"):
            project.run(AS_OF)
        _assert_same(before, _stored(project))


def test_a_bad_rule_stops_the_run_before_the_first_step(changed_project, tmp_path):
    root, before = changed_project
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
    with open(copy / "microseg.toml", "a", encoding="utf-8") as config:
        config.write('\n[segments.rules]\nbig = "clv > 100"\nbroken = "lifetime_spend > 100"\n')
    steps = []
    with Project(copy) as project:
        with pytest.raises(ConfigError, match="segments.rules.broken") as error:
            project.run(AS_OF, on_step=lambda name, i, n: steps.append(name))
        assert "lifetime_spend" in str(error.value)
        assert steps == []
        _assert_same(before, _stored(project))


def test_rules_can_compare_dates(changed_project, tmp_path):
    root, _ = changed_project
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(root), str(copy)], check=True)
    with open(copy / "microseg.toml", "a", encoding="utf-8") as config:
        config.write(
            "\n[segments.rules]\n"
            "joined_2025 = \"signup_date >= date '2025-01-01'\"\n"
            "recent_buyers = \"last_purchase > '2025-12-01' and signup_date is not null\"\n"
        )
    with Project(copy) as project:
        project.run(AS_OF)
        members = project.memberships("rule")
        profiles = project.warehouse.fetch_df(
            "SELECT customer_id, signup_date, last_purchase FROM customer_profiles WHERE as_of = ?", [AS_OF]
        )
    signed = pd.to_datetime(profiles["signup_date"])
    bought = pd.to_datetime(profiles["last_purchase"])
    expected = {
        "joined_2025": set(profiles.loc[signed >= "2025-01-01", "customer_id"]),
        "recent_buyers": set(profiles.loc[(bought > "2025-12-01") & signed.notna(), "customer_id"]),
    }
    for rule, customers in expected.items():
        assert customers, rule  # the demo has such customers: the comparison is tested on real rows
        assert set(members.loc[members["segment_id"] == rule, "customer_id"]) == customers


def test_an_empty_warehouse_says_so(tmp_path):
    Project.init(tmp_path)
    (tmp_path / "microseg.toml").write_text('[project]\nanalysis_date = "2025-12-31"\n', encoding="utf-8")
    with Project(tmp_path) as project, pytest.raises(MicrosegError, match="run `microseg import` first"):
        project.run()

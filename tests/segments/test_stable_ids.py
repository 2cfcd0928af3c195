"""Segment ids that stay put: a demo backfill of six month ends, run the way `microseg demo` runs it
(the latest date first, then the month ends from the oldest), keeps every customer whose inputs did
not change in their demographic segment, and micro-segments follow their layers."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from microseg.project import Project

pytestmark = pytest.mark.slow

END = dt.date(2025, 12, 31)
START = dt.date(2025, 7, 1)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory):
    root = tmp_path_factory.mktemp("stable") / "demo"
    project = Project.create_demo(root, customers=10_000, seed=42)
    project.import_sources()
    project.run()  # the analysis date first, as `microseg demo` does
    project.backfill(START, END)
    yield project
    project.close()


def _layer(project: Project, kind: str, as_of: dt.date) -> pd.Series:
    return project.memberships(kind, as_of).set_index("customer_id")["segment_id"]


def _kept(project: Project, kind: str, before: dt.date, after: dt.date) -> float:
    """Share of the customers of both snapshots who have the same id of ``kind`` in both."""
    a, b = _layer(project, kind, before), _layer(project, kind, after)
    both = a.index.intersection(b.index)
    return float((a[both] == b[both]).mean())


def test_demographic_ids_are_stable_and_micro_ids_follow(backfilled):
    dates = list(backfilled.snapshots()["as_of"].dt.date)
    assert dates[0] == dt.date(2025, 7, 31) and dates[-1] == END and len(dates) == 6
    for before, after in zip(dates[:-1], dates[1:], strict=True):
        # nobody's planted age, gender, region or acquisition channel changes in the demo
        kept = {
            k: _kept(backfilled, k, before, after) for k in ("lifecycle", "behaviour", "demographic", "micro")
        }
        assert kept["demographic"] >= 0.99, (after, kept)
        assert kept["micro"] >= kept["lifecycle"] * kept["behaviour"] * kept["demographic"], (after, kept)


def test_demographic_ids_do_not_carry_the_stage(backfilled):
    demographic = _layer(backfilled, "demographic", END)
    assert demographic.str.fullmatch(r"d\d+").all(), demographic.unique()[:5]
    micro = _layer(backfilled, "micro", END)
    behaviour = _layer(backfilled, "behaviour", END).reindex(micro.index)
    assert (micro == behaviour + "." + demographic.reindex(micro.index)).all()


def test_the_latest_snapshot_follows_its_predecessor(backfilled):
    """The analysis date was computed first, without history; once the earlier month ends exist
    it is recomputed after them (its lineage changed), and its models come from 30 November."""
    models = backfilled.segment_models(END)
    assert set(models["status"]) == {"reused"}, models[["kind", "scope", "status", "reason"]]
    assert (models["fitted_as_of"] < pd.Timestamp(END)).all()
    first = backfilled.segment_models(dt.date(2025, 7, 31))
    assert set(first["status"]) == {"refitted"}
    assert first["reason"].str.contains("no earlier model").all()


def test_no_alert_fires_on_a_relabel(backfilled):
    """A transition alert on a clustered layer is a real movement: its customers' stage or
    clustered inputs changed, never an id handed to unchanged customers."""
    for kind in ("behaviour", "demographic", "micro"):
        alerts = backfilled.alerts(kind, None)
        same_stage = (
            alerts[
                alerts["source"].astype(str).str.split(".").str[0]
                == alerts["target"].astype(str).str.split(".").str[0]
            ]
            if kind != "demographic"
            else alerts
        )
        assert same_stage.empty, same_stage.to_string()

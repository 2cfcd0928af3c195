"""The layered segmentation on generated data with planted truth, end to end through Project."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from microseg.cli import main
from microseg.project import Project
from microseg.segments.labels import MAX_CONTRAST_WORDS
from microseg.segments.personas import MAX_LABEL_WORDS

AS_OF = dt.date(2025, 12, 31)
SETTINGS = """
[segments]
seed = 0
rules = { vip_at_risk = "clv > 150 and stage = 'at_risk'", young_app_fans = "age < 35 and app_events_90d >= 3", pricing_lookers = "visited_pricing_page_30d and stage in ('active', 'new')" }
composites = { new_highly_engaged = { tenure = ["0-3m"], engagement = ["high"] } }
page_flags = { pricing_page = "/pricing" }
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("segments") / "demo"
    project = Project.create_demo(root, customers=20_000, seed=5)
    with (root / "microseg.toml").open("a") as f:
        f.write(SETTINGS)
    project = Project(root)
    project.import_sources()
    project.run()
    yield project
    project.close()


@pytest.fixture(scope="module")
def truth(demo):
    return pd.read_parquet(demo.root / "data" / "truth.parquet").set_index("customer_id")


def stages(project: Project, as_of=None) -> pd.Series:
    return project.memberships("lifecycle", as_of).set_index("customer_id")["segment_id"]


def test_lifecycle_stages_match_the_planted_truth(demo, truth):
    stage = stages(demo)
    agreement = (stage == truth["stage"].reindex(stage.index)).mean()
    assert len(stage) == 20_000
    assert agreement >= 0.95, agreement


def test_behaviour_clusters_recover_the_planted_groups(demo, truth):
    stage = stages(demo)
    cluster = demo.memberships("behaviour").set_index("customer_id")["segment_id"]
    group = truth["group"].reindex(cluster.index)
    for name in ("active", "at_risk", "reactivated"):  # stages with a buying history to learn from
        ids = stage.index[stage == name]
        assert adjusted_rand_score(group[ids], cluster[ids]) >= 0.9, name
        assert cluster[ids].nunique() == 5  # k chosen by the stated criterion is the planted one
    buyers = stage.index[stage != "prospect"]
    overall = adjusted_rand_score(stage[buyers] + "/" + group[buyers], cluster[buyers])
    assert overall >= 0.9, overall


def test_every_customer_is_in_one_segment_of_each_layer(demo):
    memberships = demo.memberships()
    segments = demo.segments()
    customers = demo.status()["customers"]
    for kind in (
        "lifecycle",
        "clv_tier",
        "rfm_tier",
        "tenure_tier",
        "engagement_tier",
        "composite_code",
        "behaviour",
        "demographic",
        "micro",
    ):
        layer = memberships[memberships.kind == kind]
        assert len(layer) == customers and layer.customer_id.is_unique, kind
        cards = segments[segments.kind == kind]
        assert cards["size"].sum() == customers, kind
        assert cards["share"].sum() == pytest.approx(1.0), kind
        assert cards["revenue_share"].sum() == pytest.approx(1.0), kind
        assert cards.segment_id.is_unique and cards.label.is_unique, kind
        counts = layer.segment_id.value_counts()
        assert (cards.set_index("segment_id")["size"] == counts.reindex(cards.segment_id)).all(), kind


def test_micro_segment_is_stage_behaviour_demographic(demo):
    m = demo.memberships()
    m = m[m.kind.isin(["lifecycle", "behaviour", "demographic", "micro"])]
    m = m.pivot(index="customer_id", columns="kind", values="segment_id")
    expected = m["behaviour"] + "." + m["demographic"].str.split(".").str[-1]
    assert (m["micro"] == expected).all()
    assert (m["behaviour"].str.split(".").str[0] == m["lifecycle"]).all()


def test_tiers_composites_and_rules(demo):
    wh = demo.warehouse
    profile = wh.fetch_df("SELECT * FROM customer_profiles").set_index("customer_id")
    values = wh.fetch_df("SELECT customer_id, clv FROM customer_values").set_index("customer_id")
    profile = profile.join(values)
    layers = ("clv_tier", "rfm_tier", "tenure_tier", "engagement_tier")
    assert (profile["composite_code"] == profile[list(layers)].agg("/".join, axis=1)).all()
    buyers = profile[profile.clv.notna()]
    shares = buyers.clv_tier.value_counts(normalize=True)
    assert shares["top_1"] == pytest.approx(0.01, abs=0.002) and shares["top_5"] == pytest.approx(
        0.04, abs=0.004
    )
    assert buyers[buyers.clv_tier == "top_1"].clv.min() >= buyers[buyers.clv_tier == "rest"].clv.max()
    m = demo.memberships()
    composite = set(m[(m.kind == "composite") & (m.segment_id == "new_highly_engaged")].customer_id)
    expected = set(profile.index[(profile.tenure_tier == "0-3m") & (profile.engagement_tier == "high")])
    assert composite == expected and composite
    rule = set(m[(m.kind == "rule") & (m.segment_id == "vip_at_risk")].customer_id)
    assert rule == set(profile.index[(profile.clv > 150) & (profile.stage == "at_risk")]) and rule
    fans = set(m[(m.kind == "rule") & (m.segment_id == "young_app_fans")].customer_id)
    assert fans == set(profile.index[(profile.age < 35) & (profile.app_events_90d >= 3)]) and fans
    # rule segments overlap: their shares are of all customers and of all revenue
    card = demo.segments("rule").set_index("segment_id").loc["vip_at_risk"]
    assert card["size"] == len(rule)
    assert card["share"] == pytest.approx(len(rule) / len(profile))
    assert card["revenue_share"] == pytest.approx(profile.revenue[list(rule)].sum() / profile.revenue.sum())


def test_personas_describe_what_sets_segments_apart(demo, truth):
    segments = demo.segments("behaviour")
    members = demo.memberships("behaviour").set_index("customer_id")["segment_id"]
    for row in segments.itertuples():
        card = json.loads(row.card)
        # a label of at most five words, and a contrast when it would read like another's
        assert card["label"] == row.label and len(row.label.split()) <= MAX_LABEL_WORDS + MAX_CONTRAST_WORDS
        assert card["distinguishing"], row.segment_id
    # the active segment of planted bargain hunters is labelled as such
    group = truth["group"].reindex(members.index)
    active = members[members.str.startswith("active.")]
    bargain = group[active.index].eq("bargain_hunters").groupby(active).mean().idxmax()
    label = segments.set_index("segment_id").loc[bargain, "label"]
    assert "grocery" in label.lower() or "bargain" in label.lower(), label
    card = demo.customer_card(members.index[0])
    assert card["stage"] and card["segments"]
    # clustered segments are compared with their own stage: the base mean is the stage's mean
    profile = demo.warehouse.fetch_df("SELECT * FROM customer_profiles").set_index("customer_id")
    card = json.loads(segments.set_index("segment_id").loc[bargain, "card"])
    assert card["base"] == "all active customers"
    numeric = [d for d in card["distinguishing"] if d["kind"] == "numeric" and d["feature"] in profile]
    assert numeric
    for d in numeric:
        stage_mean = profile.loc[profile.stage == "active", d["feature"]].astype(float).mean()
        assert d["base_mean"] == pytest.approx(stage_mean), d["feature"]


@pytest.mark.slow
def test_refit_with_another_seed_keeps_segment_ids(demo, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(demo.root, root)
    before = demo.memberships("behaviour").set_index("customer_id")["segment_id"]
    (root / "microseg.toml").write_text((root / "microseg.toml").read_text().replace("seed = 0", "seed = 7"))
    with Project(root) as refit:
        refit.run(AS_OF)
        after = refit.memberships("behaviour").set_index("customer_id")["segment_id"]
        changes = refit.segment_changes()
    same = (after.reindex(before.index) == before).mean()
    assert same >= 0.9, same
    assert set(changes.event) <= {"kept", "merged", "split", "new", "vanished"}
    assert (changes.event == "kept").sum() >= 25


@pytest.mark.slow
def test_a_month_later_keeps_segment_ids(demo, truth, tmp_path):
    root = tmp_path / "later"
    shutil.copytree(demo.root, root)
    earlier = AS_OF - dt.timedelta(days=30)
    with Project(root) as project:
        project.run(earlier)
        project.run(AS_OF)
        before = project.memberships("behaviour", earlier).set_index("customer_id")["segment_id"]
        after = project.memberships("behaviour", AS_OF).set_index("customer_id")["segment_id"]
        stage_before, stage_after = stages(project, earlier), stages(project, AS_OF)
    # customers whose situation did not change: same stage on both dates (planted groups never change)
    steady = stage_before.index[stage_before == stage_after.reindex(stage_before.index)]
    same = (after.reindex(steady) == before.reindex(steady)).mean()
    assert same >= 0.9, same


def test_segment_commands(demo, capsys):
    p = ["-p", str(demo.root)]
    assert main([*p, "segments"]) == 0
    assert "behaviour" in capsys.readouterr().out
    assert main([*p, "segments", "--kind", "lifecycle"]) == 0
    out = capsys.readouterr().out
    assert "Active customers" in out and "Churned customers" in out
    segment = demo.segments("behaviour").iloc[0]
    assert main([*p, "persona", segment.segment_id]) == 0
    out = capsys.readouterr().out
    assert segment.label.split()[0] in out and "what sets them apart" in out
    customer = demo.memberships("lifecycle").customer_id.iloc[0]
    assert main([*p, "persona", "--customer", customer]) == 0
    assert f"Customer {customer}" in capsys.readouterr().out
    assert main([*p, "persona", "nope.b9"]) == 1
    assert "no segment 'nope.b9'" in capsys.readouterr().err


def test_segment_ids_are_never_reused(demo):
    registry = demo.warehouse.fetch_df("SELECT * FROM segment_registry")
    current = demo.segments()
    clustered = current[current.kind.isin(["behaviour", "demographic"])]
    assert set(clustered.segment_id) <= set(registry.segment_id)
    assert registry.segment_id.is_unique


def test_page_flags_feed_rule_segments(demo):
    viewers = demo.warehouse.fetch_df(
        "SELECT DISTINCT customer_id FROM events WHERE event_type = 'page_view' AND url LIKE '%/pricing%' "
        "AND CAST(ts AS DATE) > DATE '2025-12-31' - INTERVAL 30 DAY AND customer_id IS NOT NULL"
    )
    stage = stages(demo)
    expected = set(viewers.customer_id) & set(stage.index[stage.isin(["active", "new"])])
    m = demo.memberships("rule")
    assert set(m[m.segment_id == "pricing_lookers"].customer_id) == expected and expected

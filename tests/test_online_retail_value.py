"""Online Retail: stages and the value model on a log whose fit finds almost no dropout.

The BG/NBD fit of this file gives a = 0.0034, b = 6.75 (SE 22.4): a/(a+b) = 0.0005, an interval
that reaches zero. P(alive) is then near 1 for everyone while the rhythm rules call hundreds of
customers lost; the run must say so, the stages must not lean on P(alive), and every lost or
lapsing segment whose P(alive) does not mark it must say why on its card.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from microseg.cli import main, state
from microseg.models.lifecycle import LifecycleModel
from microseg.project import Project
from tests.conftest import shared_file
from tests.test_online_retail import CONFIG

pytestmark = pytest.mark.realdata

LAPSED_WORDS = re.compile(r"\b(?:lost|lapsing|churned|at-risk|at risk)\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    path = shared_file("online_retail_2010_2011.parquet")
    root = tmp_path_factory.mktemp("online-retail-value")
    (root / "microseg.toml").write_text(CONFIG.format(path=path))
    project = Project(root)
    project.import_sources()
    result = project.run()
    yield project, result
    project.close()


def test_run_warns_that_dropout_is_not_identifiable(retail):
    project, result = retail
    assert result.dropout_identified is False
    (warning,) = [w for w in result.warnings if "cannot tell whether customers leave" in w]
    assert "consistent with nobody leaving" in warning and "ignore P(alive)" in warning
    chosen = project.value_models().query("status == 'chosen'")
    assert len(chosen) == 1 and not chosen.dropout_identified.item()
    a_b = project.model_fits().query("model == @chosen.model.item()").set_index("parameter").estimate
    assert chosen.dropout.item() == pytest.approx(a_b["a"] / (a_b["a"] + a_b["b"]))
    assert chosen.dropout.item() - 1.96 * chosen.dropout_se.item() <= 0


def test_the_model_choice_is_stored_and_explained(retail):
    project, result = retail
    models = project.value_models()
    assert set(models.model) == {"BGNBD", "ParetoNBD", "MBGNBD", "GammaGamma"}
    chosen = models.query("status == 'chosen'")
    assert result.value_model == "BG/NBD" and chosen.model.item() == "BGNBD"
    # no model finds dropout in the calibration period: the check falls back to the likelihood
    assert result.value_model_reason.startswith(
        "no holdout check (no model could be fitted on the calibration"
    )
    assert "chosen by likelihood on all data" in result.value_model_reason
    failed = models.query("status == 'failed'")
    assert failed.reason.str.len().gt(0).all()


def test_stages_follow_rhythm_only(retail):
    """With dropout unidentified, the stages are exactly the rhythm rules without P(alive)."""
    project, _ = retail
    profile = project.warehouse.fetch_df(
        "SELECT p.*, v.p_alive FROM customer_profiles p LEFT JOIN customer_values v "
        "USING (customer_id, as_of) ORDER BY customer_id"
    )
    profile = profile[profile.transactions > 0]  # the buyers: P(alive) concerns them only
    stages = project.memberships("lifecycle").set_index("customer_id").segment_id
    stages = stages.reindex(profile.customer_id).to_numpy()
    rhythm_only = LifecycleModel(at_risk_p_alive=None, churned_p_alive=None).fit(profile).predict(profile)
    assert (stages == rhythm_only).all()
    assert set(stages) == {"new", "active", "at_risk", "churned", "reactivated"}


def stage_table(project: Project) -> pd.DataFrame:
    frame = project.memberships("lifecycle").merge(project.customer_values(), on="customer_id", how="left")
    return frame.groupby("segment_id").agg(
        customers=("customer_id", "size"), mean_p_alive=("p_alive", "mean"), mean_clv=("clv", "mean")
    )


def test_lapsed_segments_agree_with_the_value_model_or_say_why(retail):
    project, result = retail
    stages = stage_table(project)
    print(stages.round(4).to_string())
    active = stages.loc["active", "mean_p_alive"]
    segments = project.segments()
    lapsed = segments[segments.label.str.contains(LAPSED_WORDS)]
    assert len(lapsed) >= 10
    unexplained = []
    for row in lapsed.itertuples():
        card = json.loads(row.card)
        notes = card.get("notes") or []
        if notes:
            assert "near 1 for everyone" in notes[0] and "own buying rhythm" in notes[0], row.label
            continue
        mix = card.get("stage_mix") or {}
        mostly_lapsed = sum(mix.get(stage, 0.0) for stage in ("at_risk", "churned")) > 0.5
        p_alive = card.get("mean_p_alive")
        if mostly_lapsed or (p_alive is not None and p_alive > active):
            unexplained.append(row.label)
    assert not unexplained, unexplained
    # the stage table: lost and lapsing stages are as "alive" as the active one, and the run says so
    assert stages.loc["churned", "mean_p_alive"] > 0.99 and stages.loc["at_risk", "mean_p_alive"] > 0.99
    (warning,) = [w for w in result.warnings if w.startswith("Lifecycle stages and the value model disagree")]
    assert f"churned customers ({stages.loc['churned', 'customers']:,})" in warning


def test_persona_card_shows_the_note(retail, capsys):
    project, _ = retail
    state.debug = False
    assert main(["-p", str(project.root), "persona", "churned", "--kind", "lifecycle"]) == 0
    out = capsys.readouterr().out
    assert "note: Mean P(alive)" in " ".join(out.split())
    assert "finds almost no dropout" in " ".join(out.split())


def test_run_command_says_the_model_and_the_clv_count(retail, capsys):
    project, _ = retail
    state.debug = False
    assert main(["-p", str(project.root), "run"]) == 0
    captured = capsys.readouterr()
    out, err = " ".join(captured.out.split()), " ".join(captured.err.split())
    values = project.customer_values()
    with_clv = int(np.isfinite(values.clv).sum())
    assert with_clv == len(values) == 4_339
    assert f"4,372 customers, 4,339 with purchases, {with_clv:,} with a CLV" in out
    assert "Value model: BG/NBD, no holdout check" in out
    assert "Warning: BG/NBD cannot tell whether customers leave" in err


def test_validate_says_that_no_model_can_be_checked(retail):
    """No calibration period of this file shows dropout: every model fails there, and the
    check shows the actual counts alone instead of failing."""
    project, _ = retail
    check = project.validate_clv()
    assert check.holdout_days == 124 and check.calibration_end.isoformat() == "2011-08-07"
    assert check.scores.error.notna().all() and check.chosen is None
    assert list(check.by_frequency.columns) == ["customers", "actual"]
    assert check.by_frequency.customers.sum() == check.customers == 3_196
    holdout = check.tracking[check.tracking.part == "holdout"]
    assert holdout.actual.sum() == 5_460
    assert "No model could be fitted on this calibration period" in check.summary()[-1]

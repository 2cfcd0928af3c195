"""Online Retail: stages and the value model on a log that shows no dropout.

No model with dropout can be fitted on the calibration period of this file (the likelihood keeps
rising as dropout goes to 0), and the BG/NBD fit on all of it gives a = 0.0034, b = 6.75 (SE
22.4): a/(a+b) = 0.0005, an interval that reaches zero. The value model is then the NBD, where
nobody leaves: P(alive) is 1 for everyone while the rhythm rules call hundreds of customers lost;
the run must say so, the stages must not lean on P(alive), and every lost or lapsing segment
whose P(alive) does not mark it must say why on its card.
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

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

LAPSED_WORDS = re.compile(r"\b(?:lost|lapsing|churned|at-risk|at risk)\b", re.IGNORECASE)


@pytest.fixture
def retail(retail_run):
    return retail_run


def test_run_warns_that_nobody_leaves_in_the_value_model(retail):
    project, result = retail
    assert result.dropout_identified is False
    (warning,) = [w for w in result.warnings if w.startswith("The value model is the NBD model")]
    assert warning.startswith("The value model is the NBD model: nobody leaves in this data; P(alive) is not")
    assert "ignore P(alive)" in warning
    chosen = project.value_models().query("status == 'chosen'")
    assert len(chosen) == 1 and not chosen.dropout_identified.item()
    assert chosen.dropout.item() == 0.0 and pd.isna(chosen.dropout_se.item())
    assert (project.customer_values().p_alive == 1.0).all()
    fits = project.model_fits().query("model == 'NBD'").set_index("parameter")
    assert list(fits.index) == ["alpha", "r"] and (fits.se > 0).all()


def test_the_model_choice_is_stored_and_explained(retail):
    project, result = retail
    models = project.value_models()
    assert set(models.model) == {"BGNBD", "ParetoNBD", "MBGNBD", "NBD", "GammaGamma"}
    chosen = models.query("status == 'chosen'")
    assert result.value_model == "NBD" and chosen.model.item() == "NBD"
    # no model with dropout can be fitted on the calibration period: the NBD is used, scored there
    assert result.value_model_reason.startswith(
        "no model with dropout finds any on the calibration period (BG/NBD: the data show no dropout; "
        "Pareto/NBD: the data show no dropout; MBG/NBD: the data show no dropout), so the NBD, where "
        "nobody leaves, is used; scored by a holdout check (calibration to 2011-08-07"
    )
    assert chosen.holdout_predicted.item() == pytest.approx(4_476, abs=1)
    assert chosen.holdout_actual.item() == 5_460
    failed = models.query("status == 'failed'")
    assert set(failed.model) == {"BGNBD", "ParetoNBD", "MBGNBD"}
    assert failed.reason.str.contains("the data show no dropout").all()


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
            assert "the NBD, where nobody leaves" in notes[0] and "own buying rhythm" in notes[0], row.label
            continue
        mix = card.get("stage_mix") or {}
        mostly_lapsed = sum(mix.get(stage, 0.0) for stage in ("at_risk", "churned")) > 0.5
        p_alive = card.get("mean_p_alive")
        if mostly_lapsed or (p_alive is not None and p_alive > active):
            unexplained.append(row.label)
    assert not unexplained, unexplained
    # the stage table: lost and lapsing stages are as "alive" as the active one, and the run says so
    assert (stages.mean_p_alive.dropna() == 1.0).all()  # returns-only customers have no P(alive)
    (warning,) = [w for w in result.warnings if w.startswith("Lifecycle stages and the value model disagree")]
    assert f"churned customers ({stages.loc['churned', 'customers']:,})" in warning


def test_persona_card_shows_the_note(retail, capsys):
    project, _ = retail
    state.debug = False
    assert main(["-p", str(project.root), "persona", "churned", "--kind", "lifecycle"]) == 0
    out = capsys.readouterr().out
    assert "note: Mean P(alive)" in " ".join(out.split())
    assert "the value model is the NBD, where nobody leaves" in " ".join(out.split())


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
    assert "Value model: NBD, no model with dropout finds any on the calibration period" in out
    assert "Warning: The value model is the NBD model: nobody leaves in this data" in err


def test_validate_scores_the_nbd(retail):
    """No calibration period of this file shows dropout: the models with dropout fail there, and
    the NBD is checked against the holdout instead."""
    project, _ = retail
    check = project.validate_clv()
    assert check.holdout_days == 124 and check.calibration_end.isoformat() == "2011-08-07"
    scores = check.scores.set_index("model")
    assert (
        scores.loc[["bgnbd", "paretonbd", "mbgnbd"], "error"].str.startswith("the data show no dropout").all()
    )
    assert pd.isna(scores.loc["nbd", "error"]) and check.chosen == "nbd"
    # the NBD under-predicts the holdout (August to December) by 18%
    assert scores.loc["nbd", "predicted"] == pytest.approx(4_476, abs=1)
    assert scores.loc["nbd", "total_error"] == pytest.approx(-0.18, abs=0.005)
    table = check.by_frequency
    assert list(table.columns) == ["customers", "actual", "NBD"]
    assert table.customers.sum() == check.customers == 3_196
    assert table.NBD.is_monotonic_increasing
    holdout = check.tracking[check.tracking.part == "holdout"]
    assert holdout.actual.sum() == 5_460
    assert check.tracking["NBD cumulative"].iloc[-1] == pytest.approx(
        check.tracking["NBD cumulative"][check.tracking.part == "calibration"].iloc[-1] + holdout.NBD.sum()
    )
    assert 'clv.model = "auto" would keep NBD' in check.summary()[-1]


def test_validate_of_a_model_with_dropout_alone_points_to_the_nbd(retail):
    project, _ = retail
    check = project.validate_clv(models=["bgnbd"])
    assert not check.models and check.chosen is None
    assert check.summary()[-1].endswith(
        "The models that fail for lack of dropout describe customers who do not leave in this period: "
        "check the NBD, where nobody leaves (--model nbd)."
    )

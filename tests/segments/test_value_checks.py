"""Lifecycle stages against the value model: measured per stage and per segment, shown on cards."""

from __future__ import annotations

import pandas as pd

from microseg.config import SegmentConfig
from microseg.segments.checks import check_stages_against_value
from microseg.segments.personas import format_card


def _profile(active, churned, *, churned_transactions=3) -> pd.DataFrame:
    """Customers of two stages with the given P(alive) values (CLV 100 active, 40 churned)."""
    n_active, n_churned = len(active), len(churned)
    return pd.DataFrame(
        {
            "stage": ["active"] * n_active + ["churned"] * n_churned,
            "p_alive": [*active, *churned],
            "clv": [100.0] * n_active + [40.0] * n_churned,
            "transactions": [5] * n_active + [churned_transactions] * n_churned,
            "behaviour": ["active.b0"] * n_active + ["churned.b0"] * (n_churned - 1) + ["churned.b1"],
        }
    )


def _segments(profile: pd.DataFrame) -> pd.DataFrame:
    """Cards as segment_customers describes them: stages and behaviour clusters."""
    rows = []
    for kind, column in (("lifecycle", "stage"), ("behaviour", "behaviour")):
        for segment, members in profile.groupby(column):
            stage = members["stage"].iloc[0]
            rows.append(
                {
                    "segment_id": segment,
                    "kind": kind,
                    "label": f"{'Lost' if stage == 'churned' else 'Active'} customers {segment}",
                    "size": len(members),
                    "mean_clv": members["clv"].mean(),
                    "mean_p_alive": members["p_alive"].mean(),
                    "stage_mix": {stage: 1.0},
                }
            )
    return pd.DataFrame(rows)


def test_agreeing_stages_get_no_note_and_no_warning():
    profile = _profile([0.9, 0.8, 0.95], [0.1, 0.2, 0.3])
    segments = _segments(profile)
    assert check_stages_against_value(segments, profile, SegmentConfig()) == []
    assert segments["notes"].map(len).sum() == 0


def test_a_lost_segment_as_alive_as_the_active_stage_says_why():
    profile = _profile([0.5, 0.6, 0.7, 0.4, 0.5], [0.2, 0.3, 0.95])  # churned.b1 alone: 0.95
    segments = _segments(profile)
    warnings = check_stages_against_value(segments, profile, SegmentConfig())
    notes = segments.set_index("segment_id")["notes"]
    assert notes["churned.b1"] and not notes["churned.b0"] and not notes["churned"]
    note = notes["churned.b1"][0]
    assert note.startswith("Mean P(alive) 0.950 (active stage: 0.540): the value model still expects")
    assert "4 or more of their usual gaps between purchases" in note
    # no stage disagrees, so the warning names the segment
    assert warnings == [
        "1 segment of lost or lapsing customers has a mean P(alive) not below the active stage's "
        "(0.540), e.g. 'Lost customers churned.b1' (behaviour, 1 customer, 0.950); their cards say why."
    ]


def test_the_nbd_value_model_is_named_when_p_alive_is_one_for_everyone():
    """The NBD lets nobody leave: every buyer's P(alive) is exactly 1, and the note says so
    instead of calling it "near 1"."""
    profile = _profile([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    segments = _segments(profile)
    (warning,) = check_stages_against_value(segments, profile, SegmentConfig())
    note = segments.set_index("segment_id")["notes"]["churned"][0]
    assert note.startswith(
        "Mean P(alive) 1.000 (active stage: 1.000): the value model is the NBD, where nobody leaves, so "
        "P(alive) is 1 for everyone."
    )
    assert "the value model is the NBD, where nobody leaves" in warning and "near 1" not in warning


def test_no_dropout_in_the_data_notes_every_lapsed_segment():
    profile = _profile([0.999, 0.998, 0.999], [0.99, 0.985, 0.997])
    segments = _segments(profile)
    (warning,) = check_stages_against_value(segments, profile, SegmentConfig())
    notes = segments.set_index("segment_id")["notes"]
    assert all(notes[s] for s in ("churned", "churned.b0", "churned.b1"))
    assert not notes["active"] and not notes["active.b0"]
    assert "finds almost no dropout in this data, so P(alive) is near 1 for everyone" in notes["churned"][0]
    assert warning.startswith(
        "Lifecycle stages and the value model disagree: churned customers (3): mean P(alive) 0.991, "
        "mean CLV 40; active customers (3): mean P(alive) 0.999, mean CLV 100."
    )
    assert "3 segment cards say why" in warning


def test_one_time_buyers_the_model_cannot_see_leave():
    profile = _profile([0.7, 0.8, 0.75], [1.0, 1.0, 1.0], churned_transactions=1)
    segments = _segments(profile)
    check_stages_against_value(segments, profile, SegmentConfig())
    note = segments.set_index("segment_id")["notes"]["churned"][0]
    assert "100% of them bought only once" in note and "cannot see a one-time buyer leave" in note


def test_high_clv_is_mentioned():
    profile = _profile([0.5, 0.6], [0.9, 0.95]).assign(clv=[10.0, 20.0, 300.0, 500.0])
    segments = _segments(profile)
    check_stages_against_value(segments, profile, SegmentConfig())
    assert (
        "Their mean CLV (400) is above the active stage's (15)."
        in segments.loc[segments.segment_id == "churned", "notes"].item()[0]
    )


def test_without_p_alive_there_is_nothing_to_compare():
    profile = _profile([0.5], [0.9]).assign(p_alive=float("nan"))
    segments = _segments(profile)
    assert check_stages_against_value(segments, profile, SegmentConfig()) == []
    assert segments["notes"].map(len).sum() == 0


def test_the_card_prints_its_notes():
    profile = _profile([0.999, 0.998], [0.99, 0.996])
    segments = _segments(profile)
    check_stages_against_value(segments, profile, SegmentConfig())
    card = segments[segments.segment_id == "churned"].iloc[0].to_dict()
    text = format_card(card)
    assert "  note: Mean P(alive) 0.993 (active stage: 0.998)" in text

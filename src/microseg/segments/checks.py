"""Do the lifecycle stages agree with the value model? Measured per stage and per segment.

A segment of lost or lapsing customers (most of its members in the ``at_risk`` or ``churned``
stage) whose mean P(alive) is as high as the active stage's says one thing in its label and
another in its numbers. The stages follow each customer's buying rhythm; P(alive) follows the
repeat-buying model, and the model can have good reasons to disagree:

* it finds almost no dropout in the data, so P(alive) is near 1 for everyone, or it is the NBD,
  where nobody leaves and P(alive) is 1 (then every lost or lapsing segment is affected: its
  P(alive) says nothing about who has lapsed);
* most of the segment bought only once, and the model cannot see a one-time buyer leave
  (BG/NBD gives them P(alive) = 1 until a second purchase);
* or the customers bought often enough that the present gap does not yet worry the model.

Each affected segment gets a note on its card that says which, and the run gets a warning with
the stage table (mean P(alive) and CLV of the lost and lapsing stages against the active one).

>>> import pandas as pd
>>> from microseg.config import SegmentConfig
>>> profile = pd.DataFrame({"stage": ["active", "active", "churned", "churned"],
...                         "p_alive": [0.99, 0.97, 0.99, 1.0], "clv": [100.0, 80.0, 30.0, 20.0],
...                         "transactions": [5, 4, 1, 1]})
>>> segments = pd.DataFrame({"kind": ["lifecycle", "lifecycle"], "segment_id": ["active", "churned"],
...     "label": ["Active customers", "Churned customers"], "size": [2, 2],
...     "mean_p_alive": [0.98, 0.995], "mean_clv": [90.0, 25.0],
...     "stage_mix": [{"active": 1.0}, {"churned": 1.0}]})
>>> warnings = check_stages_against_value(segments, profile, SegmentConfig())
>>> segments["notes"].str.len().tolist()
[0, 1]
>>> print(segments.loc[1, "notes"][0])  # doctest: +ELLIPSIS
Mean P(alive) 0.995 (active stage: 0.980): the value model finds almost no dropout in this data, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from microseg.config import SegmentConfig
from microseg.registry import STAGE_NAMES

__all__ = ["LAPSED_STAGES", "check_stages_against_value"]

#: Stages whose label says a customer has lapsed ("Lapsing ...", "Lost ...").
LAPSED_STAGES: tuple[str, ...] = ("at_risk", "churned")
#: P(alive) says nothing about lapsing when at least NEARLY_ALL of the buyers have at least this.
NEAR_ONE = 0.9
NEARLY_ALL = 0.9
#: A segment "bought only once" when at least this share of its members did.
MOSTLY = 0.5


def _lapsed_share(stage_mix: Any) -> float:
    if not isinstance(stage_mix, Mapping):
        return 0.0
    return float(sum(stage_mix.get(stage, 0.0) for stage in LAPSED_STAGES))


def _rhythm_rule(stage_mix: Mapping, settings: SegmentConfig) -> str:
    """How the stage rules call these customers lapsed, in words."""
    churned = stage_mix.get("churned", 0.0) >= stage_mix.get("at_risk", 0.0)
    if churned:
        span = f"{settings.churned_lateness:g} or more"
    else:
        span = f"{settings.at_risk_lateness:g} to {settings.churned_lateness:g}"
    return f"{span} of their usual gaps between purchases have passed since their last one"


class _Evidence:
    """What the whole profile says about P(alive): the reference of the active stage, and
    whether P(alive) can tell lapsed customers at all."""

    def __init__(self, profile: pd.DataFrame) -> None:
        self.p_alive = pd.to_numeric(profile["p_alive"], errors="coerce") if "p_alive" in profile else None
        stage = profile["stage"].astype(object)
        clv = pd.to_numeric(profile["clv"], errors="coerce") if "clv" in profile else None
        self.stage = stage
        self.clv = clv
        known = self.p_alive.dropna() if self.p_alive is not None else pd.Series(dtype=float)
        self.usable = len(known) > 0 and (stage == "active").any()
        if not self.usable:
            return
        active = stage == "active"
        self.active_p = float(self.p_alive[active].mean())
        self.active_clv = float(clv[active].mean()) if clv is not None else float("nan")
        self.near_one = float((known >= NEAR_ONE).mean())
        # exactly 1 for every buyer: the value model has no dropout at all (the NBD)
        self.nobody_leaves = bool((known == 1.0).all())
        self.uninformative = self.near_one >= NEARLY_ALL or not np.isfinite(self.active_p)
        once = pd.to_numeric(profile.get("transactions"), errors="coerce") == 1
        once_p = self.p_alive[once].dropna()
        # the model cannot see a one-time buyer leave when it gives them all P(alive) = 1
        self.blind_to_one_time = len(once_p) > 0 and float(once_p.min()) >= 0.999
        self.one_time = once

    def stage_means(self, name: str) -> tuple[int, float, float]:
        rows = self.stage == name
        clv = float(self.clv[rows].mean()) if self.clv is not None else float("nan")
        return int(rows.sum()), float(self.p_alive[rows].mean()), clv


def _reason(evidence: _Evidence, one_time_share: float) -> str:
    """Why the value model does not see these customers as lapsed."""
    if evidence.nobody_leaves:
        return "the value model is the NBD, where nobody leaves, so P(alive) is 1 for everyone"
    if evidence.uninformative:
        return (
            "the value model finds almost no dropout in this data, so P(alive) is near 1 for "
            f"everyone ({evidence.near_one:.0%} of buyers above {NEAR_ONE:g})"
        )
    if evidence.blind_to_one_time and one_time_share >= MOSTLY:
        return (
            f"{one_time_share:.0%} of them bought only once, and the value model cannot see a "
            "one-time buyer leave (their P(alive) is 1 until a second purchase)"
        )
    return "the value model still expects most of them to buy again"


@dataclass(frozen=True)
class _Segment:
    """What a segment's members say: their stage mix, mean P(alive) and CLV, one-time buyers."""

    stage_mix: Mapping[str, float]
    p_alive: float
    clv: float
    one_time: float

    @property
    def lapsed(self) -> float:
        return _lapsed_share(self.stage_mix)


def _segment_stats(segments: pd.DataFrame, profile: pd.DataFrame, evidence: _Evidence) -> dict:
    """(kind, segment id) -> ``_Segment`` for the layers the profile carries (the stage for
    ``lifecycle``), computed from the members."""
    stats: dict[tuple[str, str], _Segment] = {}
    stage = evidence.stage
    frame = pd.DataFrame(
        {
            "churned": (stage == "churned").to_numpy(float),
            "at_risk": (stage == "at_risk").to_numpy(float),
            "p_alive": evidence.p_alive.to_numpy(float),
            "clv": evidence.clv.to_numpy(float) if evidence.clv is not None else np.nan,
            "once": evidence.one_time.to_numpy(float),
        }
    )
    for kind in segments["kind"].unique():
        column = "stage" if kind == "lifecycle" else kind
        if column not in profile:
            continue
        means = frame.groupby(profile[column].astype(str).to_numpy()).mean()
        for segment, row in means.iterrows():
            mix = {"churned": float(row["churned"]), "at_risk": float(row["at_risk"])}
            stats[(kind, str(segment))] = _Segment(
                mix, float(row["p_alive"]), float(row["clv"]), float(row["once"])
            )
    return stats


def _from_card(row: pd.Series) -> _Segment:
    """A segment of a layer the profile does not carry (composites, rules): its card's numbers."""
    mix = row.get("stage_mix")
    return _Segment(
        mix if isinstance(mix, Mapping) else {},
        _number(row.get("mean_p_alive")),
        _number(row.get("mean_clv")),
        0.0,
    )


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _note(segment: _Segment, evidence: _Evidence, settings: SegmentConfig) -> str:
    text = (
        f"Mean P(alive) {segment.p_alive:.3f} (active stage: {evidence.active_p:.3f}): "
        f"{_reason(evidence, segment.one_time)}. The stage follows the customers' own buying rhythm: "
        f"{_rhythm_rule(segment.stage_mix, settings)}."
    )
    if np.isfinite(segment.clv) and np.isfinite(evidence.active_clv) and segment.clv >= evidence.active_clv:
        text += (
            f" Their mean CLV ({segment.clv:,.0f}) is above the active stage's ({evidence.active_clv:,.0f})."
        )
    return text


def check_stages_against_value(
    segments: pd.DataFrame,
    profile: pd.DataFrame,
    settings: SegmentConfig,
    measured: Mapping[tuple[str, str], Mapping[str, float]] | None = None,
) -> list[str]:
    """Add a ``notes`` list to every row of ``segments`` (the segment cards of a run) and return
    the run's warnings: a note on each segment of lost or lapsing customers (most members in the
    ``at_risk`` or ``churned`` stage) whose mean P(alive) is not below the active stage's (every
    one of them when P(alive) is near 1 for everyone), saying why the stage and the value model
    disagree.

    ``profile`` is the run's per-customer frame with ``stage``, ``p_alive``, ``clv``,
    ``transactions`` and a column per layer whose segments it can measure; segments of other
    layers are judged by their cards' ``stage_mix``, ``mean_p_alive`` and ``mean_clv``.
    ``measured`` gives these figures per (layer, segment id) when the caller has them already
    (``churned``, ``at_risk``, ``p_alive``, ``clv``, ``one_time``: shares and means of the
    members, as ``personas.LayerStats.measures`` computes them); the profile then only gives
    the figures of the whole run.
    """
    notes: list[list[str]] = [[] for _ in range(len(segments))]
    segments["notes"] = notes
    evidence = _Evidence(profile)
    if not evidence.usable:
        return []
    if measured is None:
        stats = _segment_stats(segments, profile, evidence)
    else:
        stats = {
            key: _Segment(
                {"churned": m["churned"], "at_risk": m["at_risk"]}, m["p_alive"], m["clv"], m["one_time"]
            )
            for key, m in measured.items()
        }
    flagged: list[tuple[pd.Series, _Segment]] = []
    for position, (_, row) in enumerate(segments.iterrows()):
        segment = stats.get((row["kind"], str(row["segment_id"]))) or _from_card(row)
        if segment.lapsed <= 0.5 or not np.isfinite(segment.p_alive):
            continue
        if evidence.uninformative or segment.p_alive >= evidence.active_p:
            notes[position].append(_note(segment, evidence, settings))
            flagged.append((row, segment))
    return [_warning(flagged, evidence)] if flagged else []


def _warning(flagged: list[tuple[pd.Series, _Segment]], evidence: _Evidence) -> str:
    cards = f"{len(flagged)} segment card{'s' if len(flagged) != 1 else ''} say why"
    stages = [(row, segment) for row, segment in flagged if row["kind"] == "lifecycle"]
    if stages:
        parts = []
        for name in [*(str(row["segment_id"]) for row, _ in stages), "active"]:
            size, p, clv = evidence.stage_means(name)
            parts.append(
                f"{STAGE_NAMES.get(name, name).lower()} ({size:,}): mean P(alive) {p:.3f}, mean CLV {clv:,.0f}"
            )
        share = max(segment.one_time for _, segment in stages)
        return (
            f"Lifecycle stages and the value model disagree: {'; '.join(parts)}. P(alive) does not "
            f"mark the lost or lapsing customers: {_reason(evidence, share)}; the stages follow each "
            f"customer's buying rhythm, and {cards}."
        )
    row, segment = max(flagged, key=lambda item: (int(item[0]["size"]), item[1].p_alive))
    n = len(flagged)
    return (
        f"{n} segment{'s' if n != 1 else ''} of lost or lapsing customers {'have' if n != 1 else 'has'} "
        f"a mean P(alive) not below the active stage's ({evidence.active_p:.3f}), e.g. "
        f"'{row['label']!s}' ({row['kind']}, {int(row['size']):,} customer{'s' if int(row['size']) != 1 else ''}, "
        f"{segment.p_alive:.3f}); "
        "their cards say why."
    )

"""Layered segmentation of every customer, as Optimove does it.

1. **lifecycle stage** first (``microseg.models.lifecycle``);
2. **tiers** (CLV, RFM, tenure, engagement), their composite code and the configured composites;
3. **clusters within each stage**: a behavioural layer and a demographic layer, k chosen by
   silhouette, ids kept stable across runs by ``microseg.segments.identity``; a customer's
   **micro-segment** is the combination ``stage.behaviour.demographic``;
4. **rule segments** from the configuration;
5. **personas** for every segment of every layer.

Every customer is in exactly one segment of each layer (lifecycle, tiers, composite code,
behaviour, demographic, micro) and in any number of composites and rule segments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import numpy as np
import pandas as pd

from microseg.config import SegmentConfig
from microseg.features.layers import behaviour_features, demographic_features
from microseg.models.clustering import SegmentClusterer
from microseg.models.lifecycle import STAGES, LifecycleModel
from microseg.models.rules import evaluate_rules, parse_rules
from microseg.models.tiers import TIER_LAYERS, assign_tiers, clv_tier, named_composites, tenure_tier
from microseg.segments.identity import SegmentState, match_segments
from microseg.segments.personas import segment_cards

#: Clustered layers and the letter of their segment ids (``active.b2``, ``active.d0``).
CLUSTER_LAYERS = {"behaviour": "b", "demographic": "d"}
#: Layers in which every customer has exactly one segment.
EXCLUSIVE_KINDS = ("lifecycle", *TIER_LAYERS, "composite_code", "behaviour", "demographic", "micro")

STAGE_NAMES = {
    "prospect": "Prospects",
    "new": "New customers",
    "active": "Active customers",
    "at_risk": "At-risk customers",
    "churned": "Churned customers",
    "reactivated": "Reactivated customers",
}


@dataclass(frozen=True)
class PreviousSegment:
    """A segment of the last run, as stored: its members and its centroid in feature units."""

    segment_id: str
    members: np.ndarray
    centroid: Mapping[str, float]
    name: str | None = None


@dataclass
class Segmentation:
    """The result of one run: who is where, what each segment is, and what changed."""

    profile: pd.DataFrame  # per customer: profile, values, stage and tiers (index customer_id)
    memberships: pd.DataFrame  # customer_id, kind, segment_id
    segments: pd.DataFrame  # kind, segment_id, label, size, share, ..., card, centroid
    changes: pd.DataFrame  # kind, event, old_id, new_id, basis, shared, overlap (identity across runs)
    warnings: list[str] = field(default_factory=list)


def segment_customers(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    settings: SegmentConfig,
    previous: Mapping[str, Sequence[PreviousSegment]] | None = None,
    retired: Mapping[str, Sequence[str]] | None = None,
    browsing: pd.DataFrame | None = None,
) -> Segmentation:
    """Segment every customer of ``profile`` (profile + values, index customer_id).

    ``previous`` holds the clustered segments of the last run by id prefix (e.g. ``active.b``)
    and ``retired`` every id ever used per prefix, so that a refitted model keeps the ids of
    segments that are essentially the same and never reuses an old id.
    """
    profile = profile.sort_index()
    stage = _lifecycle(profile, settings)
    profile = profile.assign(stage=stage)
    tiers = assign_tiers(profile)
    tiers["clv_tier"] = clv_tier(profile["clv"], settings.clv_tiers) if "clv" in profile else "none"
    tenure_days = profile["days_since_first_purchase"]
    tiers["tenure_tier"] = tenure_tier(tenure_days, settings.tenure_days, _tenure_names(settings.tenure_days))
    tiers["composite_code"] = _joined(tiers, TIER_LAYERS)
    profile = profile.join(tiers)

    rows = [_layer("lifecycle", profile["stage"])]
    rows += [_layer(layer, profile[layer]) for layer in (*TIER_LAYERS, "composite_code")]
    composites = named_composites(
        tiers, {n: {f"{k}_tier": v for k, v in d.items()} for n, d in settings.composites.items()}
    )
    rows.append(
        pd.DataFrame(
            {
                "customer_id": composites.index,
                "kind": "composite",
                "segment_id": composites["composite"].to_numpy(),
            }
        )
    )

    features = {
        "behaviour": behaviour_features(profile, categories, browsing),
        "demographic": demographic_features(profile),
    }
    clustered, changes, centroids = _cluster_layers(
        profile, features, settings, previous or {}, retired or {}
    )
    for kind, labels in clustered.items():
        rows.append(_layer(kind, labels))
    micro = (clustered["behaviour"] + "." + clustered["demographic"].str.split(".").str[-1]).rename("micro")
    rows.append(_layer("micro", micro))

    warnings: list[str] = []
    if settings.rules:
        rows.append(_rule_members(profile, settings.rules))
    memberships = pd.concat(rows, ignore_index=True)
    demographic_base = features["demographic"].mean().to_dict()
    segments = _describe(
        profile.join(micro).assign(**clustered), categories, memberships, centroids, demographic_base
    )
    return Segmentation(profile, memberships, segments, changes, warnings)


def _joined(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    out = frame[columns[0]].astype(str)
    for column in columns[1:]:
        out = out + "/" + frame[column].astype(str)
    return out


def _tenure_names(bounds: Sequence[int]) -> list[str]:
    def span(days: int) -> str:
        return f"{days // 365}y" if days % 365 == 0 else f"{round(days / 30)}m"

    edges = [0, *bounds]
    names = [f"{span(a) if a else 0}-{span(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return [*names, f"{span(bounds[-1])}+"]


def _lifecycle(profile: pd.DataFrame, settings: SegmentConfig) -> np.ndarray:
    model = LifecycleModel(
        new_days=settings.new_days,
        reactivation_gap_days=settings.reactivation_gap_days,
        at_risk_lateness=settings.at_risk_lateness,
        churned_lateness=settings.churned_lateness,
        one_time_floor_days=settings.one_time_floor_days,
        at_risk_p_alive=settings.at_risk_p_alive,
        churned_p_alive=settings.churned_p_alive,
    )
    return model.fit(profile).predict(profile)


def _layer(kind: str, values: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": values.index, "kind": kind, "segment_id": values.astype(str).to_numpy()}
    )


def _cluster_layers(profile, features, settings, previous, retired):
    """Behavioural and demographic clusters within each stage, with stable ids."""
    labels = {kind: pd.Series("", index=profile.index, dtype=object) for kind in CLUSTER_LAYERS}
    changes: list[pd.DataFrame] = []
    centroids: dict[str, dict] = {}
    for kind, letter in CLUSTER_LAYERS.items():
        matrix = features[kind]
        for stage in STAGES:
            members = profile.index[profile["stage"].to_numpy() == stage]
            if len(members) == 0:
                continue
            prefix = f"{stage}.{letter}"
            x = matrix.loc[members]
            if x.shape[1] == 0:  # no such features in this data: one segment
                x = pd.DataFrame({"all": np.zeros(len(members))}, index=members)
            model = SegmentClusterer(
                k_min=settings.k_min,
                k_max=settings.k_max,
                sample_size=settings.sample_size,
                random_state=settings.seed,
            ).fit(x)
            raw_centers = _raw_centroids(x, model.labels_, model.k_)
            mean, scale = x.mean().to_numpy(float), x.std(ddof=0).to_numpy(float)
            scale = np.where(scale > 1e-12, scale, 1.0)
            states = [
                SegmentState(
                    segment_id=old.segment_id,
                    centroid=(np.array([old.centroid.get(c, 0.0) for c in x.columns]) - mean) / scale,
                    members=old.members,
                    size=len(old.members),
                    name=old.name,
                )
                for old in previous.get(prefix, [])
            ]
            matching = match_segments(
                states,
                customer_ids=members.to_numpy(dtype=str),
                labels=model.labels_,
                centroids=(raw_centers - mean) / scale,
                prefix=prefix,
                retired_ids=retired.get(prefix, ()),
            )
            ids = np.asarray(matching.segment_ids, dtype=object)
            labels[kind].loc[members] = ids[model.labels_]
            if len(matching.events):
                changes.append(pd.DataFrame(matching.events).assign(kind=kind))
            for label, segment_id in enumerate(ids):
                if segment_id is not None:
                    centroids[segment_id] = dict(
                        zip(x.columns, np.round(raw_centers[label], 6).tolist(), strict=True)
                    )
    change_frame = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=["kind"])
    return labels, change_frame, centroids


def _raw_centroids(x: pd.DataFrame, labels: np.ndarray, k: int) -> np.ndarray:
    values = x.to_numpy(float)
    sums = np.zeros((k, values.shape[1]))
    np.add.at(sums, labels, values)
    counts = np.bincount(labels, minlength=k)[:, None]
    return sums / np.maximum(counts, 1)


def _rule_members(profile: pd.DataFrame, rules: Mapping[str, str]) -> pd.DataFrame:
    table = ibis.memtable(profile.reset_index())
    parsed = parse_rules(rules, table.schema())
    members = evaluate_rules(parsed, table).to_pandas()
    return pd.DataFrame(
        {"customer_id": members["customer_id"], "kind": "rule", "segment_id": members["segment"]}
    )


def _tier_names(kind: str, tiers) -> dict[str, str] | None:
    """Readable names of tier segments (tiers are named by what they are, not by persona)."""
    if kind not in TIER_LAYERS:
        return None
    names = {}
    for tier in tiers:
        if kind == "clv_tier":
            name = {"rest": "Other buyers by CLV", "none": "No CLV"}.get(
                tier, f"Top {tier.removeprefix('top_')}% CLV"
            )
        elif kind == "rfm_tier":
            name = "No purchases" if tier == "none" else tier.replace("_", " ").capitalize()
        elif kind == "tenure_tier":
            name = "No purchases" if tier == "none" else f"Tenure {tier}"
        else:
            name = "Not engaged (90 days)" if tier == "none" else f"{tier.capitalize()} engagement"
        names[str(tier)] = name
    return names


ACQUISITION_WORDS = {"paid_search": "from search ads", "organic": "from search", "referral": "by referral"}


STAGE_WORDS = {
    "prospect": "Prospective",
    "new": "New",
    "active": "Active",
    "at_risk": "Lapsing",
    "churned": "Lost",
    "reactivated": "Returning",
}


def _demographic_name(segment_id: str, centroid: Mapping[str, float], base: Mapping[str, float]) -> str:
    """A demographic segment by its people: stage, gender when one dominates, age band, and the
    place or acquisition channel that sets it apart (over-represented against all customers, or
    nearly everyone in it)."""
    words = [STAGE_WORDS.get(segment_id.split(".")[0], "")]
    women, men = centroid.get("gender_F", 0.0), centroid.get("gender_M", 0.0)
    words.append(("women" if women > men else "men") if max(women, men) >= 0.65 else "customers")
    age = centroid.get("age")
    if age is not None and np.isfinite(age):
        words.append(f"in their {int(age // 10 * 10)}s")
    candidates = sorted(
        (
            (max(value - base.get(feature, 0.0), value - 0.6), feature)
            for feature, value in centroid.items()
            if feature.startswith(("region_", "country_", "acquired_"))
        ),
        reverse=True,
    )
    for strength, feature in candidates[:1]:
        if strength < 0.2:
            break
        if feature.startswith(("region_", "country_")):
            words.append(f"in {feature.split('_', 1)[1]}")
        else:
            channel = feature.removeprefix("acquired_")
            words.append(ACQUISITION_WORDS.get(channel, f"via {channel.replace('_', ' ')}"))
    return " ".join(w for w in words if w)


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} {seen[label]}")
    return out


def _plain_cards(profile: pd.DataFrame, membership: pd.Series, kind: str) -> pd.DataFrame:
    """Size, share, revenue share and mean CLV of each segment, labelled by its id."""
    frame = pd.DataFrame(
        {
            "segment_id": membership.to_numpy(),
            "revenue": profile["revenue"].reindex(membership.index).to_numpy(),
            "clv": profile["clv"].reindex(membership.index).to_numpy() if "clv" in profile else np.nan,
        }
    )
    grouped = frame.groupby("segment_id", sort=True)
    cards = grouped.agg(
        size=("revenue", "size"), revenue=("revenue", "sum"), mean_clv=("clv", "mean")
    ).reset_index()
    total = cards["revenue"].sum()
    cards["share"] = cards["size"] / cards["size"].sum()
    cards["revenue_share"] = cards["revenue"] / total if total > 0 else np.nan
    cards["kind"] = kind
    cards["label"] = cards["segment_id"]
    return cards.drop(columns="revenue").sort_values(
        ["size", "segment_id"], ascending=[False, True], ignore_index=True
    )


def _describe(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    memberships: pd.DataFrame,
    centroids: dict,
    demographic_base: Mapping[str, float],
) -> pd.DataFrame:
    """One row per segment of every layer: sizes, value, persona label and card."""
    frames = []
    for kind, rows in memberships.groupby("kind", sort=False):
        membership = rows.set_index("customer_id")["segment_id"]
        if kind == "composite_code":  # hundreds of tier combinations: sizes and value only
            cards = _plain_cards(profile, membership, kind)
        elif kind in ("composite", "rule"):
            # customers may be in several: describe each segment on its own members
            cards = (
                pd.concat(
                    [
                        segment_cards(profile, categories, part, kind=kind)
                        for _, part in membership.groupby(membership)
                    ],
                    ignore_index=True,
                )
                if len(membership)
                else pd.DataFrame()
            )
            if not cards.empty:
                cards["share"] = cards["size"] / len(profile)
        else:
            names = STAGE_NAMES if kind == "lifecycle" else _tier_names(kind, membership.unique())
            cards = segment_cards(profile, categories, membership, kind=kind, names=names)
            if kind == "demographic":
                cards["label"] = _unique(
                    [
                        _demographic_name(sid, centroids.get(sid, {}), demographic_base)
                        for sid in cards["segment_id"]
                    ]
                )
        frames.append(cards)
    segments = pd.concat(frames, ignore_index=True)
    segments["centroid"] = segments["segment_id"].map(
        lambda s: json.dumps(centroids[s]) if s in centroids else None
    )
    return segments

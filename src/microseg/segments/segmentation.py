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
from microseg.models.lifecycle import LifecycleModel
from microseg.models.rules import evaluate_rules, frame_schema, parse_rules
from microseg.models.tiers import assign_tiers, clv_tier, named_composites, tenure_tier
from microseg.registry import (
    CLUSTER_LETTERS,
    EXCLUSIVE_LAYERS,
    STAGE_NAMES,
    STAGE_WORDS,
    STAGES,
    TIER_LAYERS,
)
from microseg.schema import CUSTOMER_PROFILES
from microseg.segments.checks import check_stages_against_value
from microseg.segments.identity import SegmentState, match_segments
from microseg.segments.personas import persona_context, segment_cards

#: Clustered layers and the letter of their segment ids (``active.b2``, ``active.d0``).
CLUSTER_LAYERS = CLUSTER_LETTERS
#: Layers in which every customer has exactly one segment.
EXCLUSIVE_KINDS = EXCLUSIVE_LAYERS


@dataclass(frozen=True)
class PreviousSegment:
    """A segment of the last run, as stored: its members and its centroid in feature units."""

    segment_id: str
    members: np.ndarray
    centroid: Mapping[str, float]
    name: str | None = None


@dataclass
class Segmentation:
    """The result of one run: who is where, what each segment is, and what changed.

    Customers are numbered by their row in ``customer_ids``; ``layers`` gives every exclusive
    layer as a categorical of segment ids in that order, ``multi`` the layers where a customer
    can be in several segments (composite, rule) as (customer number, segment id) rows.
    """

    customer_ids: np.ndarray
    profile: pd.DataFrame  # per customer number: profile, values, stage and tiers
    layers: dict[str, pd.Categorical]
    multi: dict[str, pd.DataFrame]
    segments: pd.DataFrame  # kind, segment_id, label, size, share, ..., card, centroid
    changes: pd.DataFrame  # kind, event, old_id, new_id, basis, shared, overlap (identity across runs)
    warnings: list[str] = field(default_factory=list)

    @property
    def memberships(self) -> pd.DataFrame:
        """customer_id, kind, segment_id: one row per customer per segment."""
        frames = [
            pd.DataFrame(
                {
                    "customer_id": self.customer_ids,
                    "kind": kind,
                    "segment_id": np.asarray(values, dtype=object),
                }
            )
            for kind, values in self.layers.items()
        ]
        frames += [
            pd.DataFrame(
                {
                    "customer_id": self.customer_ids[rows["customer"].to_numpy()],
                    "kind": kind,
                    "segment_id": rows["segment_id"].to_numpy(dtype=object),
                }
            )
            for kind, rows in self.multi.items()
        ]
        return pd.concat(frames, ignore_index=True)


def _encode(frame: pd.DataFrame | None, ids: pd.Index) -> pd.DataFrame | None:
    """Replace ``customer_id`` by the customer's number (rows of unknown customers dropped)."""
    if frame is None:
        return None
    numbers = ids.get_indexer(frame["customer_id"])
    return frame.assign(customer_id=numbers)[numbers >= 0]


def segment_customers(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    settings: SegmentConfig,
    previous: Mapping[str, Sequence[PreviousSegment]] | None = None,
    retired: Mapping[str, Sequence[str]] | None = None,
    browsing: pd.DataFrame | None = None,
    customer_ids: np.ndarray | None = None,
) -> Segmentation:
    """Segment every customer of ``profile`` (profile + values).

    Either ``profile`` is indexed by customer id (and ``categories``/``browsing`` carry those
    ids), or, faster on millions of customers, its rows are numbered 0..n-1, ``customer_ids``
    gives their ids (sorted) and ``categories``/``browsing`` carry the numbers.

    ``previous`` holds the clustered segments of the last run by id prefix (e.g. ``active.b``)
    and ``retired`` every id ever used per prefix, so that a refitted model keeps the ids of
    segments that are essentially the same and never reuses an old id.
    """
    if customer_ids is None:
        profile = profile.sort_index()
        customer_ids = profile.index.to_numpy(dtype=object)
        index = pd.Index(customer_ids)
        categories, browsing = _encode(categories, index), _encode(browsing, index)
        profile = profile.reset_index(drop=True)
    customer_ids = np.asarray(customer_ids, dtype=object)
    stage = _lifecycle(profile, settings)
    profile = profile.assign(stage=pd.Categorical(stage, categories=list(STAGES)))
    tiers = assign_tiers(profile)
    tiers["clv_tier"] = clv_tier(profile["clv"], settings.clv_tiers) if "clv" in profile else "none"
    tenure_days = profile["days_since_first_purchase"]
    tiers["tenure_tier"] = tenure_tier(tenure_days, settings.tenure_days, _tenure_names(settings.tenure_days))
    layers: dict[str, pd.Categorical] = {"lifecycle": profile["stage"].array}
    for layer in TIER_LAYERS:
        layers[layer] = pd.Categorical(tiers[layer])
    layers["composite_code"] = _combined([layers[layer] for layer in TIER_LAYERS], "/")
    for layer in (*TIER_LAYERS, "composite_code"):
        profile[layer] = layers[layer]
    multi = {}
    composites = named_composites(
        pd.DataFrame({layer: layers[layer] for layer in TIER_LAYERS}),
        {n: {f"{k}_tier": v for k, v in d.items()} for n, d in settings.composites.items()},
    )
    if len(composites):
        multi["composite"] = pd.DataFrame(
            {"customer": composites.index.to_numpy(), "segment_id": composites["composite"].to_numpy()}
        )

    features = {
        "behaviour": behaviour_features(profile, categories, browsing),
        "demographic": demographic_features(profile),
    }
    clustered, changes, centroids = _cluster_layers(
        profile, features, settings, previous or {}, retired or {}, customer_ids
    )
    layers.update(clustered)
    demographic_suffix = pd.Categorical(
        np.asarray(clustered["demographic"].categories.str.split(".").str[-1], dtype=object)[
            clustered["demographic"].codes
        ]
    )
    layers["micro"] = _combined([clustered["behaviour"], demographic_suffix], ".")

    warnings: list[str] = []
    if settings.rules:
        multi["rule"] = _rule_members(profile, settings.rules)
    demographic_base = features["demographic"].mean().to_dict()
    described = profile.assign(**{k: layers[k] for k in ("behaviour", "demographic", "micro")})
    segments = _describe(described, categories, layers, multi, centroids, demographic_base)
    warnings += check_stages_against_value(segments, described, settings)  # adds the cards' notes
    return Segmentation(customer_ids, profile, layers, multi, segments, changes, warnings)


def _combined(parts: Sequence[pd.Categorical], separator: str) -> pd.Categorical:
    """The categorical of joined labels (``a/b/c``), computed on codes: only the distinct
    combinations are joined as strings."""
    code = np.zeros(len(parts[0]), dtype=np.int64)
    for part in parts:
        code = code * (len(part.categories) + 1) + part.codes
    values, inverse = np.unique(code, return_inverse=True)
    names = []
    for value in values:
        labels = []
        for part in reversed(parts):
            value, c = divmod(int(value), len(part.categories) + 1)
            labels.append(str(part.categories[c]))
        names.append(separator.join(reversed(labels)))
    return pd.Categorical.from_codes(inverse.ravel(), categories=pd.Index(names, dtype=object))


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


def _cluster_layers(profile, features, settings, previous, retired, customer_ids):
    """Behavioural and demographic clusters within each stage, with stable ids."""
    labels = {kind: np.empty(len(profile), dtype=object) for kind in CLUSTER_LAYERS}
    changes: list[pd.DataFrame] = []
    centroids: dict[str, dict] = {}
    stage = np.asarray(profile["stage"].cat.codes)
    id_strings = np.asarray(customer_ids).astype(str)  # once: matching compares them with old members
    for kind, letter in CLUSTER_LAYERS.items():
        matrix = features[kind]
        values = matrix.to_numpy(float)
        for code, name in enumerate(profile["stage"].cat.categories):
            rows = np.flatnonzero(stage == code)
            if len(rows) == 0:
                continue
            prefix = f"{name}.{letter}"
            x = values[rows] if values.shape[1] else np.zeros((len(rows), 1))
            columns = list(matrix.columns) if values.shape[1] else ["all"]
            model = SegmentClusterer(
                k_min=settings.k_min,
                k_max=settings.k_max,
                sample_size=settings.sample_size,
                random_state=settings.seed,
            ).fit(x)
            raw_centers = _raw_centroids(x, model.labels_, model.k_)
            mean, scale = x.mean(axis=0), x.std(axis=0)
            scale = np.where(scale > 1e-12, scale, 1.0)
            states = [
                SegmentState(
                    segment_id=old.segment_id,
                    centroid=(np.array([old.centroid.get(c, 0.0) for c in columns]) - mean) / scale,
                    members=old.members,
                    size=len(old.members),
                    name=old.name,
                )
                for old in previous.get(prefix, [])
            ]
            matching = match_segments(
                states,
                customer_ids=id_strings[rows],
                labels=model.labels_,
                centroids=(raw_centers - mean) / scale,
                prefix=prefix,
                retired_ids=retired.get(prefix, ()),
            )
            ids = np.asarray(matching.segment_ids, dtype=object)
            labels[kind][rows] = ids[model.labels_]
            if len(matching.events):
                changes.append(pd.DataFrame(matching.events).assign(kind=kind))
            for label, segment_id in enumerate(ids):
                if segment_id is not None:
                    centroids[segment_id] = dict(
                        zip(columns, np.round(raw_centers[label], 6).tolist(), strict=True)
                    )
    change_frame = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=["kind"])
    return {kind: pd.Categorical(values) for kind, values in labels.items()}, change_frame, centroids


def _raw_centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    counts = np.bincount(labels, minlength=k)[:, None]
    return sums / np.maximum(counts, 1)


def _rule_members(profile: pd.DataFrame, rules: Mapping[str, str]) -> pd.DataFrame:
    """(customer number, rule segment) rows: rules run in DuckDB on the columns they read."""
    parsed = parse_rules(rules, frame_schema(profile, CUSTOMER_PROFILES.ibis_schema()))
    used = sorted(set().union(*(rule.columns for rule in parsed)))
    table = ibis.memtable(profile[used].assign(customer=np.arange(len(profile))))
    members = evaluate_rules(parsed, table, id_column="customer").to_pandas()
    return pd.DataFrame(
        {"customer": members["customer_id"].to_numpy(), "segment_id": members["segment"].to_numpy()}
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


#: Layers clustered within each stage: their segments are described against their stage.
CLUSTERED = ("behaviour", "demographic", "micro")


def _cards_within_stages(
    profile: pd.DataFrame, categories: pd.DataFrame, membership: pd.Series, kind: str, context
) -> pd.DataFrame:
    """Cards of a layer clustered within stages: each segment against the other customers of
    its stage (what sets these active customers apart from the active ones), with sizes and
    revenue as shares of the whole layer."""
    stage = profile["stage"]
    revenue = pd.to_numeric(profile["revenue"], errors="coerce").fillna(0.0).to_numpy(float)
    total = revenue.sum()
    parts = []
    for name in stage.cat.categories:
        rows = (stage == name).to_numpy()
        if not rows.any():
            continue
        members = membership[rows]
        cards = segment_cards(
            profile,
            categories,
            members,
            kind=kind,
            context=context,
            base=f"all {STAGE_NAMES.get(name, name).lower()}",
        )
        by_segment = pd.Series(revenue[rows]).groupby(members.to_numpy()).sum()
        cards["revenue_share"] = (
            cards["segment_id"].map(by_segment).to_numpy(float) / total if total > 0 else np.nan
        )
        parts.append(cards)
    cards = pd.concat(parts, ignore_index=True)
    cards["share"] = cards["size"] / cards["size"].sum()
    cards["label"] = _unique(list(cards["label"]))
    return cards.sort_values(["size", "segment_id"], ascending=[False, True], ignore_index=True)


def _describe(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    layers: Mapping[str, pd.Categorical],
    multi: Mapping[str, pd.DataFrame],
    centroids: dict,
    demographic_base: Mapping[str, float],
) -> pd.DataFrame:
    """One row per segment of every layer: sizes, value, persona label and card."""
    frames = []
    context = persona_context(profile, categories)
    for kind, values in layers.items():
        membership = pd.Series(values, index=profile.index)
        if kind == "composite_code":  # hundreds of tier combinations: sizes and value only
            cards = _plain_cards(profile, membership, kind)
        else:
            if kind in CLUSTERED:
                cards = _cards_within_stages(profile, categories, membership, kind, context)
            else:
                names = STAGE_NAMES if kind == "lifecycle" else _tier_names(kind, values.categories)
                cards = segment_cards(
                    profile, categories, membership, kind=kind, names=names, context=context
                )
            if kind == "demographic":
                cards["label"] = _unique(
                    [
                        _demographic_name(sid, centroids.get(sid, {}), demographic_base)
                        for sid in cards["segment_id"]
                    ]
                )
        frames.append(cards)
    for kind, rows in multi.items():
        # customers may be in several: describe each segment on its own members
        parts = [
            segment_cards(
                profile,
                categories,
                pd.Series(part["segment_id"].to_numpy(), index=part["customer"].to_numpy()),
                kind=kind,
                context=context,
            )
            for _, part in rows.groupby("segment_id")
        ]
        if parts:
            cards = pd.concat(parts, ignore_index=True)
            # shares of all customers and of all revenue (members overlap: they need not add up)
            revenue = pd.to_numeric(profile["revenue"], errors="coerce").fillna(0.0).to_numpy(float)
            total = revenue.sum()
            by_segment = {
                segment: revenue[part["customer"].to_numpy()].sum()
                for segment, part in rows.groupby("segment_id")
            }
            cards["share"] = cards["size"] / len(profile)
            cards["revenue_share"] = [
                by_segment[s] / total if total > 0 else np.nan for s in cards["segment_id"]
            ]
            frames.append(cards)
    segments = pd.concat(frames, ignore_index=True)
    segments["segment_id"] = segments["segment_id"].astype(str)
    segments["centroid"] = segments["segment_id"].map(
        lambda s: json.dumps(centroids[s]) if s in centroids else None
    )
    return segments

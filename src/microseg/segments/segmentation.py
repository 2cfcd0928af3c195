"""Layered segmentation of every customer, as Optimove does it.

1. **lifecycle stage** first (``microseg.models.lifecycle``);
2. **tiers** (CLV, RFM, tenure, engagement), their composite code and the configured composites;
3. **clusters**: a behavioural layer within each stage (``active.b2``) and a demographic layer
   over all customers whatever their stage (``d3``), k chosen for quality and stability across
   seeds (``microseg.models.clustering``), models kept from one snapshot to the next so that ids
   stay put (``microseg.segments.clustered``); a customer's **micro-segment** is the combination
   ``stage.behaviour.demographic`` (``active.b2.d3``);
4. **rule segments** from the configuration;
5. **personas** for every segment of every layer.

Every customer is in exactly one segment of each layer (lifecycle, tiers, composite code,
behaviour, demographic, micro) and in any number of composites and rule segments.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from microseg.config import SegmentConfig
from microseg.features.layers import (
    BEHAVIOUR_COLUMNS,
    DEMOGRAPHIC_TRAITS,
    behaviour_features,
    behaviour_sources,
    demographic_features,
    demographic_sources,
)
from microseg.models.rules import evaluate_rules, frame_schema, parse_rules
from microseg.models.tiers import assign_tiers, named_composites
from microseg.registry import (
    CLUSTER_LETTERS,
    EXCLUSIVE_LAYERS,
    STAGE_NAMES,
    STAGES,
    TIER_LAYERS,
)
from microseg.schema import CUSTOMER_PROFILES
from microseg.segments.base import SEGMENT_COLUMNS, lifecycle_model, tenure_names
from microseg.segments.checks import check_stages_against_value
from microseg.segments.clustered import (
    MODEL_COLUMNS,
    LayerModel,
    PreviousSegment,
    ScopeResult,
    cluster_scope,
)
from microseg.segments.demographic_labels import demographic_labels
from microseg.segments.labels import contrast_labels
from microseg.segments.personas import CARD_COLUMNS, LayerStats, cards_of, layer_stats, persona_context

__all__ = ["CLUSTER_LAYERS", "LayerModel", "PreviousSegment", "Segmentation", "segment_customers"]

#: Clustered layers and the letter of their segment ids (``active.b2``, ``d0``).
CLUSTER_LAYERS = CLUSTER_LETTERS
#: Layers in which every customer has exactly one segment.
EXCLUSIVE_KINDS = EXCLUSIVE_LAYERS
#: The scope of a model over all customers (the demographic layer).
ALL = "all"


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
    # kind, scope, status, reason, fitted_as_of, k, stability, quality, ...: the clustering models
    models: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(MODEL_COLUMNS)))

    def model_lines(self) -> list[str]:
        """One line per clustered layer: how many models were reused or refitted, and their
        stability across seeds (for ``run`` to print)."""
        lines = []
        for kind, rows in self.models.groupby("kind", sort=False):
            counts = rows["status"].value_counts()
            status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            low, high = rows["stability"].min(), rows["stability"].max()
            spread = f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f} to {high:.2f}"
            what = "model" if len(rows) == 1 else "models (one per stage)"
            lines.append(
                f"{kind}: {len(rows)} {what}, {status}; {int(rows['k'].sum())} segments; "
                f"stability across seeds {spread}"
            )
        return lines

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


@dataclass
class EngineCustomers:
    """The run's customers in the engine, from which the segment cards' statistics are computed
    (``persona_stats``) instead of from the profile's arrays: ``customers`` has one row per
    customer numbered ``customer`` (the row of the profile) with the profile, values, stage and
    tiers; ``spend`` is ``customer, category, spend``; ``put(name, rows)`` makes an engine table
    of per-customer rows for as long as the run lasts (the clustered layers, the overlapping
    memberships)."""

    customers: ir.Table
    spend: ir.Table | None
    put: Callable[[str, pa.Table], ir.Table]


#: Profile columns the segmentation reads in memory when the engine describes the segments
#: (``EngineCustomers``): the clustered layers' features, the demographic labels and the
#: checks of the stages against the value model.
IN_MEMORY_COLUMNS = (
    *SEGMENT_COLUMNS,
    *BEHAVIOUR_COLUMNS,
    "age",
    *DEMOGRAPHIC_TRAITS,
    "p_alive",
    "clv",
    "transactions",
)


def in_memory_columns(settings: SegmentConfig) -> list[str]:
    """``IN_MEMORY_COLUMNS`` and the declared attributes."""
    return [*IN_MEMORY_COLUMNS, *settings.attributes]


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
    *,
    models: Mapping[tuple[str, str], LayerModel] | None = None,
    as_of: dt.date | None = None,
    refit: bool = False,
    rules: pd.DataFrame | None = None,
    engine: EngineCustomers | None = None,
) -> Segmentation:
    """Segment every customer of ``profile`` (profile + values).

    When ``profile`` has the columns of ``segments.base.SEGMENT_COLUMNS`` (the stage and
    tiers computed by the engine, see ``segments.base.segment_base``), they are kept as they are.

    Either ``profile`` is indexed by customer id (and ``categories``/``browsing`` carry those
    ids), or, faster on millions of customers, its rows are numbered 0..n-1, ``customer_ids``
    gives their ids (sorted) and ``categories``/``browsing`` carry the numbers.

    ``models`` are the clustering models of the previous snapshot by (layer, scope): they are
    reused when they still fit (``microseg.segments.clustered``), unless ``refit``. ``previous``
    holds the clustered segments of the last run by id prefix (e.g. ``active.b``) and
    ``retired`` every id used before per prefix, so that a refitted model keeps the ids of
    segments that are essentially the same and never reuses an old id. ``as_of`` is the
    snapshot date (default: the profile's ``as_of``). ``rules`` gives the members of the rule
    segments (``customer``, ``segment_id``) when the engine evaluated them already
    (``segments.base.rule_members``). With ``engine`` (the same customers in the engine, in the
    order of ``profile``'s rows), the engine computes the statistics of the segment cards.
    """
    if customer_ids is None:
        profile = profile.sort_index()
        customer_ids = profile.index.to_numpy(dtype=object)
        index = pd.Index(customer_ids)
        categories, browsing = _encode(categories, index), _encode(browsing, index)
        profile = profile.reset_index(drop=True)
    customer_ids = np.asarray(customer_ids, dtype=object)
    if set(SEGMENT_COLUMNS) <= set(profile.columns):  # stage and tiers computed by the engine
        tiers = profile
        stage = profile["stage"].to_numpy(dtype=object)
    else:
        stage = lifecycle_model(settings).fit(profile).predict(profile)
        tiers = assign_tiers(
            profile, settings.clv_tiers, settings.tenure_days, tenure_names(settings.tenure_days)
        )
    profile = profile.assign(stage=pd.Categorical(stage, categories=list(STAGES)))
    layers: dict[str, pd.Categorical] = {"lifecycle": profile["stage"].array}
    for layer in TIER_LAYERS:
        layers[layer] = pd.Categorical(np.asarray(tiers[layer], dtype=object))
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

    if as_of is None and "as_of" in profile and len(profile):
        as_of = pd.Timestamp(profile["as_of"].iloc[0]).date()
    clustered = _cluster_layers(
        profile,
        categories,
        browsing,
        settings,
        previous or {},
        retired or {},
        models or {},
        customer_ids,
        as_of,
        refit,
    )
    layers.update(clustered.layers)
    layers["micro"] = _combined([layers["behaviour"], layers["demographic"]], ".")

    warnings: list[str] = []
    if rules is not None:
        multi["rule"] = rules
    elif settings.rules:
        multi["rule"] = _rule_members(profile, settings.rules)
    described = profile.assign(**{k: layers[k] for k in ("behaviour", "demographic", "micro")})
    segments, measured = _describe(described, categories, layers, multi, clustered, settings, engine)
    warnings += check_stages_against_value(segments, described, settings, measured)  # adds the cards' notes
    return Segmentation(
        customer_ids,
        profile,
        layers,
        multi,
        segments,
        clustered.changes,
        warnings,
        models=clustered.models,
    )


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


@dataclass
class _Clustered:
    """The clustered layers of a run: memberships, identity events, descriptions and models."""

    layers: dict[str, pd.Categorical]
    changes: pd.DataFrame
    centroids: dict[str, dict[str, float]]  # segment id -> members' mean features
    models: pd.DataFrame
    results: dict[tuple[str, str], ScopeResult]


def _cluster_layers(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    browsing: pd.DataFrame | None,
    settings: SegmentConfig,
    previous: Mapping[str, Sequence[PreviousSegment]],
    retired: Mapping[str, Sequence[str]],
    models: Mapping[tuple[str, str], LayerModel],
    customer_ids: np.ndarray,
    as_of: dt.date | None,
    refit: bool,
) -> _Clustered:
    """Behavioural clusters within each stage and demographic clusters over everyone, each scope
    continuing its kept model (``microseg.segments.clustered``)."""
    id_strings = np.asarray(customer_ids).astype(str)  # once: matching compares them with old members
    stage = np.asarray(profile["stage"].cat.codes)
    labels = {kind: np.empty(len(profile), dtype=object) for kind in CLUSTER_LAYERS}
    results: dict[tuple[str, str], ScopeResult] = {}

    def run(kind: str, scope: str, prefix: str, rows: np.ndarray, build, sources) -> None:
        result = cluster_scope(
            kind,
            scope,
            prefix,
            build,
            sources,
            id_strings[rows],
            settings,
            kept=models.get((kind, scope)),
            previous=previous.get(prefix, ()),
            retired=retired.get(prefix, ()),
            as_of=as_of,
            refit=refit,
        )
        labels[kind][rows] = result.ids
        results[(kind, scope)] = result

    letter = CLUSTER_LAYERS["behaviour"]
    for code, name in enumerate(profile["stage"].cat.categories):
        rows = np.flatnonzero(stage == code)
        if len(rows) == 0:
            continue
        part = profile.iloc[rows]
        spend, views = _rows_of(categories, rows), _rows_of(browsing, rows)
        run(
            "behaviour",
            name,
            f"{name}.{letter}",
            rows,
            lambda spec, part=part, spend=spend, views=views: behaviour_features(part, spend, views, spec),
            behaviour_sources(spend, views),
        )
    year = as_of.year if as_of else None
    if len(profile):
        run(
            "demographic",
            ALL,
            CLUSTER_LAYERS["demographic"],
            np.arange(len(profile)),
            lambda spec: demographic_features(profile, settings.attributes, spec, year),
            demographic_sources(profile, settings.attributes),
        )

    changes = [r.events.assign(kind=kind) for (kind, _), r in results.items() if len(r.events)]
    change_frame = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=["kind"])
    centroids = {sid: c for r in results.values() for sid, c in r.centroids.items()}
    model_rows = pd.DataFrame([r.row() for r in results.values()], columns=list(MODEL_COLUMNS))
    return _Clustered(
        layers={kind: pd.Categorical(values) for kind, values in labels.items()},
        changes=change_frame,
        centroids=centroids,
        models=model_rows,
        results=results,
    )


def _rows_of(frame: pd.DataFrame | None, rows: np.ndarray) -> pd.DataFrame | None:
    """The rows of a long per-customer table (customers numbered) that belong to ``rows``."""
    if frame is None:
        return None
    return frame[np.isin(frame["customer_id"].to_numpy(), rows)]


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


#: Layers clustered within each stage: their segments are described against their stage.
WITHIN_STAGES = ("behaviour", "micro")


class _Describer:
    """The aggregates of every layer's segments (``personas.LayerStats``), by layer and scope
    (``all``, a stage for the layers clustered within stages, the segment itself for layers
    whose segments overlap): computed in memory from the profile (``personas.layer_stats``),
    or all at once by the engine (``persona_stats.PersonaStatistics``, with ``engine``)."""

    def __init__(
        self,
        profile: pd.DataFrame,
        categories: pd.DataFrame,
        layers: Mapping[str, pd.Categorical],
        multi: Mapping[str, pd.DataFrame],
        settings: SegmentConfig,
        engine: EngineCustomers | None,
    ) -> None:
        self.profile, self.layers, self.multi = profile, layers, multi
        self.stages = [name for name in profile["stage"].cat.categories if (profile["stage"] == name).any()]
        if engine is None:
            self.context = persona_context(profile, categories, settings.attributes)
            self._computed: dict[tuple[str, str], LayerStats] | None = None
            self._described: dict[tuple[str, str], LayerStats | None] = {}
            return
        from microseg.warehouse.persona_stats import PersonaStatistics

        clustered = {kind: layers[kind] for kind in (*CLUSTER_LAYERS, "micro")}
        numbers = pa.array(np.arange(len(profile), dtype=np.int64))
        labels = engine.put(
            "__segment_labels",
            pa.table(
                {
                    "customer": numbers,
                    **{k: pa.array(np.asarray(v, dtype=object), pa.string()) for k, v in clustered.items()},
                }
            ),
        )
        overlapping = None
        if multi:
            overlapping = engine.put(
                "__segment_members",
                pa.table(
                    {
                        "customer": pa.array(
                            np.concatenate([r["customer"].to_numpy(np.int64) for r in multi.values()])
                        ),
                        "kind": pa.array(
                            np.repeat(list(multi), [len(r) for r in multi.values()]), pa.string()
                        ),
                        "segment_id": pa.array(
                            np.concatenate(
                                [r["segment_id"].astype(str).to_numpy(object) for r in multi.values()]
                            ),
                            pa.string(),
                        ),
                    }
                ),
            )
        columns = {kind: ("stage" if kind == "lifecycle" else kind, None) for kind in layers}
        columns.update({kind: (kind, "stage") for kind in WITHIN_STAGES})
        statistics = PersonaStatistics(
            engine.customers.join(labels, "customer"), engine.spend, settings.attributes
        )
        self.context, self._computed = statistics.layers(columns, overlapping)

    def stats(self, kind: str, scope: str = ALL) -> LayerStats | None:
        """The aggregates of a layer's segments within ``scope``."""
        if self._computed is not None:
            return self._computed.get((kind, scope))
        if (kind, scope) not in self._described:
            self._described[(kind, scope)] = self._in_memory(kind, scope)
        return self._described[(kind, scope)]

    def measures(self) -> dict[tuple[str, str], dict[str, float]]:
        """(layer, segment id) -> what the checks of stages against the value model read, for
        every segment described (``LayerStats.measures``)."""
        described = self._computed if self._computed is not None else self._described
        return {
            (kind, sid): figures
            for (kind, _), stats in described.items()
            if stats is not None
            for sid, figures in stats.measures(self.context).items()
        }

    def _in_memory(self, kind: str, scope: str) -> LayerStats | None:
        if kind in self.multi:
            rows = self.multi[kind]
            rows = rows[rows["segment_id"].astype(str) == scope]
            membership = pd.Series(rows["segment_id"].to_numpy(), index=rows["customer"].to_numpy())
        else:
            membership = pd.Series(self.layers[kind], index=self.profile.index)
            if scope != ALL:
                membership = membership[(self.profile["stage"] == scope).to_numpy()]
        return layer_stats(self.context, membership)

    def total_revenue(self) -> float:
        """Everybody's revenue (what the revenue shares of every layer divide)."""
        stats = self.stats("lifecycle")
        return float(stats.revenue.sum()) if stats is not None else 0.0


def _plain_cards(describer: _Describer, kind: str) -> pd.DataFrame:
    """Size, share, revenue share and mean CLV of each segment, labelled by its id."""
    stats = describer.stats(kind)
    if stats is None:
        return pd.DataFrame(
            columns=["segment_id", "size", "mean_clv", "share", "revenue_share", "kind", "label"]
        )
    total = float(stats.revenue.sum())
    cards = pd.DataFrame(
        {
            "segment_id": stats.segment_ids,
            "size": stats.sizes,
            "mean_clv": stats.stats.column(describer.context, "clv"),
        }
    )
    cards["share"] = cards["size"] / cards["size"].sum()
    cards["revenue_share"] = stats.revenue / total if total > 0 else np.nan
    cards["kind"] = kind
    cards["label"] = cards["segment_id"]
    return cards.sort_values(["size", "segment_id"], ascending=[False, True], ignore_index=True)


def _cards_within_stages(
    describer: _Describer, kind: str, nouns: Mapping[str, str], names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Cards of a layer clustered within stages: each segment against the other customers of
    its stage (what sets these active customers apart from the active ones), with sizes and
    revenue as shares of the whole layer."""
    total = describer.total_revenue()
    parts = []
    for name in describer.stages:
        stats = describer.stats(kind, name)
        if stats is None:
            continue
        cards = cards_of(
            describer.context,
            stats,
            kind=kind,
            base=f"all {STAGE_NAMES.get(name, name).lower()}",
            nouns=nouns,
            names=names,
        )
        by_segment = dict(zip(stats.segment_ids, stats.revenue, strict=True))
        cards["revenue_share"] = (
            cards["segment_id"].map(by_segment).to_numpy(float) / total if total > 0 else np.nan
        )
        parts.append(cards)
    cards = pd.concat(parts, ignore_index=True)
    cards["share"] = cards["size"] / cards["size"].sum()
    cards = cards.sort_values(["size", "segment_id"], ascending=[False, True], ignore_index=True)
    # labels are unique within each stage; the stage word sets stages apart, and when it cannot
    # (a label without one) the look-alikes are contrasted
    effects = [dict(e) if isinstance(e, Mapping) else {} for e in cards["effects"]]
    cards["label"] = contrast_labels(list(cards["label"]), effects)
    return cards


def _micro_names(behaviour: Mapping[str, str], demographic: Mapping[str, str], ids) -> dict[str, str]:
    """A micro-segment by its two parts: "Active garden lovers, women in their 30s", "Active
    garden lovers in London" (a demographic label without a head noun joins without one)."""
    names = {}
    for micro in ids:
        b, _, d = str(micro).rpartition(".")
        people = demographic.get(d, "")
        text = behaviour.get(b, b)
        if people.startswith("Customers "):
            text += " " + people.removeprefix("Customers ")
        elif people and people != "Customers":
            text += ", " + people[:1].lower() + people[1:]
        names[str(micro)] = text
    return names


def _model_card(result: ScopeResult) -> dict[str, Any]:
    """What a clustered segment's card says about its model."""
    model = result.model
    return {
        "status": result.status,
        "reason": result.reason,
        "fitted_as_of": model.fitted_as_of.isoformat() if model.fitted_as_of else None,
        "stability": round(model.stability, 4),
        "silhouette": round(result.quality, 4),
        "segments": model.model.k,
    }


def _describe(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    layers: Mapping[str, pd.Categorical],
    multi: Mapping[str, pd.DataFrame],
    clustered: _Clustered,
    settings: SegmentConfig,
    engine: EngineCustomers | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, str], dict[str, float]]]:
    """One row per segment of every layer: sizes, value, persona label and card; and what the
    checks of stages against the value model read of each (``_Describer.measures``)."""
    frames = []
    nouns = settings.category_nouns
    describer = _Describer(profile, categories, layers, multi, settings, engine)
    context = describer.context
    labels: dict[str, dict[str, str]] = {}
    empty = pd.DataFrame(columns=list(CARD_COLUMNS))
    for kind, values in layers.items():
        if kind == "composite_code":  # hundreds of tier combinations: sizes and value only
            cards = _plain_cards(describer, kind)
        elif kind == "behaviour":
            cards = _cards_within_stages(describer, kind, nouns)
        elif kind == "micro":
            names = _micro_names(labels["behaviour"], labels["demographic"], values.categories)
            cards = _cards_within_stages(describer, kind, nouns, names)
        else:
            if kind == "demographic":
                names, base = demographic_labels(profile, values, settings.attributes), "all customers"
            else:
                names = STAGE_NAMES if kind == "lifecycle" else _tier_names(kind, values.categories)
                base = "the layer"
            stats = describer.stats(kind)
            cards = (
                empty.copy()
                if stats is None
                else cards_of(context, stats, kind=kind, names=names, base=base, nouns=nouns)
            )
        if kind in CLUSTER_LAYERS:
            scopes = {
                sid: clustered.results[(kind, ALL if kind == "demographic" else sid.split(".")[0])]
                for sid in cards["segment_id"].astype(str)
            }
            cards["model"] = [_model_card(scopes[sid]) for sid in cards["segment_id"].astype(str)]
        labels[kind] = dict(zip(cards["segment_id"].astype(str), cards["label"], strict=True))
        frames.append(cards)
    total = describer.total_revenue()
    for kind, rows in multi.items():
        # customers may be in several: describe each segment on its own members
        parts = []
        for segment in sorted(rows["segment_id"].astype(str).unique()):
            stats = describer.stats(kind, segment)
            cards = cards_of(context, stats, kind=kind, nouns=nouns)
            # shares of all customers and of all revenue (members overlap: they need not add up)
            cards["share"] = cards["size"] / len(profile)
            cards["revenue_share"] = float(stats.revenue.sum()) / total if total > 0 else np.nan
            parts.append(cards)
        if parts:
            frames.append(pd.concat(parts, ignore_index=True))
    segments = pd.concat(frames, ignore_index=True)
    segments["segment_id"] = segments["segment_id"].astype(str)
    centroids = clustered.centroids
    segments["centroid"] = segments["segment_id"].map(
        lambda s: json.dumps(centroids[s]) if s in centroids else None
    )
    return segments, describer.measures()

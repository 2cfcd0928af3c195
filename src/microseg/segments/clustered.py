"""Clustered layers whose ids stay put: models kept from one snapshot to the next.

A clustered layer has one model per *scope*: behaviour one per lifecycle stage (``active.b2``),
demographic one over all customers (``d3``). Each snapshot continues the model of the snapshot
before it (never a later one):

* **reused**: the kept model's feature recipe, scaling and centres (raw feature units) assign
  every customer to the nearest kept centre. A customer whose inputs did not change keeps their
  segment id by construction, however the rest of the population moves;
* **refitted** when there is no earlier model, a refit was asked for, the clustering settings
  or the kinds of input changed (a declared attribute, browsing data that appeared), a segment
  of the kept model fell below ``min_segment_size``, or the kept model no longer fits: its
  silhouette on this snapshot is more than ``refit_margin`` below the one it had when fitted
  (or it has one segment) *and* a refit scores more than ``refit_margin`` better. A refitted
  model's clusters take the ids of the previous segments they continue, by their members
  (:func:`microseg.segments.matching.match_segments`).

Which of the two happened, and why, is kept per scope in ``segment_models`` with the stability of
the fit across seeds and the silhouette now and at the fit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from microseg.config import SegmentConfig
from microseg.features.layers import FeatureSet
from microseg.models.clustering import ClusterModel, SegmentClusterer, sample_rows
from microseg.segments.matching import SegmentState, match_segments

REUSED, REFITTED = "reused", "refitted"
#: Columns of ``segment_models`` that a run fills (``as_of`` is added when stored).
MODEL_COLUMNS = (
    "kind",
    "scope",
    "status",
    "reason",
    "fitted_as_of",
    "k",
    "stability",
    "quality",
    "fit_quality",
    "customers",
    "model",
)


@dataclass(frozen=True)
class PreviousSegment:
    """A segment of the last run, as stored: its members and its centroid in feature units."""

    segment_id: str
    members: np.ndarray
    centroid: Mapping[str, float]
    name: str | None = None


@dataclass(frozen=True)
class LayerModel:
    """The model of one scope of a clustered layer, as kept between snapshots."""

    kind: str
    scope: str
    model: ClusterModel
    spec: Mapping[str, Any]
    segment_ids: tuple[str, ...]  # the id of each centre
    fitted_as_of: dt.date | None
    stability: float
    fit_quality: float
    digest: str  # of the clustering settings it was fitted with

    @property
    def sources(self) -> list[str]:
        return list(self.spec.get("sources", []))

    def to_json(self) -> str:
        return json.dumps(
            {
                "spec": self.spec,
                "segment_ids": list(self.segment_ids),
                "digest": self.digest,
                **self.model.to_dict(),
            }
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LayerModel:
        """A model from its ``segment_models`` row."""
        data = json.loads(row["model"])
        fitted = row["fitted_as_of"]
        return cls(
            kind=str(row["kind"]),
            scope=str(row["scope"]),
            model=ClusterModel.from_dict(data),
            spec=data["spec"],
            segment_ids=tuple(data["segment_ids"]),
            fitted_as_of=pd.Timestamp(fitted).date() if fitted is not None else None,
            stability=float(row["stability"]),
            fit_quality=float(row["fit_quality"]),
            digest=str(data["digest"]),
        )


@dataclass
class ScopeResult:
    """The clustering of one scope: each customer's id, the model and what was decided."""

    ids: np.ndarray  # segment id of each customer of the scope
    model: LayerModel
    status: str
    reason: str
    quality: float
    events: pd.DataFrame
    centroids: dict[str, dict[str, float]]  # members' mean features, raw units

    def row(self) -> dict[str, Any]:
        """The ``segment_models`` row (without ``as_of``)."""
        return {
            "kind": self.model.kind,
            "scope": self.model.scope,
            "status": self.status,
            "reason": self.reason,
            "fitted_as_of": self.model.fitted_as_of,
            "k": self.model.model.k,
            "stability": self.model.stability,
            "quality": self.quality,
            "fit_quality": self.model.fit_quality,
            "customers": len(self.ids),
            "model": self.model.to_json(),
        }


def settings_digest(settings: SegmentConfig, kind: str) -> str:
    """A digest of the settings a clustering of ``kind`` depends on: a kept model fitted with
    other settings is refitted."""
    relevant: dict[str, Any] = {
        name: getattr(settings, name)
        for name in ("k_min", "k_max", "sample_size", "seed", "min_segment_size", "min_stability")
    }
    if kind == "demographic":
        relevant["attributes"] = {n: dataclasses.asdict(a) for n, a in settings.attributes.items()}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cluster_scope(
    kind: str,
    scope: str,
    prefix: str,
    build: Callable[[Mapping[str, Any] | None], FeatureSet],
    sources: Sequence[str],
    customer_ids: np.ndarray,
    settings: SegmentConfig,
    *,
    kept: LayerModel | None = None,
    previous: Sequence[PreviousSegment] = (),
    retired: Sequence[str] = (),
    as_of: dt.date | None = None,
    refit: bool = False,
) -> ScopeResult:
    """Cluster the customers of one scope (``customer_ids``, as strings), continuing ``kept``.

    ``build(spec)`` gives the scope's features from a kept model's spec, or fresh from the data
    when ``spec`` is None; ``sources`` are the kinds of input a fresh build reads. ``previous``
    and ``retired`` are the previous run's segments and the ids used before with ``prefix``.
    """
    digest = settings_digest(settings, kind)
    reason = _refit_reason(kept, digest, sources, refit)
    candidate = None
    if reason is None:
        assert kept is not None
        features = build(kept.spec)
        if tuple(features.matrix.columns) != kept.model.columns:
            reason = "the feature columns changed"
        else:
            labels = kept.model.assign(features.matrix)
            sample = sample_rows(len(labels), settings.sample_size, customer_ids)
            quality = kept.model.quality(features.matrix, sample)
            sizes = np.bincount(labels, minlength=kept.model.k)
            small = [i for i in range(kept.model.k) if sizes[i] < settings.min_segment_size]
            note = f"silhouette {quality:.2f} ({kept.fit_quality:.2f} when fitted)"
            if kept.model.k > 1 and small:
                i = small[0]
                reason = (
                    f"segment {kept.segment_ids[i]} fell to {sizes[i]} customers, below the minimum "
                    f"of {settings.min_segment_size}"
                )
            elif kept.model.k == 1 or quality < kept.fit_quality - settings.refit_margin:
                fresh = build(None)
                candidate = (fresh, _fit(fresh, customer_ids, settings))
                better = candidate[1].quality_
                if candidate[1].k_ > 1 and better > quality + settings.refit_margin:
                    reason = f"a refit fits clearly better: silhouette {better:.2f} against {quality:.2f}"
                else:
                    note += f"; a refit is not clearly better ({better:.2f})"
            if reason is None:
                return _reused(kept, labels, features, quality, note, customer_ids)
    fresh, clusterer = candidate or (build(None), None)
    clusterer = clusterer or _fit(fresh, customer_ids, settings)
    return _refitted(
        kind, scope, prefix, fresh, clusterer, customer_ids, previous, retired, as_of, digest, reason
    )


def _refit_reason(kept: LayerModel | None, digest: str, sources: Sequence[str], refit: bool) -> str | None:
    """Why a kept model cannot be reused whatever the data says (None: it may be)."""
    if refit:
        return "a refit was asked for"
    if kept is None:
        return "no earlier model"
    if kept.digest != digest:
        return "the clustering settings changed"
    before, now = set(kept.sources), set(sources)
    if before != now:
        changes = [f"+{s}" for s in sorted(now - before)] + [f"-{s}" for s in sorted(before - now)]
        return f"the inputs changed ({', '.join(changes)})"
    return None


def _fit(features: FeatureSet, customer_ids: np.ndarray, settings: SegmentConfig) -> SegmentClusterer:
    matrix, groups = features.matrix, features.groups
    if matrix.shape[1] == 0:  # nothing to cluster on: one segment
        matrix, groups = pd.DataFrame({"all": np.zeros(len(matrix))}), ["all"]
    weights = features.weights if len(features.weights) == matrix.shape[1] else None
    clusterer = SegmentClusterer(
        k_min=settings.k_min,
        k_max=settings.k_max,
        sample_size=settings.sample_size,
        random_state=settings.seed,
        min_stability=settings.min_stability,
        min_size=settings.min_segment_size,
    )
    return clusterer.fit(matrix.to_numpy(float), groups=groups, keys=customer_ids, weights=weights)


def _columns(features: FeatureSet) -> list[str]:
    return list(features.matrix.columns) if features.matrix.shape[1] else ["all"]


def _member_means(features: FeatureSet, labels: np.ndarray, ids: Sequence[str]) -> dict[str, dict]:
    """Each segment's mean features in raw units (what its members are like)."""
    values = features.matrix.to_numpy(float) if features.matrix.shape[1] else np.zeros((len(labels), 1))
    k = len(ids)
    sums = np.zeros((k, values.shape[1]))
    np.add.at(sums, labels, values)
    counts = np.maximum(np.bincount(labels, minlength=k), 1)[:, None]
    means = sums / counts
    columns = _columns(features)
    return {
        sid: dict(zip(columns, np.round(means[i], 6).tolist(), strict=True))
        for i, sid in enumerate(ids)
        if sid is not None
    }


def _reused(
    kept: LayerModel,
    labels: np.ndarray,
    features: FeatureSet,
    quality: float,
    note: str,
    customer_ids: np.ndarray,
) -> ScopeResult:
    ids = np.asarray(kept.segment_ids, dtype=object)
    present = sorted(set(np.unique(labels).tolist()))
    events = pd.DataFrame(
        {
            "event": "kept",
            "old_id": [ids[i] for i in present],
            "new_id": [ids[i] for i in present],
            "basis": "model",
        }
    )
    fitted = kept.fitted_as_of.isoformat() if kept.fitted_as_of else "an earlier snapshot"
    return ScopeResult(
        ids=ids[labels],
        model=kept,
        status=REUSED,
        reason=f"the model fitted on {fitted} still fits: {note}",
        quality=quality,
        events=events,
        centroids=_member_means(features, labels, list(ids)),
    )


def _refitted(
    kind: str,
    scope: str,
    prefix: str,
    features: FeatureSet,
    clusterer: SegmentClusterer,
    customer_ids: np.ndarray,
    previous: Sequence[PreviousSegment],
    retired: Sequence[str],
    as_of: dt.date | None,
    digest: str,
    reason: str,
) -> ScopeResult:
    columns = _columns(features)
    labels = clusterer.labels_
    centers = clusterer.cluster_centers_  # standardised
    mean, scale = clusterer.mean_, clusterer.scale_
    states = [
        SegmentState(
            segment_id=old.segment_id,
            centroid=(np.array([old.centroid.get(c, 0.0) for c in columns]) - mean) / scale,
            members=old.members,
            size=len(old.members),
            name=old.name,
        )
        for old in previous
    ]
    matching = match_segments(
        states,
        customer_ids=customer_ids,
        labels=labels,
        centroids=centers,
        prefix=prefix,
        retired_ids=retired,
    )
    # a centre without customers gets no id: it is dropped from the kept model
    live = [i for i, sid in enumerate(matching.segment_ids) if sid is not None]
    remap = np.full(len(centers), -1)
    remap[live] = np.arange(len(live))
    kept_model = ClusterModel(tuple(columns), mean, scale, centers[live] * scale + mean)
    ids = tuple(str(matching.segment_ids[i]) for i in live)
    model = LayerModel(
        kind=kind,
        scope=scope,
        model=kept_model,
        spec=features.spec,
        segment_ids=ids,
        fitted_as_of=as_of,
        stability=float(clusterer.stability_),
        fit_quality=float(clusterer.quality_),
        digest=digest,
    )
    events = matching.events[["event", "old_id", "new_id", "basis", "shared", "overlap"]].copy()
    return ScopeResult(
        ids=np.asarray(matching.segment_ids, dtype=object)[labels],
        model=model,
        status=REFITTED,
        reason=f"{reason}; k = {len(ids)} chosen with stability {clusterer.stability_:.2f}",
        quality=float(clusterer.quality_),
        events=events,
        centroids=_member_means(features, remap[labels], list(ids)),
    )

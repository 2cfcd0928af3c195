"""Keeping segmentations in the warehouse, and reading back what the next run builds on."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pandas as pd

from microseg.engine.duckdb import DuckDBWarehouse
from microseg.schema import (
    CUSTOMER_CATEGORIES,
    CUSTOMER_PROFILES,
    SEGMENT_CHANGES,
    SEGMENT_MEMBERSHIPS,
    SEGMENT_REGISTRY,
    SEGMENTS,
)
from microseg.segments.segmentation import CLUSTER_LAYERS, PreviousSegment, Segmentation

_PREFIX = re.compile(r"^(.*?)(\d+)$")


def id_prefix(segment_id: str) -> str:
    """``active.b12`` -> ``active.b``: the family a clustered segment id belongs to."""
    match = _PREFIX.match(segment_id)
    return match.group(1) if match else segment_id


def previous_segments(
    wh: DuckDBWarehouse, as_of: dt.date
) -> tuple[dict[str, list[PreviousSegment]], dict[str, list[str]]]:
    """The clustered segments of the run to continue (by id prefix), and the other clustered ids
    ever used (by id prefix): never to be handed out again."""
    retired: dict[str, list[str]] = {}
    for (segment_id,) in wh.fetch("SELECT segment_id FROM segment_registry ORDER BY segment_id"):
        retired.setdefault(id_prefix(segment_id), []).append(segment_id)
    # the run of that date when it is redone, else the latest before it, else (back-filling an
    # earlier date) the earliest after it: ids stay aligned whichever order dates are run in
    last = wh.fetch(
        "SELECT coalesce(max(as_of) FILTER (WHERE as_of <= ?), min(as_of)) FROM segments", [as_of]
    )[0][0]
    if last is None:
        return {}, retired
    kinds = list(CLUSTER_LAYERS)
    placeholders = ", ".join("?" for _ in kinds)
    rows = wh.fetch_df(
        f"SELECT segment_id, label, centroid FROM segments WHERE as_of = ? AND kind IN ({placeholders})",
        [last, *kinds],
    )
    members = wh.fetch_df(
        f"SELECT segment_id, customer_id FROM segment_memberships WHERE as_of = ? AND kind IN ({placeholders}) "
        "ORDER BY segment_id, customer_id",
        [last, *kinds],
    )
    by_segment = {
        sid: group["customer_id"].to_numpy(dtype=str) for sid, group in members.groupby("segment_id")
    }
    previous: dict[str, list[PreviousSegment]] = {}
    for row in rows.itertuples():
        centroid = json.loads(row.centroid) if row.centroid else {}
        segment = PreviousSegment(
            row.segment_id, by_segment.get(row.segment_id, np.array([], dtype=str)), centroid, row.label
        )
        previous.setdefault(id_prefix(row.segment_id), []).append(segment)
    current = {s.segment_id for segments in previous.values() for s in segments}
    retired = {prefix: [i for i in ids if i not in current] for prefix, ids in retired.items()}
    return previous, retired


def store_segmentation(
    wh: DuckDBWarehouse, segmentation: Segmentation, categories: pd.DataFrame, as_of: dt.date
) -> None:
    """Replace the run of ``as_of``: profiles, categories, memberships, segments and changes;
    register the clustered ids."""
    where = f"as_of = DATE '{as_of.isoformat()}'"
    profile = segmentation.profile.reset_index()
    profile = profile[[c.name for c in CUSTOMER_PROFILES.columns if c.name != "as_of"]].assign(as_of=as_of)
    wh.replace_frame(CUSTOMER_PROFILES, profile, where)
    wh.replace_frame(CUSTOMER_CATEGORIES, categories.assign(as_of=as_of), where)
    wh.replace_frame(SEGMENT_MEMBERSHIPS, segmentation.memberships.assign(as_of=as_of), where)
    segments = segmentation.segments.assign(as_of=as_of, card=segmentation.segments.apply(_card_json, axis=1))
    wh.replace_frame(SEGMENTS, segments[[c.name for c in SEGMENTS.columns]], where)
    changes = segmentation.changes
    for column in ("event", "old_id", "new_id", "basis", "shared", "overlap"):
        if column not in changes:
            changes = changes.assign(**{column: None})
    wh.replace_frame(
        SEGMENT_CHANGES, changes.assign(as_of=as_of)[[c.name for c in SEGMENT_CHANGES.columns]], where
    )
    clustered = segments[segments["kind"].isin(list(CLUSTER_LAYERS))][["segment_id", "kind"]]
    wh.con.register("__new_ids", clustered)
    try:
        wh.sql(
            "UPDATE segment_registry SET last_as_of = greatest(last_as_of, ?) "
            "WHERE segment_id IN (SELECT segment_id FROM __new_ids)",
            [as_of],
        )
        wh.sql(
            f"INSERT INTO {SEGMENT_REGISTRY.name} SELECT segment_id, kind, ?, ? FROM __new_ids n "
            "WHERE NOT EXISTS (SELECT 1 FROM segment_registry r WHERE r.segment_id = n.segment_id)",
            [as_of, as_of],
        )
    finally:
        wh.con.unregister("__new_ids")


def _card_json(row: pd.Series) -> str:
    skip = {"as_of", "centroid", "card"}
    return json.dumps({k: _plain(v) for k, v in row.items() if k not in skip}, default=str)


def _plain(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value

"""Keeping segmentations in the warehouse, and reading back what the next run builds on.

A run continues the run before it, never a later one: the *reference* of a run as of a date is
the latest stored run before that date (or, when there is none, the stored run of that date
itself, as when the first snapshot is redone). Its clustering models, its clustered segments and
the ids used up to it are what the new run starts from, whatever order dates are run in.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from microseg.schema import (
    CUSTOMER_CATEGORIES,
    CUSTOMER_PROFILES,
    SEGMENT_CHANGES,
    SEGMENT_MEMBERSHIPS,
    SEGMENT_MODELS,
    SEGMENT_REGISTRY,
    SEGMENTS,
)
from microseg.segments.segmentation import CLUSTER_LAYERS, LayerModel, PreviousSegment, Segmentation
from microseg.warehouse.duckdb import DuckDBWarehouse, quote_ident, quote_literal

_PREFIX = re.compile(r"^(.*?)(\d+)$")


def id_prefix(segment_id: str) -> str:
    """``active.b12`` -> ``active.b``: the family a clustered segment id belongs to."""
    match = _PREFIX.match(segment_id)
    return match.group(1) if match else segment_id


def reference_date(wh: DuckDBWarehouse, as_of: dt.date) -> dt.date | None:
    """The run that a run as of ``as_of`` continues: the latest before it, else that date's own
    stored run (None on a first run). Never a later one."""
    return wh.fetch(
        "SELECT coalesce(max(as_of) FILTER (WHERE as_of < ?), max(as_of) FILTER (WHERE as_of = ?)) "
        "FROM segments",
        [as_of, as_of],
    )[0][0]


def kept_models(wh: DuckDBWarehouse, as_of: dt.date) -> dict[tuple[str, str], LayerModel]:
    """The clustering models of the reference run of ``as_of``, by (layer, scope)."""
    last = reference_date(wh, as_of)
    if last is None:
        return {}
    rows = wh.fetch_df("SELECT * FROM segment_models WHERE as_of = ?", [last])
    return {(str(r["kind"]), str(r["scope"])): LayerModel.from_row(r) for r in rows.to_dict("records")}


def previous_segments(
    wh: DuckDBWarehouse, as_of: dt.date
) -> tuple[dict[str, list[PreviousSegment]], dict[str, list[str]]]:
    """The clustered segments of the reference run (by id prefix), and the other clustered ids
    used up to it (by id prefix): never to be handed out again."""
    last = reference_date(wh, as_of)
    retired: dict[str, list[str]] = {}
    used = wh.fetch(
        "SELECT segment_id FROM segment_registry WHERE first_as_of <= ? ORDER BY segment_id",
        [last or dt.date.min],
    )
    for (segment_id,) in used:
        retired.setdefault(id_prefix(segment_id), []).append(segment_id)
    if last is None:
        return {}, retired
    kinds = list(CLUSTER_LAYERS)
    placeholders = ", ".join("?" for _ in kinds)
    rows = wh.fetch_df(
        f"SELECT segment_id, label, centroid FROM segments WHERE as_of = ? AND kind IN ({placeholders})",
        [last, *kinds],
    )
    members = wh.fetch_arrow(
        f"SELECT segment_id, customer_id FROM segment_memberships WHERE as_of = ? AND kind IN ({placeholders}) "
        "ORDER BY segment_id, customer_id",
        [last, *kinds],
    )
    # rows come sorted by segment: each segment's members are one slice of the id column
    segment_ids = members.column("segment_id").to_numpy(zero_copy_only=False)
    customer_ids = members.column("customer_id").to_numpy(zero_copy_only=False).astype(str)
    starts = np.flatnonzero(np.r_[True, segment_ids[1:] != segment_ids[:-1]]) if len(segment_ids) else []
    ends = [*starts[1:], len(segment_ids)]
    by_segment = {segment_ids[a]: customer_ids[a:b] for a, b in zip(starts, ends, strict=True)}
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


#: The warehouse table of a run's per-customer base (``segments.base.segment_base``).
BASE_TABLE = "__segment_base"
#: Layers whose segment is a column of the base table.
BASE_LAYERS = {
    "lifecycle": "stage",
    "clv_tier": "clv_tier",
    "rfm_tier": "rfm_tier",
    "tenure_tier": "tenure_tier",
    "engagement_tier": "engagement_tier",
    "composite_code": "composite_code",
}


class SegmentBase:
    """A run's per-customer base table, kept in the warehouse while the run lasts.

    Customers are numbered (``customer``) by their sorted ids; other per-customer tables are
    numbered by DuckDB joins with it rather than by string hashing in pandas. Use as a context
    manager: the table is dropped on leaving.
    """

    def __init__(self, wh: DuckDBWarehouse, profile, settings) -> None:
        """``profile``: the run's profile joined with its values (an engine expression). It is
        kept in the warehouse once; the stage, tiers and numbers
        (``segments.base.segment_columns``) are computed over it into a narrow table, and the
        base is the view joining the two (copying the wide profile again costs more)."""
        from microseg.segments.base import SEGMENT_COLUMNS, segment_columns

        self.wh = wh
        self.name = BASE_TABLE
        self._parts = (BASE_TABLE + "_profile", BASE_TABLE + "_segments")
        self._registered: list[str] = []  # per-customer rows put into the engine (``put``)
        profiles, segments = self._parts
        wh.ibis.create_table(profiles, profile, temp=True, overwrite=True)
        added = segment_columns(wh.ibis.table(profiles), settings).select(
            "customer_id", *SEGMENT_COLUMNS, "customer"
        )
        wh.ibis.create_table(segments, added, temp=True, overwrite=True)
        wh.sql(
            f"CREATE OR REPLACE TEMP VIEW {self.name} AS SELECT p.*, "
            + ", ".join(f"s.{quote_ident(c)}" for c in (*SEGMENT_COLUMNS, "customer"))
            + f" FROM {profiles} p JOIN {segments} s USING (customer_id)"
        )

    def table(self):
        """The base table (Ibis)."""
        return self.wh.ibis.table(self.name)

    def to_pyarrow(self, columns: Sequence[str] | None = None) -> pa.Table:
        """Every row, in customer order; ``columns``: only those of them that the base has
        (and ``customer_id``)."""
        if columns is None:
            return self.wh.fetch_arrow(f"SELECT * FROM {self.name} ORDER BY customer")
        present = set(self.table().columns)
        wanted = ["customer_id", *(c for c in dict.fromkeys(columns) if c in present and c != "customer_id")]
        return self.wh.fetch_arrow(
            f"SELECT {', '.join(quote_ident(c) for c in wanted)} FROM {self.name} ORDER BY customer"
        )

    def put(self, name: str, rows: pa.Table):
        """``rows`` as an engine table (Ibis) for as long as the base is open."""
        self.wh.con.register(name, rows)
        self._registered.append(name)
        return self.wh.ibis.table(name)

    def number(self, table, keep: str | None = None) -> pd.DataFrame:
        """``table`` (per customer and ``category``: an Arrow table, or an engine expression on
        the warehouse's connection) with its ``customer_id`` replaced by the customer's number,
        rows in customer and category order. ``keep`` also keeps the numbered rows in the engine
        under that name, with the number in ``customer`` (see ``put``)."""
        name = "__to_number"
        if isinstance(table, pa.Table):
            self.wh.con.register(name, table)
            columns = table.column_names
        else:
            self.wh.ibis.create_table(name, table, temp=True, overwrite=True)
            columns = list(table.columns)
        try:
            others = ", ".join(f"t.{quote_ident(c)}" for c in columns if c != "customer_id")
            numbered = self.wh.fetch_arrow(
                f"SELECT n.customer AS customer_id, {others} FROM {name} t "
                f"JOIN {self.name} n USING (customer_id) ORDER BY n.customer, t.category"
            )
            if keep:
                self.put(keep, numbered.rename_columns(["customer", *numbered.column_names[1:]]))
            return numbered.to_pandas()
        finally:
            if isinstance(table, pa.Table):
                self.wh.con.unregister(name)
            else:
                self.wh.sql(f"DROP TABLE IF EXISTS {name}")

    def close(self) -> None:
        for name in self._registered:
            self.wh.con.unregister(name)
        self._registered.clear()
        self.wh.sql(f"DROP VIEW IF EXISTS {self.name}")
        for part in self._parts:
            self.wh.sql(f"DROP TABLE IF EXISTS {part}")

    def __enter__(self) -> SegmentBase:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def store_segmentation(
    wh: DuckDBWarehouse,
    segmentation: Segmentation,
    categories: pd.DataFrame,
    as_of: dt.date,
    base: SegmentBase | None = None,
) -> None:
    """Replace the run of ``as_of``: profiles, categories, memberships, segments and changes;
    register the clustered ids. ``categories`` may carry customer numbers (of
    ``segmentation.customer_ids``) or ids. With ``base``, the profiles and the memberships of
    the stage and tier layers are written from the run's base table by the engine."""
    where = f"DATE '{as_of.isoformat()}'"
    if base is not None:
        wh.sql(f"CREATE OR REPLACE TEMP VIEW __ids AS SELECT customer, customer_id FROM {base.name}")
    else:
        ids = pa.table(
            {
                "customer": pa.array(np.arange(len(segmentation.customer_ids), dtype=np.int64)),
                "customer_id": pa.array(
                    segmentation.customer_ids.astype(object), pa.string()
                ),  # not via NumPy text: it ends at a NUL
            }
        )
        wh.con.register("__ids", ids)
    try:
        if base is not None:
            profiles = base.table().mutate(as_of=ibis.literal(as_of, type="date"))
            wh.replace_rows(CUSTOMER_PROFILES, profiles, f"as_of = {where}")
        else:
            profile = segmentation.profile.assign(
                customer_id=ids.column("customer_id").to_numpy(zero_copy_only=False), as_of=as_of
            )
            for layer in BASE_LAYERS.values():
                profile[layer] = profile[layer].astype(str)
            wh.replace_frame(
                CUSTOMER_PROFILES, profile[[c.name for c in CUSTOMER_PROFILES.columns]], f"as_of = {where}"
            )
        _replace_numbered(wh, CUSTOMER_CATEGORIES, categories, as_of)
        layers: list[tuple[str, pa.Table | str]] = []
        for kind, values in segmentation.layers.items():
            if base is not None and kind in BASE_LAYERS:
                layers.append((kind, BASE_LAYERS[kind]))  # a column of the base table
                continue
            rows = pa.table(
                {
                    "customer": pa.array(np.arange(len(values), dtype=np.int64)),
                    "segment_id": pa.DictionaryArray.from_arrays(
                        pa.array(values.codes.astype(np.int32)),
                        pa.array(np.asarray(values.categories, dtype=str)),
                    ),
                }
            )
            layers.append((kind, rows))
        for kind, rows in segmentation.multi.items():
            table = pa.table(
                {
                    "customer": pa.array(rows["customer"].to_numpy(np.int64)),
                    "segment_id": pa.array(rows["segment_id"].astype(str).to_numpy()),
                }
            )
            layers.append((kind, table))
        _replace_memberships(wh, layers, as_of, None if base is None else base.name)
    finally:
        if base is not None:
            wh.sql("DROP VIEW IF EXISTS __ids")
        else:
            wh.con.unregister("__ids")
    segments = segmentation.segments.assign(as_of=as_of, card=segmentation.segments.apply(_card_json, axis=1))
    wh.replace_frame(SEGMENTS, segments[[c.name for c in SEGMENTS.columns]], f"as_of = {where}")
    changes = segmentation.changes
    for column in ("event", "old_id", "new_id", "basis", "shared", "overlap"):
        if column not in changes:
            changes = changes.assign(**{column: None})
    wh.replace_frame(
        SEGMENT_CHANGES,
        changes.assign(as_of=as_of)[[c.name for c in SEGMENT_CHANGES.columns]],
        f"as_of = {where}",
    )
    models = segmentation.models.assign(as_of=as_of)
    wh.replace_frame(SEGMENT_MODELS, models[[c.name for c in SEGMENT_MODELS.columns]], f"as_of = {where}")
    clustered = segments[segments["kind"].isin(list(CLUSTER_LAYERS))][["segment_id", "kind"]]
    wh.con.register("__new_ids", clustered)
    try:
        wh.sql(
            "UPDATE segment_registry SET last_as_of = greatest(last_as_of, ?), "
            "first_as_of = least(first_as_of, ?) WHERE segment_id IN (SELECT segment_id FROM __new_ids)",
            [as_of, as_of],
        )
        wh.sql(
            f"INSERT INTO {SEGMENT_REGISTRY.name} SELECT segment_id, kind, ?, ? FROM __new_ids n "
            "WHERE NOT EXISTS (SELECT 1 FROM segment_registry r WHERE r.segment_id = n.segment_id)",
            [as_of, as_of],
        )
    finally:
        wh.con.unregister("__new_ids")


def _replace_memberships(
    wh: DuckDBWarehouse, layers: list[tuple[str, pa.Table | str]], as_of: dt.date, base: str | None = None
) -> None:
    """Replace the memberships of ``as_of`` by those of every layer at once: rows of customer
    numbers and segment ids, or the name of a column of the ``base`` table."""
    names = [f"__members_{i}" for i in range(len(layers))]
    parts = []
    for name, (kind, rows) in zip(names, layers, strict=True):
        if isinstance(rows, str):
            parts.append(
                f"SELECT customer_id, ? AS as_of, {quote_literal(kind)} AS kind, "
                f"CAST({quote_ident(rows)} AS VARCHAR) AS segment_id FROM {base}"
            )
            continue
        wh.con.register(name, rows)
        parts.append(
            f"SELECT i.customer_id, ? AS as_of, {quote_literal(kind)} AS kind, "
            f"CAST(m.segment_id AS VARCHAR) AS segment_id FROM {name} m JOIN __ids i USING (customer)"
        )
    try:
        query = " UNION ALL ".join(parts)
        if not layers:
            query = "SELECT NULL AS customer_id, NULL AS as_of, NULL AS kind, NULL AS segment_id WHERE false"
        wh.replace_query(
            SEGMENT_MEMBERSHIPS, query, f"as_of = DATE '{as_of.isoformat()}'", [as_of] * len(layers)
        )
    finally:
        for name, (_, rows) in zip(names, layers, strict=True):
            if not isinstance(rows, str):
                wh.con.unregister(name)


def _replace_numbered(wh: DuckDBWarehouse, table, frame: pd.DataFrame, as_of: dt.date) -> None:
    """Replace the rows of ``as_of`` from a frame whose customer_id may be a customer number."""
    numbered = pd.api.types.is_integer_dtype(frame["customer_id"])
    wh.con.register("__rows", frame)
    try:
        columns = [c.name for c in table.columns]
        select = ", ".join(
            ("i.customer_id" if numbered else "r.customer_id")
            if c == "customer_id"
            else "? AS as_of"
            if c == "as_of"
            else f"r.{quote_ident(c)}"
            for c in columns
        )
        join = "JOIN __ids i ON i.customer = r.customer_id" if numbered else ""
        wh.replace_query(
            table, f"SELECT {select} FROM __rows r {join}", f"as_of = DATE '{as_of.isoformat()}'", [as_of]
        )
    finally:
        wh.con.unregister("__rows")


def _card_json(row: pd.Series) -> str:
    skip = {"as_of", "centroid", "card"}
    return json.dumps({k: _plain(v) for k, v in row.items() if k not in skip}, default=str)


def _plain(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value

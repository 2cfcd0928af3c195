"""Finding a segment or a customer by id: the persona card of a segment, the card of a customer,
and the one layer an id belongs to (``at_risk`` is both a lifecycle stage and an RFM tier).
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from microseg.errors import InvalidInputError
from microseg.registry import LAYERS, suggest
from microseg.warehouse import queries
from microseg.warehouse.duckdb import DuckDBWarehouse


def one_layer(segment_id: str, sizes: dict[str, int], when: str) -> str:
    """The one layer in ``sizes`` (layer -> customers), else an error that lists them.

    >>> one_layer("champions", {"rfm_tier": 120}, "")
    'rfm_tier'
    >>> one_layer("at_risk", {"lifecycle": 40, "rfm_tier": 25}, "")
    Traceback (most recent call last):
    ...
    microseg.errors.InvalidInputError: segment id 'at_risk' is in 2 layers: lifecycle (40 customers), rfm_tier (25 customers); name the layer with --kind (kind= in Python)
    """
    if len(sizes) == 1:
        return next(iter(sizes))
    listed = ", ".join(f"{layer} ({sizes[layer]:,} customers{when})" for layer in LAYERS if layer in sizes)
    raise InvalidInputError(
        f"segment id {segment_id!r} is in {len(sizes)} layers: {listed}; "
        "name the layer with --kind (kind= in Python)"
    )


def persona_card(segments: pd.DataFrame, segment_id: str, kind: str | None) -> dict:
    """The card of ``segment_id`` among ``segments`` (``Project.segments`` rows); ``kind`` names
    the layer asked for, if any (for the error messages)."""
    match = segments[segments["segment_id"] == segment_id]
    if match.empty:
        ids = sorted(segments["segment_id"].unique())
        known = ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else "")
        raise InvalidInputError(
            f"no segment {segment_id!r}{f' in {kind}' if kind else ''}{suggest(segment_id, ids)}; "
            f"segments include: {known}"
        )
    if len(match) > 1:
        one_layer(segment_id, dict(zip(match["kind"], match["size"], strict=True)), "")
    return json.loads(match.iloc[0]["card"])


def customer_card(wh: DuckDBWarehouse, customer_id: str, as_of: dt.date) -> dict:
    """The segment-of-one card of a customer on one snapshot (see ``segments.personas``)."""
    from microseg.segments.personas import customer_card as card

    profile = queries.customer_rows(wh, "customer_profiles", as_of, customer_id)
    values = queries.customer_rows(wh, "customer_values", as_of, customer_id)
    if not values.empty:
        profile = profile.merge(
            values.drop(columns=["as_of"]), on="customer_id", how="left", suffixes=("", "_v")
        )
    categories = queries.customer_rows(wh, "customer_categories", as_of, customer_id)[
        ["customer_id", "category", "spend", "share"]
    ]
    memberships = queries.customer_segments(wh, as_of, customer_id)
    return card(customer_id, profile, categories, memberships)

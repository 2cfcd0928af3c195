"""Personas: readable labels and profile cards for segments and for single customers.

A *segment card* explains one segment of a layer (one row per segment id): how big it is, what
it is worth, its lifecycle stages, categories, channels and demographics, and the features that
set it apart from the *base* (everyone in the layer). A *customer card* is the "segment of one":
one customer's stage, tiers, memberships, value, buying, favourite categories and engagement.

Distinguishing features
-----------------------
Numeric features (``NUMERIC_FEATURES``, those present in the profile) are compared with the
standardized mean difference ``(segment mean - base mean) / base standard deviation``: a Cohen's
d style effect size in units of the base's spread. Category spend shares (``category:<name>``,
each buyer's share of spend in the category; customers without spend are left out) are compared
with the difference in proportion ``segment mean share - base mean share``. NaNs are skipped
everywhere (a prospect has no average order value; it simply does not count there). Features are
ranked by strength: ``|d|`` for numeric features and Cohen's h (``2 asin sqrt p1 - 2 asin sqrt
p2``, the proportion analogue of d) for shares, ties broken by feature name, and features weaker
than ``MIN_EFFECT`` are left out. A card lists the strongest ``TOP_DISTINGUISHING``; the
``effects`` column keeps every effect size (feature -> effect size) for the labeller.

Label rules (``label_segment``)
-------------------------------
A label is up to four slots, in this order, at most ``MAX_LABEL_WORDS`` words:

1. *Lifecycle* (``STAGE_WORDS``) when one stage holds more than ``DOMINANT_STAGE`` of the
   segment: New, Active, Lapsing (at_risk), Lost (churned), Returning (reactivated),
   Prospective (prospect).
2. *Value* (effect sizes of the numeric features, threshold ``VALUE_EFFECT``):
   Bargain = low average order value and many orders (``min(-d_aov, d_orders)``),
   Loyal = many orders and a high P(alive) (``min(d_orders, d_p_alive)``),
   Big-spending = high average order value or CLV (``max(d_aov, d_clv)``),
   Occasional = few orders (``-d_orders``). The strongest word is used and a second compatible
   one joins it when it also passes ("Loyal big-spending ..."). Segments dominated by prospects
   get no value word (they never bought).
3. *Engagement* (threshold ``ENGAGEMENT_EFFECT``, the strongest only): app-first (app share or
   app events), email-engaged (email open or click rate), web-browsing (page views or web share),
   in-store (POS share), social-following (social follows).
4. *Category noun* (always present): the category whose spend share exceeds the base's the
   most, when by at least ``CATEGORY_LIFT``; otherwise the segment's top spend category. Its noun
   is the configured one (``segments.category_nouns``), a known one (``CATEGORY_NOUNS``), or
   "<category> shoppers"; a category that reads like a source code ("DRUG GM", "meat-pckgd")
   has no noun and is passed over. A segment without any such category is "customers". So the
   fallback label is "Customers" or e.g. "Garden lovers".

Words beyond the limit are dropped in this order: the second value word, the engagement word,
the lifecycle word. The first word is capitalised.

Within a layer (``segment_cards``) labels are unique and never numbered: segments are visited
from the largest, a segment whose label is taken adds its next most distinguishing unused trait
(weaker value or engagement words, a plurality stage over ``PLURALITY_STAGE``), and segments
that still read alike each get a contrast, the trait that sets it apart from the others
("Garden lovers with larger orders" against "Garden lovers buying more often"; see
``microseg.segments.labels``). Names given by the caller win and are never changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from microseg.errors import InvalidInputError, MicrosegError
from microseg.registry import STAGE_WORDS, STAGES
from microseg.segments.labels import category_name, contrast_labels, profile_phrase

__all__ = [
    "CARD_COLUMNS",
    "CATEGORY_NOUNS",
    "NUMERIC_FEATURES",
    "STAGE_WORDS",
    "UnknownCustomerError",
    "customer_card",
    "format_card",
    "label_segment",
    "segment_cards",
]

#: Numeric profile features compared with the base (those present in the profile are used).
NUMERIC_FEATURES: tuple[str, ...] = (
    "orders",
    "revenue",
    "average_order_value",
    "clv",
    "p_alive",
    "expected_purchases",
    "days_since_last_purchase",
    "days_since_first_purchase",
    "rhythm_days",
    "distinct_products",
    "returned",
    "page_views_90d",
    "email_open_rate",
    "email_click_rate",
    "app_events_90d",
    "social_follows",
    "pos_share",
    "web_share",
    "app_share",
    "age",
)
CATEGORY_PREFIX = "category:"
CHANNELS = ("pos", "web", "app")
TIER_COLUMNS = ("clv_tier", "tenure_tier", "engagement_tier")

#: Columns of ``segment_cards`` (``effects`` holds every effect size, for the labeller).
CARD_COLUMNS = (
    "segment_id",
    "kind",
    "label",
    "size",
    "share",
    "revenue_share",
    "mean_clv",
    "median_clv",
    "mean_p_alive",
    "stage_mix",
    "top_categories",
    "channels",
    "demographics",
    "distinguishing",
    "effects",
    "base",
)

TOP_DISTINGUISHING = 5
TOP_CATEGORIES = 3
TOP_REGIONS = 3
#: Effects (|d| or Cohen's h) weaker than this are not listed as distinguishing.
MIN_EFFECT = 0.1

DOMINANT_STAGE = 0.6
PLURALITY_STAGE = 0.4
VALUE_EFFECT = 0.5
ENGAGEMENT_EFFECT = 0.8
CATEGORY_LIFT = 0.10
#: Weakest evidence for a trait used only to tell two segments with the same label apart.
ALTERNATE_EFFECT = 0.2
MAX_LABEL_WORDS = 5

#: Persona noun of each product category (two words each).
CATEGORY_NOUNS: dict[str, str] = {
    "electronics": "tech buyers",
    "fashion": "fashion fans",
    "beauty": "beauty lovers",
    "home": "home makers",
    "garden": "garden lovers",
    "grocery": "grocery regulars",
    "household": "household stockers",
    "toys": "gift shoppers",
    "books": "gift shoppers",
    "sports": "sports fans",
}

#: Value words, in the order they are written ("Loyal big-spending", "Occasional big-spending").
VALUE_WORDS = ("loyal", "occasional", "big-spending", "bargain")
_INCOMPATIBLE = {
    frozenset(("big-spending", "bargain")),
    frozenset(("loyal", "occasional")),
    frozenset(("bargain", "occasional")),
}


class UnknownCustomerError(MicrosegError, KeyError):
    """The customer id is not in the profile."""

    http_status = 404

    def __init__(self, customer_id: object) -> None:
        super().__init__(f"unknown customer {customer_id!r}: not in the profile")
        self.customer_id = customer_id


# --- inputs ---------------------------------------------------------------------------------------


def _id_values(values) -> np.ndarray:
    """Customer ids as given when they are integers (fast), else as strings."""
    array = np.asarray(values)
    return array if array.dtype.kind in "iu" else array.astype(str)


def _by_customer(profile: pd.DataFrame) -> pd.DataFrame:
    """The profile indexed by ``customer_id`` (strings, or integer codes as given), one row per
    customer."""
    if (
        "customer_id" not in profile.columns
        and profile.index.is_unique
        and (pd.api.types.is_string_dtype(profile.index) or pd.api.types.is_integer_dtype(profile.index))
    ):
        return profile  # already one row per customer, indexed by id: no copy
    frame = profile.set_index("customer_id") if "customer_id" in profile.columns else profile.copy()
    frame.index = pd.Index(_id_values(frame.index), name="customer_id")
    if frame.index.has_duplicates:
        dupes = frame.index[frame.index.duplicated()].unique()[:5].tolist()
        raise InvalidInputError(f"profile has more than one row for customers {dupes}")
    return frame


def _long_categories(categories: pd.DataFrame | None) -> pd.DataFrame:
    """``customer_id, category, spend`` with ids as in ``_id_values`` and string categories."""
    if categories is None or len(categories) == 0:
        return pd.DataFrame({"customer_id": pd.Series(dtype=str), "category": [], "spend": []})
    value = "spend" if "spend" in categories.columns else "share"
    out = pd.DataFrame(
        {
            "customer_id": _id_values(categories["customer_id"]),
            "category": categories["category"].fillna("unknown").astype(str).to_numpy(),
            "spend": pd.to_numeric(categories[value], errors="coerce").fillna(0.0).to_numpy(float),
        }
    )
    return out


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return pd.Series(values.to_numpy(dtype=float, na_value=np.nan), index=frame.index)
    return pd.to_numeric(values, errors="coerce").astype(float)


def _members(membership: pd.Series, profile: pd.DataFrame) -> pd.Series:
    """Segment id of each member (string customer ids), checked against the profile."""
    if not isinstance(membership, pd.Series):
        raise TypeError("membership must be a pandas Series of segment ids indexed by customer_id")
    members = membership.dropna()
    members.index = pd.Index(_id_values(members.index), name=members.index.name)
    if members.index.has_duplicates:
        dupes = members.index[members.index.duplicated()].unique()[:5].tolist()
        raise InvalidInputError(
            f"membership lists customers {dupes} more than once; one layer gives one segment"
        )
    unknown = members.index.difference(profile.index)
    if len(unknown):
        raise InvalidInputError(
            f"membership has {len(unknown)} customers not in the profile, e.g. {unknown[:5].tolist()}"
        )
    return members


def _clean(value: Any) -> Any:
    """Python scalars, with None for missing values."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _top(weights: pd.Series, n: int) -> list[tuple[str, float]]:
    """The ``n`` largest shares of a weight series (ties by name); empty when nothing is positive."""
    weights = weights[weights > 0]
    total = weights.sum()
    if total <= 0:
        return []
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], str(kv[0])))
    return [(str(k), float(v / total)) for k, v in ranked[:n]]


# --- segment cards --------------------------------------------------------------------------------


@dataclass
class PersonaContext:
    """The profile as NumPy arrays, built once and shared by the cards of every layer.

    The averaged columns (numeric features, the extra card columns and the category shares) are
    kept centred on their overall mean with missing values as 0 (``filled``) next to a 0/1 matrix
    of which values are known (``known``): one sparse product then gives every segment's sums,
    sums of squares and counts.
    """

    index: pd.Index
    feature_names: list[str]
    category_names: list[str]
    columns: dict[str, int]  # averaged column -> position in filled / known
    center: np.ndarray
    filled: np.ndarray  # customers x columns: value - center, 0 where missing
    known: np.ndarray  # customers x columns: 1.0 where the value is known
    revenue: np.ndarray
    clv: np.ndarray
    spend: np.ndarray  # customers x categories
    codes: dict[str, tuple[np.ndarray, list[str]]]  # stage / gender / region: value code per customer, values
    attributes: dict[str, Any] = field(default_factory=dict)  # declared attributes in the profile
    once: np.ndarray | None = None  # 1.0 for customers who bought on one day only


#: Columns whose member counts per value the cards show, and the value of a missing one (None:
#: a customer without a value is not counted).
MIX_COLUMNS: dict[str, str | None] = {
    "stage": "unknown",
    "gender": "unknown",
    "region": None,
    "country": None,
}
#: Averaged columns the cards read besides the compared features.
CARD_EXTRAS = ("clv", "p_alive", "age", *(f"{c}_share" for c in CHANNELS))


@dataclass(frozen=True)
class CardColumns:
    """Which of a profile's columns the cards read: the declared attributes present, the
    compared features, every averaged column, and the mix columns (with their missing value)."""

    declared: dict[str, Any]
    features: list[str]
    averaged: list[str]
    mixes: dict[str, str | None]

    @classmethod
    def of(cls, columns, attributes: Mapping[str, Any] | None = None) -> CardColumns:
        present = set(columns)
        declared = {name: a for name, a in (attributes or {}).items() if name in present}
        features = [f for f in NUMERIC_FEATURES if f in present]
        features += [n for n, a in declared.items() if a.type == "numeric" and n not in features]
        banded = {n: "unknown" for n, a in declared.items() if a.type != "numeric"}
        mixes = {c: m for c, m in {**MIX_COLUMNS, **banded}.items() if c in present}
        return cls(declared, features, features + [c for c in CARD_EXTRAS if c not in features], mixes)


def persona_context(
    profile: pd.DataFrame, categories: pd.DataFrame | None, attributes: Mapping[str, Any] | None = None
) -> PersonaContext:
    """Everything ``segment_cards`` reads, for all customers of ``profile``; ``attributes`` are
    the declared attributes (``microseg.config.AttributeConfig`` by name) found in its columns."""
    prof = _by_customer(profile)
    index = prof.index
    read = CardColumns.of(prof.columns, attributes)
    declared, names = read.declared, read.features
    codes = {}
    for column, missing in read.mixes.items():
        values = pd.Categorical(prof[column])  # a no-op for categorical columns
        code, uniques = np.asarray(values.codes), [str(c) for c in values.categories]
        if missing is not None and (code < 0).any():
            if missing not in uniques:
                uniques.append(missing)
            code = np.where(code < 0, uniques.index(missing), code)
        if not uniques:  # nothing known
            codes[column] = (code, [])
            continue
        order = np.argsort(uniques, kind="stable")  # values by name
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        codes[column] = (np.where(code >= 0, rank[np.maximum(code, 0)], -1), [uniques[i] for i in order])

    long = _long_categories(categories)
    row = index.get_indexer(long["customer_id"])
    keep = row >= 0
    cat_code, cat_names = pd.factorize(long["category"].to_numpy()[keep], sort=True)
    spend = np.bincount(
        row[keep] * len(cat_names) + cat_code,
        weights=long["spend"].to_numpy(float)[keep],
        minlength=len(index) * len(cat_names),
    ).reshape(len(index), len(cat_names))
    total = spend.sum(axis=1, keepdims=True)

    numeric = read.averaged
    category_columns = [CATEGORY_PREFIX + str(c) for c in cat_names]
    values = np.empty((len(index), len(numeric) + len(category_columns)))
    for j, column in enumerate(numeric):
        values[:, j] = _numeric(prof, column).to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        values[:, len(numeric) :] = np.where(total > 0, spend / np.where(total > 0, total, 1.0), np.nan)
    known = ~np.isnan(values)
    counts = known.sum(axis=0)
    sums = np.where(known, values, 0.0).sum(axis=0)
    center = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    values -= center
    values[~known] = 0.0
    return PersonaContext(
        index=index,
        feature_names=names,
        category_names=[str(c) for c in cat_names],
        columns={c: j for j, c in enumerate(numeric + category_columns)},
        center=center,
        filled=values,
        known=known.astype(float),
        revenue=_numeric(prof, "revenue").fillna(0.0).to_numpy(float),
        clv=_numeric(prof, "clv").to_numpy(float),
        spend=spend,
        codes=codes,
        attributes=declared,
        once=(_numeric(prof, "transactions") == 1).to_numpy(float),
    )


@dataclass
class _Stats:
    """Mean, count and spread of every averaged column, per segment and over all members."""

    mean: np.ndarray  # segments x columns (NaN: no known value)
    count: np.ndarray  # segments x columns
    base_mean: np.ndarray
    base_sd: np.ndarray

    @classmethod
    def of(cls, context: PersonaContext, rows: slice | np.ndarray, groups: sparse.csr_matrix) -> _Stats:
        filled, known = context.filled[rows], context.known[rows] > 0
        with np.errstate(invalid="ignore"):
            constant = np.where(known, filled, np.inf).min(axis=0) >= np.where(known, filled, -np.inf).max(
                axis=0
            )
        return cls.from_sums(
            context.center,
            groups @ filled,
            groups @ np.square(filled),
            groups @ context.known[rows],
            constant,
        )

    @classmethod
    def from_sums(
        cls,
        center: np.ndarray,
        sums: np.ndarray,
        squares: np.ndarray,
        count: np.ndarray,
        constant: np.ndarray | None = None,
    ) -> _Stats:
        """The statistics from per-segment sums of the known values' differences from
        ``center``, sums of their squares, and counts (segments x columns); the base is every
        segment's members together. ``constant`` marks the columns whose known values are all
        the same in the base: their spread is 0 (rather than the rounding error of the sums)."""
        total, total_squares, n = sums.sum(axis=0), squares.sum(axis=0), count.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, center + sums / np.where(count > 0, count, 1), np.nan)
            base_mean = np.where(n > 0, center + total / np.where(n > 0, n, 1), np.nan)
            variance = (total_squares - total * total / np.where(n > 0, n, 1)) / np.where(n > 1, n - 1, 1)
            base_sd = np.where(n > 1, np.sqrt(np.maximum(variance, 0.0)), np.nan)
        if constant is not None:
            base_sd = np.where(constant & (n > 1), 0.0, base_sd)
        return cls(mean, count, base_mean, base_sd)

    def column(self, context: PersonaContext, name: str) -> np.ndarray:
        return self.mean[:, context.columns[name]]


def _effects(
    context: PersonaContext, stats: _Stats, k: int
) -> list[tuple[dict[str, float], list[dict[str, Any]]]]:
    """Per segment code: every effect size and the ranked distinguishing features."""
    out = []
    for code in range(k):
        candidates: list[tuple[float, str, float, float, float, str]] = []
        for feature in context.feature_names:
            j = context.columns[feature]
            sd, mean, seg = stats.base_sd[j], stats.base_mean[j], stats.mean[code, j]
            if stats.count[code, j] == 0 or not np.isfinite(sd) or sd <= 1e-12 * max(1.0, abs(mean)):
                continue
            d = float((seg - mean) / sd)
            candidates.append((abs(d), feature, float(seg), float(mean), d, "numeric"))
        for category in context.category_names:
            j = context.columns[CATEGORY_PREFIX + category]
            p1, p0 = stats.mean[code, j], stats.base_mean[j]
            if not (np.isfinite(p1) and np.isfinite(p0)):
                continue
            h = 2 * math.asin(math.sqrt(min(max(p1, 0.0), 1.0))) - 2 * math.asin(
                math.sqrt(min(max(p0, 0.0), 1.0))
            )
            candidates.append(
                (abs(h), CATEGORY_PREFIX + category, float(p1), float(p0), float(p1 - p0), "category")
            )
        candidates.sort(key=lambda c: (-c[0], c[1]))
        effects = {c[1]: c[4] for c in candidates}
        distinguishing = [
            {"feature": f, "segment_mean": s, "base_mean": b, "effect_size": e, "kind": kind}
            for strength, f, s, b, e, kind in candidates
            if strength >= MIN_EFFECT
        ][:TOP_DISTINGUISHING]
        out.append((effects, distinguishing))
    return out


def _mix_table(context: PersonaContext, column: str, rows: np.ndarray, codes: np.ndarray, k: int):
    """(segments x values) counts of a categorical column, and the value names."""
    if column not in context.codes:
        return None, []
    values, names = context.codes[column]
    values = values[rows]
    known = values >= 0
    table = np.bincount(codes[known] * len(names) + values[known], minlength=k * len(names)).reshape(
        k, len(names)
    )
    return table, names


def _top_places(table, names: list[str], code: int, size: int) -> list[tuple[str, float]]:
    """The ``TOP_REGIONS`` most common places of a segment with their shares of its customers."""
    if table is None:
        return []
    counts = table[code]
    present = sorted(((names[i], counts[i]) for i in np.flatnonzero(counts)), key=lambda kv: (-kv[1], kv[0]))
    return [(place, float(n / size)) for place, n in present[:TOP_REGIONS]]


def _mix_of(counts: np.ndarray, names: list[str], order: tuple[str, ...] = ()) -> dict[str, float]:
    total = counts.sum()
    if total <= 0:
        return {}
    present = {names[i]: counts[i] for i in np.flatnonzero(counts)}
    known = [v for v in order if v in present]
    rest = sorted((v for v in present if v not in order), key=lambda v: (-present[v], v))
    return {v: float(present[v] / total) for v in known + rest}


@dataclass
class LayerStats:
    """What the cards of one layer's ``k`` segments are written from: per-segment aggregates
    only (sizes, sums, counts, medians), from :func:`layer_stats` on NumPy arrays or from the
    engine (``microseg.segments.persona_stats``)."""

    segment_ids: list[Any]
    sizes: np.ndarray  # members per segment
    revenue: np.ndarray  # the members' revenue per segment
    stats: _Stats
    median_clv: np.ndarray
    spend: np.ndarray  # segments x categories: the members' spend
    # column (stage, gender, region, country, banded attributes) -> (segments x values) member
    # counts and the value names; (None, []) when the profile has no such column
    mixes: dict[str, tuple[np.ndarray | None, list[str]]]
    once: np.ndarray | None = None  # members per segment who bought on one day only

    def measures(self, context: PersonaContext) -> dict[str, dict[str, float]]:
        """Segment id -> its members' shares of churned and at-risk customers, mean P(alive)
        and CLV, and share of one-time buyers (what ``segments.checks`` judges)."""
        table, names = self.mixes.get("stage", (None, []))
        p_alive, clv = self.stats.column(context, "p_alive"), self.stats.column(context, "clv")
        out = {}
        for i, sid in enumerate(self.segment_ids):
            size = max(int(self.sizes[i]), 1)
            counts = dict(zip(names, table[i], strict=True)) if table is not None else {}
            out[str(sid)] = {
                "churned": float(counts.get("churned", 0) / size),
                "at_risk": float(counts.get("at_risk", 0) / size),
                "p_alive": float(p_alive[i]),
                "clv": float(clv[i]),
                "one_time": float(self.once[i] / size) if self.once is not None else 0.0,
            }
        return out


def layer_stats(context: PersonaContext, membership: pd.Series) -> LayerStats | None:
    """The aggregates of the segments of ``membership`` (customer id -> segment id) over the
    arrays of ``context``; None when the membership is empty."""
    members = _members(membership, pd.DataFrame(index=context.index))
    if members.empty:
        return None
    ids = members.index
    rows = slice(None) if ids.equals(context.index) else context.index.get_indexer(ids)
    codes, uniques = pd.factorize(members, sort=False)
    k = len(uniques)
    groups = sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(k, len(codes)))
    mixes = {
        column: _mix_table(context, column, rows, codes, k)
        for column in ("stage", "gender", "region", "country", *context.attributes)
    }
    return LayerStats(
        segment_ids=list(uniques),
        sizes=np.bincount(codes, minlength=k),
        revenue=groups @ context.revenue[rows],
        stats=_Stats.of(context, rows, groups),
        median_clv=_group_medians(context.clv[rows], codes, k),
        spend=groups @ context.spend[rows],
        mixes=mixes,
        once=groups @ context.once[rows] if context.once is not None else None,
    )


def segment_cards(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    membership: pd.Series,
    *,
    kind: str,
    names: Mapping[str, str] | None = None,
    context: PersonaContext | None = None,
    base: str = "the layer",
    nouns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One card per segment of one layer (columns ``CARD_COLUMNS``), largest segment first.

    ``membership`` maps customer id to segment id; customers absent from it (or with a missing
    segment id) are outside every segment of the layer and not in the base. Sizes add up to the
    number of members and ``share`` to 1; ``revenue_share`` is the share of the members' total
    revenue (NaN when they have none). ``names`` (segment id as a string -> name) replaces the
    generated label of those segments; generated labels are unique within the layer.
    ``context`` (from :func:`persona_context` on the same profile and categories) saves building
    it again when several layers are described; ``base`` names the customers the segments are
    compared with (the members of ``membership``), for the card; ``nouns`` give readable persona
    nouns of product categories (``segments.category_nouns``).
    """
    context = context or persona_context(profile, categories)
    stats = layer_stats(context, membership)
    if stats is None:
        return pd.DataFrame(columns=list(CARD_COLUMNS))
    return cards_of(context, stats, kind=kind, names=names, base=base, nouns=nouns)


def cards_of(
    context: PersonaContext,
    layer: LayerStats,
    *,
    kind: str,
    names: Mapping[str, str] | None = None,
    base: str = "the layer",
    nouns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The cards (``segment_cards``) of the segments whose aggregates are ``layer``;
    ``context`` gives the names of the features, categories and attributes."""
    k, sizes, stats = len(layer.segment_ids), layer.sizes, layer.stats
    members = int(sizes.sum())
    seg_revenue = layer.revenue
    total_revenue = float(seg_revenue.sum())
    mean_clv = stats.column(context, "clv")
    median_clv = layer.median_clv
    p_alive = stats.column(context, "p_alive")
    age_means = stats.column(context, "age")
    channel_means = {c: stats.column(context, f"{c}_share") for c in CHANNELS}
    effects = _effects(context, stats, k)
    spend = layer.spend
    stage_table, stage_names = layer.mixes.get("stage", (None, []))
    gender_table, gender_names = layer.mixes.get("gender", (None, []))
    region_table, region_names = layer.mixes.get("region", (None, []))
    country_table, country_names = layer.mixes.get("country", (None, []))
    if len(country_names) < 2:  # everybody in one country: nothing to tell segments apart by
        country_table = None
    attribute_tables = {
        name: layer.mixes[name]
        for name in context.attributes
        if layer.mixes.get(name, (None, []))[0] is not None
    }
    attribute_means = {
        name: stats.column(context, name) for name in context.attributes if name in context.columns
    }

    cards_rows = []
    for code in range(k):
        demographics = {
            "mean_age": _clean(age_means[code]),
            "gender": _mix_of(gender_table[code], gender_names) if gender_table is not None else {},
            "top_regions": _top_places(region_table, region_names, code, sizes[code]),
            "top_countries": _top_places(country_table, country_names, code, sizes[code]),
        }
        if context.attributes:
            demographics["attributes"] = {
                name: _clean(attribute_means[name][code])
                if name in attribute_means
                else _attribute_mix(attribute_tables.get(name, (None, [])), code, context.attributes[name])
                for name in context.attributes
            }
        cards_rows.append(
            {
                "segment_id": layer.segment_ids[code],
                "kind": kind,
                "label": "",
                "size": int(sizes[code]),
                "share": float(sizes[code] / members),
                "revenue_share": float(seg_revenue[code] / total_revenue)
                if total_revenue > 0
                else float("nan"),
                "mean_clv": float(mean_clv[code]),
                "median_clv": float(median_clv[code]),
                "mean_p_alive": float(p_alive[code]),
                "stage_mix": _mix_of(stage_table[code], stage_names, STAGES)
                if stage_table is not None
                else {},
                "top_categories": _top(pd.Series(spend[code], index=context.category_names), TOP_CATEGORIES),
                "channels": {c: _clean(channel_means[c][code]) for c in CHANNELS},
                "demographics": demographics,
                "distinguishing": effects[code][1],
                "effects": effects[code][0],
                "base": base,
            }
        )
    cards = pd.DataFrame(cards_rows, columns=list(CARD_COLUMNS))
    order = sorted(range(k), key=lambda i: (-cards.at[i, "size"], str(cards.at[i, "segment_id"])))
    cards = cards.iloc[order].reset_index(drop=True)
    cards["label"] = _unique_labels(cards, names or {}, nouns, context.attributes)
    return cards


def _attribute_mix(table: tuple[np.ndarray | None, list[str]], code: int, attribute: Any) -> dict[str, float]:
    """Shares of a banded attribute's values in one segment: bands in their order, other values
    by share (the three largest)."""
    counts, names = table
    if counts is None:
        return {}
    mix = _mix_of(counts[code], names, tuple(attribute.order))
    if attribute.type == "ordinal":
        return mix
    return dict(list(mix.items())[:TOP_CATEGORIES])


def _group_medians(values: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Median of the non-missing values per code (NaN for a code without any)."""
    known = ~np.isnan(values)
    return pd.Series(values[known]).groupby(codes[known]).median().reindex(range(k)).to_numpy(float)


# --- labels ---------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """The words of a label by slot, and the unused traits (slot, word, strength), strongest first."""

    noun: str
    lifecycle: str | None = None
    values: list[str] = field(default_factory=list)
    engagement: str | None = None
    alternates: list[tuple[str, str, float]] = field(default_factory=list)

    def compose(self) -> str:
        values = sorted(self.values, key=VALUE_WORDS.index)
        parts = {
            "lifecycle": self.lifecycle,
            "value": values[0] if values else None,
            "value2": None,
            "engagement": self.engagement,
        }
        if len(values) > 1:
            parts["value2"] = values[1]

        def words() -> list[str]:
            order = [parts["lifecycle"], parts["value"], parts["value2"], parts["engagement"]]
            return [w for w in order if w] + self.noun.split()

        for slot in ("value2", "engagement", "lifecycle", "value"):
            if len(words()) <= MAX_LABEL_WORDS:
                break
            parts[slot] = None
        out = [w.lower() if w in STAGE_WORDS.values() else w for w in words()]
        text = " ".join(out)
        return text[:1].upper() + text[1:]


def _field(row: Any, name: str, default: Any) -> Any:
    value = row.get(name, default) if hasattr(row, "get") else getattr(row, name, default)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    return value


def _effect_sizes(row: Any) -> dict[str, float]:
    effects = _field(row, "effects", None)
    if not effects:
        effects = {d["feature"]: d["effect_size"] for d in _field(row, "distinguishing", [])}
    return {f: float(e) for f, e in effects.items() if e is not None and np.isfinite(e)}


def _noun(category: str | None, nouns: Mapping[str, str] | None = None) -> str | None:
    """The persona noun of a category: configured, known, or "<first word> shoppers" when the
    name reads as words; None when it reads like a source code (it stays out of labels)."""
    if category is None:
        return None
    nouns = nouns or {}
    configured = nouns.get(category) or nouns.get(category.casefold())
    if configured:
        return configured
    known = CATEGORY_NOUNS.get(category.casefold())
    if known:
        return known
    words = category_name(category)
    return f"{words.split()[0]} shoppers" if words else None


def _plan(row: Any, nouns: Mapping[str, str] | None = None) -> _Plan:
    effects = _effect_sizes(row)

    def d(feature: str) -> float:
        return effects.get(feature, 0.0)

    # category noun: the most over-represented category that has a noun, else the top spend
    # category that has one (codes from the source system have none unless configured)
    lifts = sorted(
        ((e, f[len(CATEGORY_PREFIX) :]) for f, e in effects.items() if f.startswith(CATEGORY_PREFIX)),
        key=lambda t: (-t[0], t[1]),
    )
    candidates = [c for e, c in lifts if e >= CATEGORY_LIFT]
    candidates += [str(c) for c, _ in _field(row, "top_categories", [])[:1]]
    noun = next((n for n in (_noun(c, nouns) for c in candidates) if n), "customers")
    plan = _Plan(noun=noun)

    # lifecycle: the dominant stage
    stages = sorted(_field(row, "stage_mix", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    stage = stages[0] if stages else None
    if stage and stage[1] > DOMINANT_STAGE and stage[0] in STAGE_WORDS:
        plan.lifecycle = STAGE_WORDS[stage[0]]
    elif stage and stage[1] > PLURALITY_STAGE and stage[0] in STAGE_WORDS:
        plan.alternates.append(("lifecycle", STAGE_WORDS[stage[0]], stage[1] - PLURALITY_STAGE))

    # value: combinations first when they pass, then by strength
    value = {}
    if not (stage and stage[0] == "prospect" and stage[1] > DOMINANT_STAGE):
        value = {
            "bargain": min(-d("average_order_value"), d("orders")),
            "loyal": min(d("orders"), d("p_alive")),
            "big-spending": max(d("average_order_value"), d("clv")),
            "occasional": -d("orders"),
        }
    ranked = sorted(value.items(), key=lambda kv: (-kv[1], VALUE_WORDS.index(kv[0])))
    for word, strength in ranked:
        compatible = all(frozenset((word, w)) not in _INCOMPATIBLE for w in plan.values)
        if strength >= VALUE_EFFECT and compatible and len(plan.values) < 2:
            plan.values.append(word)
        elif strength >= ALTERNATE_EFFECT:
            plan.alternates.append(("value", word, strength))

    # engagement: the strongest, when strong
    engagement = {
        "app-first": max(d("app_share"), d("app_events_90d")),
        "email-engaged": max(d("email_open_rate"), d("email_click_rate")),
        "web-browsing": max(d("page_views_90d"), d("web_share")),
        "in-store": d("pos_share"),
        "social-following": d("social_follows"),
    }
    for word, strength in sorted(engagement.items(), key=lambda kv: (-kv[1], kv[0])):
        if strength >= ENGAGEMENT_EFFECT and plan.engagement is None:
            plan.engagement = word
        elif strength >= ALTERNATE_EFFECT:
            plan.alternates.append(("engagement", word, strength))

    plan.alternates.sort(key=lambda a: (-a[2], a[0], a[1]))
    return plan


def label_segment(card_row: Mapping[str, Any] | pd.Series, nouns: Mapping[str, str] | None = None) -> str:
    """A short readable label (at most ``MAX_LABEL_WORDS`` words) for one segment card.

    Reads ``stage_mix``, ``top_categories`` and the effect sizes (``effects``, else
    ``distinguishing``) of the card; ``nouns`` are configured category nouns. See the module
    docstring for the rules. The label is not made unique here: ``segment_cards`` does that for
    a whole layer.
    """
    return _plan(card_row, nouns).compose()


def _unique_labels(
    cards: pd.DataFrame,
    names: Mapping[str, str],
    nouns: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> list[str]:
    """Generated labels, unique within the layer (case-insensitive) without numerals; given
    names win. Look-alikes first take their next distinguishing trait; those still alike get a
    contrast (``microseg.segments.labels``)."""
    named = {i: names[str(sid)] for i, sid in enumerate(cards["segment_id"]) if str(sid) in names}
    taken = {name.casefold() for name in named.values()}
    labels = []
    for i in range(len(cards)):
        if i in named:
            labels.append(named[i])
            continue
        plan = _plan(cards.iloc[i], nouns)
        label = plan.compose()
        refined = replace(plan, values=list(plan.values))
        for slot, word, _ in plan.alternates:
            if label.casefold() not in taken:
                break
            if slot == "value" and len(refined.values) < 2 and word not in refined.values:
                if any(frozenset((word, w)) in _INCOMPATIBLE for w in refined.values):
                    continue
                refined.values.append(word)
            elif slot == "engagement" and refined.engagement is None:
                refined.engagement = word
            elif slot == "lifecycle" and refined.lifecycle is None:
                refined.lifecycle = word
            else:
                continue
            label = refined.compose()
        taken.add(label.casefold())
        labels.append(label)
    effects = [_effect_sizes(cards.iloc[i]) for i in range(len(cards))]
    return contrast_labels(
        labels, effects, _phrases(attributes or {}), fixed=[i in named for i in range(len(cards))]
    )


def _phrases(attributes: Mapping[str, Any]):
    """The contrast phrase of a feature: a profile feature, a category, or a numeric attribute."""

    def phrase(feature: str, higher: bool) -> str | None:
        attribute = attributes.get(feature)
        if attribute is not None:
            return attribute.phrase("higher" if higher else "lower")
        return profile_phrase(feature, higher)

    return phrase


# --- customer cards -------------------------------------------------------------------------------


def _score(value: Any) -> Any:
    """RFM scores as integers when they are whole numbers (they arrive as floats beside NaNs)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _segment_label(labels: Mapping[str, str], kind: str, segment_id: Any) -> str | None:
    for key in (f"{kind}:{segment_id}", str(segment_id)):
        if key in labels:
            return labels[key]
    return None


def customer_card(
    customer_id: Any,
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    memberships: pd.DataFrame | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The card of one customer: a plain dict (missing values are None).

    ``memberships`` is long (``customer_id, kind, segment_id``, optionally ``label``);
    ``labels`` maps ``"<kind>:<segment_id>"`` or ``"<segment_id>"`` to a segment label.
    Raises ``UnknownCustomerError`` (a ``KeyError``) when the customer is not in the profile.
    """
    prof = _by_customer(profile)
    key = str(customer_id)
    if key not in prof.index:
        raise UnknownCustomerError(customer_id)
    row = prof.loc[key]

    def value(name: str) -> Any:
        return _clean(row[name]) if name in row.index else None

    def number(name: str) -> float | None:
        v = value(name)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    segments = []
    if memberships is not None and len(memberships):
        mine = memberships[memberships["customer_id"].astype(str) == key]
        for _, m in mine.iterrows():
            label = _clean(m["label"]) if "label" in mine.columns else None
            if label is None:
                label = _segment_label(labels or {}, str(m["kind"]), m["segment_id"])
            segments.append({"kind": str(m["kind"]), "segment_id": _clean(m["segment_id"]), "label": label})
        segments.sort(key=lambda s: (s["kind"], str(s["segment_id"])))

    long = _long_categories(categories)
    spend = long[long["customer_id"] == key].groupby("category")["spend"].sum()
    channels = {c: number(f"{c}_share") for c in CHANNELS}
    known = {c: s for c, s in channels.items() if s is not None}
    preferred = (
        max(known, key=lambda c: (known[c], -CHANNELS.index(c)))
        if known and max(known.values()) > 0
        else None
    )
    orders = value("orders")
    return {
        "card": "customer",
        "customer_id": key,
        "stage": value("stage"),
        "tiers": {t: value(t) for t in TIER_COLUMNS if t in row.index},
        "rfm": {
            "segment": value("rfm_segment"),
            "r_score": _score(value("r_score")),
            "f_score": _score(value("f_score")),
            "m_score": _score(value("m_score")),
        },
        "segments": segments,
        "clv": number("clv"),
        "p_alive": number("p_alive"),
        "churn_risk": number("churn_risk"),
        "expected_purchases": number("expected_purchases"),
        "expected_spend": number("expected_spend"),
        "orders": int(orders) if orders is not None else None,
        "revenue": number("revenue"),
        "average_order_value": number("average_order_value"),
        "days_since_last_purchase": number("days_since_last_purchase"),
        "favourite_categories": _top(spend, TOP_CATEGORIES),
        "channels": channels,
        "preferred_channel": preferred,
        "engagement": {
            "page_views_90d": value("page_views_90d"),
            "email_open_rate": number("email_open_rate"),
            "app_events_90d": value("app_events_90d"),
        },
        "traits": {t: value(t) for t in ("gender", "age", "region", "country") if t in row.index},
    }


# --- text -----------------------------------------------------------------------------------------


def _money(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:,.2f}"


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.0f}%"


def _pairs(items: Any) -> str:
    pairs = items.items() if isinstance(items, Mapping) else items
    text = ", ".join(f"{k} {_pct(v)}" for k, v in pairs)
    return text or "-"


def _format_segment(card: Mapping[str, Any]) -> str:
    demo = card.get("demographics") or {}
    age = demo.get("mean_age")
    lines = [
        f"Segment {card['segment_id']} ({card.get('kind', '-')}): {card.get('label') or label_segment(card)}",
        f"  size: {card['size']:,} customers ({_pct(card.get('share'))} of the layer), "
        f"{_pct(card.get('revenue_share'))} of revenue",
        f"  value: mean CLV {_money(card.get('mean_clv'))}, median CLV {_money(card.get('median_clv'))}, "
        f"mean P(alive) {_money(card.get('mean_p_alive'))}",
        f"  stages: {_pairs(card.get('stage_mix') or {})}",
    ]
    # lines the data say nothing about (no categories, channels or demographics) are left out
    categories = [(c, v) for c, v in card.get("top_categories") or [] if c != "unknown"]
    if categories:
        lines.append(f"  top categories: {_pairs(categories)}")
    channels = {c: v for c, v in (card.get("channels") or {}).items() if v is not None}
    if channels:
        lines.append(f"  channels: {_pairs(channels)}")
    gender = {g: v for g, v in (demo.get("gender") or {}).items() if g != "unknown"}
    people = [f"mean age {age:.1f}"] if age is not None else []
    if gender:
        people.append(f"gender {_pairs(demo.get('gender'))}")
    for key, name in (("top_regions", "regions"), ("top_countries", "countries")):
        if demo.get(key):
            people.append(f"{name} {_pairs(demo[key])}")
    if people:
        lines.append(f"  demographics: {'; '.join(people)}")
    if demo.get("attributes"):
        lines.append(f"  attributes: {_attributes_text(demo['attributes'])}")
    model = card.get("model")
    if model:
        lines.append(
            f"  model: {model['status']}, fitted on {model.get('fitted_as_of') or '-'}; "
            f"{model.get('segments', '-')} segments, stability across seeds {model['stability']:.2f}, "
            f"silhouette {model['silhouette']:.2f}"
        )
    lines.append(f"  what sets them apart from {card.get('base') or 'the layer'}:")
    distinguishing = card.get("distinguishing") or []
    for d in distinguishing:
        if d.get("kind") == "category" or str(d["feature"]).startswith(CATEGORY_PREFIX):
            lines.append(
                f"    {d['feature']:<28} {_pct(d['segment_mean'])} vs {_pct(d['base_mean'])} "
                f"({100 * d['effect_size']:+.0f} pts)"
            )
        else:
            lines.append(
                f"    {d['feature']:<28} {d['segment_mean']:,.2f} vs {d['base_mean']:,.2f} "
                f"({d['effect_size']:+.2f} sd)"
            )
    if not distinguishing:
        lines.append("    nothing stands out")
    lines += [f"  note: {note}" for note in card.get("notes") or []]
    return "\n".join(lines)


def _attributes_text(attributes: Mapping[str, Any]) -> str:
    """Declared attributes of a segment: value shares, or the mean of a numeric one."""
    parts = []
    for name, value in attributes.items():
        if isinstance(value, Mapping):
            parts.append(f"{name} {_pairs(value)}")
        else:
            parts.append(f"{name} mean {'-' if value is None else f'{value:,.2f}'}")
    return "; ".join(parts)


def _format_customer(card: Mapping[str, Any]) -> str:
    def show(v: Any) -> str:
        return "-" if v is None else str(v)

    segments = "; ".join(
        f"{s['kind']} {s['segment_id']}" + (f' "{s["label"]}"' if s.get("label") else "")
        for s in card["segments"]
    )
    tiers = ", ".join(f"{k} {show(v)}" for k, v in card["tiers"].items())
    rfm = card["rfm"]
    eng = card["engagement"]
    days = card["days_since_last_purchase"]
    traits = ", ".join(f"{k} {show(v)}" for k, v in card["traits"].items())
    return "\n".join(
        [
            f"Customer {card['customer_id']}: stage {show(card['stage'])}",
            f"  segments: {segments or '-'}",
            f"  tiers: {tiers or '-'}; RFM {show(rfm['segment'])} "
            f"(R{show(rfm['r_score'])} F{show(rfm['f_score'])} M{show(rfm['m_score'])})",
            f"  value: CLV {_money(card['clv'])}, P(alive) {_money(card['p_alive'])}, "
            f"expected purchases {_money(card['expected_purchases'])}",
            f"  buying: {show(card['orders'])} orders, revenue {_money(card['revenue'])}, "
            f"average order {_money(card['average_order_value'])}, "
            f"last purchase {'-' if days is None else f'{days:.0f} days ago'}",
            f"  favourite categories: {_pairs(card['favourite_categories'])}",
            f"  preferred channel: {show(card['preferred_channel'])} ({_pairs(card['channels'])})",
            f"  engagement: {show(eng['page_views_90d'])} page views (90d), "
            f"email open rate {_pct(eng['email_open_rate'])}, {show(eng['app_events_90d'])} app events (90d)",
            f"  traits: {traits or '-'}",
        ]
    )


def format_card(card: Mapping[str, Any] | pd.Series) -> str:
    """Plain text of a customer card (``customer_card``) or a segment card (a row of
    ``segment_cards``, as a Series or a dict)."""
    if isinstance(card, pd.Series):
        card = card.to_dict()
    if card.get("card") == "customer":
        return _format_customer(card)
    if "segment_id" in card:
        return _format_segment(card)
    raise InvalidInputError("not a card: expected a customer_card() dict or a segment_cards() row")

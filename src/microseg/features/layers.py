"""Feature matrices for the clustering layers, from the customer profile.

* **behavioural**: how much, how often and how a customer buys (orders, order value, rhythm),
  what they buy and browse (shares of spend and of page views by category), where (channel
  shares) and how they engage (web, email, app, social, per month known);
* **demographic**: who the customer is, whatever their lifecycle stage: age, gender, region,
  country, acquisition channel and the attributes declared in ``[attributes]``.

Counts are log-scaled, missing values get neutral fills (0 for activity, the median for a
rhythm, an age or a numeric attribute), categorical traits become indicator columns for their
most common values, ordinal bands their rank between 0 and 1. Columns are sorted by name so the
same data always gives the same matrix.

Every matrix comes with its *spec*: the fills and the values that became columns. A model kept
from an earlier snapshot builds its features again from its own spec, so a customer whose
inputs did not change gets the same feature values, whatever happened to the rest of the
population (a new median, a category that moved into the top twelve). The spec's ``sources``
(the kinds of input used) tell whether the inputs themselves changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from microseg.engine.expressions import number
from microseg.errors import InvalidInputError

TOP_VALUES = 12
#: Traits of the customers table that describe who a customer is, and their column prefix.
DEMOGRAPHIC_TRAITS = {
    "gender": "gender",
    "region": "region",
    "country": "country",
    "acquisition_channel": "acquired",
}


@dataclass
class FeatureSet:
    """A feature matrix with what it takes to build it again.

    ``groups`` names the group of every column (columns of one group share a scale when
    clustered: the indicators of one trait), ``weights`` the weight of every column, ``spec``
    the recipe (JSON-friendly) and ``sources`` the kinds of input it reads.
    """

    matrix: pd.DataFrame
    groups: list[str]
    weights: list[float]
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def sources(self) -> list[str]:
        return list(self.spec.get("sources", []))


def _log(profile: pd.DataFrame, column: str) -> pd.Series:
    return np.log1p(pd.to_numeric(profile[column], errors="coerce").fillna(0).clip(lower=0))


def top_categories(categories: pd.DataFrame | None, top: int = TOP_VALUES) -> list[str]:
    """The ``top`` categories by total weight (spend, or views), by name."""
    if categories is None or categories.empty:
        return []
    categories = categories[categories["category"] != "unknown"]  # products without a category
    if categories.empty:
        return []
    weight = "spend" if "spend" in categories.columns else "views"
    totals = categories.groupby("category")[weight].sum().sort_values(ascending=False, kind="stable")
    return sorted(str(c) for c in totals.index[:top])


def category_shares(
    categories: pd.DataFrame,
    index: pd.Index,
    prefix: str = "cat",
    top: int = TOP_VALUES,
    kept: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each customer's share per category (of spend, or of views) for the ``top`` categories by
    total weight, or the ``kept`` ones (the rest add up in ``<prefix>_other``), one row per
    customer of ``index`` (zeros without any)."""
    if categories is not None and not categories.empty:
        categories = categories[categories["category"] != "unknown"]  # products without a category
    names = list(kept) if kept is not None else top_categories(categories, top)
    if categories is None or categories.empty or not names:
        return pd.DataFrame(index=index)
    names = sorted(set(names) | {"other"})  # the rest are folded into "other"
    column = np.array([f"{prefix}_{c}" for c in names], dtype=object)
    code = pd.Index(names).get_indexer(categories["category"].astype(str)).astype(np.int64)
    code[code < 0] = names.index("other")
    row = index.get_indexer(categories["customer_id"])
    inside = row >= 0
    matrix = np.bincount(
        row[inside] * len(column) + code[inside],
        weights=pd.to_numeric(categories["share"], errors="coerce").fillna(0.0).to_numpy(float)[inside],
        minlength=len(index) * len(column),
    ).reshape(len(index), len(column))
    used = [j for j, name in enumerate(names) if name != "other" or matrix[:, j].any()]
    wide = pd.DataFrame(matrix[:, used], index=index, columns=list(column[used]))
    return wide.reindex(sorted(wide.columns), axis=1)


def _per_month(profile: pd.DataFrame, column: str) -> pd.Series:
    """A count per 30 days the customer has been known, log-scaled: engagement intensity that
    does not grow with tenure."""
    days = pd.to_numeric(profile["days_known"], errors="coerce").fillna(1).clip(lower=30)
    return np.log1p(pd.to_numeric(profile[column], errors="coerce").fillna(0) * 30 / days)


#: Profile columns the behavioural features read.
BEHAVIOUR_COLUMNS = (
    "days_known",
    "rhythm_days",
    "orders",
    "average_order_value",
    "page_views",
    "app_events",
    "email_open_rate",
    "email_click_rate",
    "social_follows",
    "pos_share",
    "web_share",
    "app_share",
)


def behaviour_features(
    profile: pd.DataFrame,
    categories: pd.DataFrame,
    browsing: pd.DataFrame | None = None,
    spec: Mapping[str, Any] | None = None,
) -> FeatureSet:
    """Behavioural features, one row per customer of ``profile``, built from ``spec`` when given
    (the spec of a kept model) or from this data.

    Who a customer is as a buyer, not where they are in their lifecycle (that is the stage):
    lifetime buying, spend and browsing by category, channels, and engagement per month known.
    """
    rhythm = pd.to_numeric(profile["rhythm_days"], errors="coerce")
    if spec is not None and "rhythm_fill" in spec:
        typical = float(spec["rhythm_fill"])
    else:
        typical = float(rhythm.median()) if rhythm.notna().any() else 0.0
    frame = pd.DataFrame(
        {
            "orders": _log(profile, "orders"),
            "order_value": np.log1p(pd.to_numeric(profile["average_order_value"], errors="coerce").fillna(0)),
            "rhythm": np.log1p(rhythm.fillna(typical)),
            "page_views": _per_month(profile, "page_views"),
            "app_events": _per_month(profile, "app_events"),
            "email_open_rate": pd.to_numeric(profile["email_open_rate"], errors="coerce").fillna(0),
            "email_click_rate": pd.to_numeric(profile["email_click_rate"], errors="coerce").fillna(0),
            "social_follows": _log(profile, "social_follows"),
            "pos_share": pd.to_numeric(profile["pos_share"], errors="coerce").fillna(0),
            "web_share": pd.to_numeric(profile["web_share"], errors="coerce").fillna(0),
            "app_share": pd.to_numeric(profile["app_share"], errors="coerce").fillna(0),
        },
        index=profile.index,
    )
    sources = ["activity"]
    kept = dict(spec or {})
    made: dict[str, Any] = {"rhythm_fill": typical}
    for prefix, table in (("cat", categories), ("browse", browsing)):
        names = kept.get(prefix) if spec is not None else top_categories(table)
        if not names:
            continue
        shares = category_shares(table, profile.index, prefix, kept=names)
        for column in (f"{prefix}_{n}" for n in names):  # kept columns stay when nobody buys there
            if column not in shares:
                shares[column] = 0.0
        frame = frame.join(shares)
        made[prefix] = list(names)
        sources.append(prefix)
    made["sources"] = sources
    frame = frame.reindex(sorted(frame.columns), axis=1).astype(float)
    return FeatureSet(frame, list(frame.columns), [1.0] * frame.shape[1], made)


def behaviour_sources(categories: pd.DataFrame | None, browsing: pd.DataFrame | None) -> list[str]:
    """The kinds of input a fresh behavioural matrix would read from this data."""
    sources = ["activity"]
    sources += [p for p, t in (("cat", categories), ("browse", browsing)) if top_categories(t)]
    return sources


def _indicators(values: pd.Series, prefix: str, kept: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {f"{prefix}_{value}": (values == value).astype(float) for value in kept}, index=values.index
    )


def _trait_values(profile: pd.DataFrame, column: str) -> pd.Series | None:
    """A categorical trait as text, with ``unknown`` for missing; None when it does not vary."""
    if column not in profile:
        return None
    values = profile[column]
    if not values.notna().any() or values.nunique() < 2:
        return None
    return values.astype(object).where(values.notna(), "unknown").astype(str)


def demographic_features(
    profile: pd.DataFrame,
    attributes: Mapping[str, Any] | None = None,
    spec: Mapping[str, Any] | None = None,
    year: int | None = None,
) -> FeatureSet:
    """Demographic features of every customer of ``profile`` (empty when nobody has any
    trait), from ``spec`` when given (the spec of a kept model) or from this data.

    ``attributes`` are the declared attributes (``microseg.config.AttributeConfig`` by name),
    read from the profile columns of the same name; ``year`` is the year of the snapshot: a kept
    model measures ages in the year it was fitted, so that nobody changes segment for turning a
    year older on the first of January.
    """
    parts: list[pd.DataFrame] = []
    groups: list[str] = []
    weights: list[float] = []
    made: dict[str, Any] = {}
    kept = spec or {}
    fresh = spec is None

    def add(frame: pd.DataFrame, group: str, weight: float) -> None:
        parts.append(frame)
        groups.extend([group] * frame.shape[1])
        weights.extend([weight] * frame.shape[1])

    age = pd.to_numeric(profile["age"], errors="coerce") if "age" in profile else None
    if age is not None and (fresh and age.notna().any() or "age" in kept):
        old = kept.get("age", {})
        on = int(old.get("year", year or 0))
        fill = float(old["fill"]) if "fill" in old else float(age.median())
        shifted = age - ((year or on) - on)
        add(shifted.fillna(fill).rename("age").to_frame(), "age", 1.0)
        made["age"] = {"fill": fill, "year": on}
    for column, prefix in DEMOGRAPHIC_TRAITS.items():
        values = _trait_values(profile, column)
        if fresh and values is None or not fresh and column not in kept:
            continue
        if values is None:
            values = pd.Series("unknown", index=profile.index)
        names = kept[column] if not fresh else sorted(values.value_counts().index[:TOP_VALUES])
        add(_indicators(values, prefix, names), column, 1.0)
        made[column] = list(names)
    for name, attribute in (attributes or {}).items():
        if attribute.weight <= 0 or name not in profile:
            continue
        key = f"attr:{name}"
        if not fresh and key not in kept:
            continue
        frame, recipe = _attribute_frame(profile[name], name, attribute, kept.get(key))
        if frame is None:
            continue
        add(frame, key, float(attribute.weight))
        made[key] = recipe
    made["sources"] = sorted(made)
    if not parts:
        return FeatureSet(pd.DataFrame(index=profile.index), [], [], made)
    frame = pd.concat(parts, axis=1).astype(float)
    order = np.argsort(np.asarray(frame.columns, dtype=str), kind="stable")
    return FeatureSet(frame.iloc[:, order], [groups[i] for i in order], [weights[i] for i in order], made)


def demographic_sources(profile: pd.DataFrame, attributes: Mapping[str, Any] | None = None) -> list[str]:
    """The kinds of input a fresh demographic matrix would read from this data."""
    return demographic_features(profile, attributes).sources


def _attribute_frame(values: pd.Series, name: str, attribute, recipe: Mapping[str, Any] | None):
    """The columns of one declared attribute and their recipe (None when it does not vary)."""
    if attribute.type == "numeric":
        numbers = pd.to_numeric(values, errors="coerce")
        if recipe is None:
            if numbers.nunique() < 2:
                return None, None
            recipe = {"fill": float(numbers.median())}
        return numbers.fillna(recipe["fill"]).rename(name).to_frame(), dict(recipe)
    if attribute.type == "ordinal":
        order = list(attribute.order)
        rank = pd.Series(pd.Categorical(values, categories=order, ordered=True).codes, index=values.index)
        rank = rank.where(rank >= 0).astype(float) / max(len(order) - 1, 1)
        if recipe is None:
            if rank.nunique() < 2:
                return None, None
            recipe = {"fill": float(rank.median())}
        return rank.fillna(recipe["fill"]).rename(name).to_frame(), dict(recipe)
    text = values.astype(object).where(values.notna(), "unknown").astype(str)
    if recipe is None:
        if text.nunique() < 2:
            return None, None
        recipe = {"values": sorted(text.value_counts().index[:TOP_VALUES])}
    return _indicators(text, name, recipe["values"]), dict(recipe)


# --- the same features as engine expressions -------------------------------------------------
#
# A kept model assigns every customer where the customers are stored: its spec and columns
# give one expression per feature, which DuckDB and Spark evaluate alike (see
# ``ClusterModel.expression``). The rules are those of the DataFrame builders above.


def _log1p(value: ir.FloatingValue) -> ir.FloatingValue:
    return (value + 1.0).ln()


def _share_columns(shares: ir.Table | None, prefix: str, columns: Sequence[str]) -> ir.Table | None:
    """``customer_id`` and the share columns ``<prefix>_<category>`` among ``columns`` (the
    categories of a kept model; ``<prefix>_other`` adds up the rest), one row per customer with
    any share."""
    wanted = [c for c in columns if c.startswith(prefix + "_")]
    if shares is None or not wanted:
        return None
    names = [c[len(prefix) + 1 :] for c in wanted if c != f"{prefix}_other"]
    rows = shares.filter(shares.category != "unknown")
    share = number(rows.share).fill_null(0.0)
    sums = {f"{prefix}_{n}": share.sum(where=rows.category == n) for n in names}
    if f"{prefix}_other" in wanted:
        sums[f"{prefix}_other"] = share.sum(where=~rows.category.isin(names)) if names else share.sum()
    return rows.group_by("customer_id").aggregate(**sums)


def behaviour_expressions(
    profile: ir.Table,
    spend: ir.Table | None,
    browsing: ir.Table | None,
    spec: Mapping[str, Any],
    columns: Sequence[str],
) -> ir.Table:
    """``customer_id`` and the behavioural features ``columns`` of a kept model (built with
    ``spec``) for every customer of ``profile``, as an engine table (see
    :func:`behaviour_features`)."""
    days = number(profile.days_known).fill_null(1.0)
    days = ibis.ifelse(days < 30.0, 30.0, days)

    def count(column: str) -> ir.FloatingValue:
        value = number(profile[column]).fill_null(0.0)
        return _log1p(ibis.ifelse(value < 0.0, 0.0, value))

    def per_month(column: str) -> ir.FloatingValue:
        return _log1p(number(profile[column]).fill_null(0.0) * 30.0 / days)

    def filled(column: str) -> ir.FloatingValue:
        return number(profile[column]).fill_null(0.0)

    activity = {
        "orders": count("orders"),
        "order_value": _log1p(filled("average_order_value")),
        "rhythm": _log1p(number(profile.rhythm_days).fill_null(float(spec.get("rhythm_fill", 0.0)))),
        "page_views": per_month("page_views"),
        "app_events": per_month("app_events"),
        "email_open_rate": filled("email_open_rate"),
        "email_click_rate": filled("email_click_rate"),
        "social_follows": count("social_follows"),
        "pos_share": filled("pos_share"),
        "web_share": filled("web_share"),
        "app_share": filled("app_share"),
    }
    out = profile.select("customer_id", **{c: e for c, e in activity.items() if c in columns})
    for prefix, shares in (("cat", spend), ("browse", browsing)):
        part = _share_columns(shares, prefix, columns)
        if part is not None:
            out = out.left_join(part, "customer_id").drop("customer_id_right")
    missing = [c for c in columns if c not in out.columns]  # a kept category nobody has now
    fills = {c: out[c].fill_null(0.0) for c in out.columns if c != "customer_id"}
    return out.mutate(**fills, **{c: ibis.literal(0.0) for c in missing}).select("customer_id", *columns)


def demographic_expressions(
    profile: ir.Table,
    attributes: Mapping[str, Any] | None,
    spec: Mapping[str, Any],
    columns: Sequence[str],
    year: int | None = None,
) -> ir.Table:
    """``customer_id`` and the demographic features ``columns`` of a kept model (built with
    ``spec``) for every customer of ``profile``, as an engine table (see
    :func:`demographic_features`)."""
    features: dict[str, ir.Value] = {}
    if "age" in spec and "age" in columns:
        on = int(spec["age"].get("year", year or 0))
        shift = float((year or on) - on)
        features["age"] = (number(profile.age) - shift).fill_null(float(spec["age"]["fill"]))

    def indicators(text: ir.StringValue, prefix: str, values: Sequence[str]) -> None:
        for value in values:
            name = f"{prefix}_{value}"
            if name in columns:
                features[name] = (text == str(value)).cast("float64")

    for column, prefix in DEMOGRAPHIC_TRAITS.items():
        if column in spec:
            text = profile[column].cast("string") if column in profile.columns else ibis.null("string")
            indicators(text.fill_null("unknown"), prefix, spec[column])
    for name, attribute in (attributes or {}).items():
        recipe = spec.get(f"attr:{name}")
        if recipe is None or name not in profile.columns:
            continue
        if attribute.type == "numeric":
            features[name] = number(profile[name]).fill_null(float(recipe["fill"]))
        elif attribute.type == "ordinal":
            order = [str(v) for v in attribute.order]
            rank = ibis.cases(*((profile[name] == v, float(i)) for i, v in enumerate(order)), else_=None)
            features[name] = (rank / float(max(len(order) - 1, 1))).fill_null(float(recipe["fill"]))
        else:
            indicators(profile[name].cast("string").fill_null("unknown"), name, recipe["values"])
    missing = [c for c in columns if c not in features]
    if missing:
        raise InvalidInputError(f"the kept model's features {missing} cannot be built from its spec")
    return profile.select("customer_id", **{c: features[c] for c in columns})

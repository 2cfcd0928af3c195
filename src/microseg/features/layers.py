"""Feature matrices for the clustering layers, from the customer profile.

* **behavioural**: how much, how often and how a customer buys (orders, order value, rhythm),
  what they buy and browse (shares of spend and of page views by category), where (channel
  shares) and how they engage (web, email, app, social, per month known);
* **demographic / contextual**: age, gender, region and acquisition channel.

Counts are log-scaled, missing values get neutral fills (0 for activity, the median for a
rhythm or an age), and categorical traits become indicator columns for their most common
values. Columns are sorted by name so the same data always gives the same matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TOP_VALUES = 12


def _log(profile: pd.DataFrame, column: str) -> pd.Series:
    return np.log1p(pd.to_numeric(profile[column], errors="coerce").fillna(0).clip(lower=0))


def category_shares(
    categories: pd.DataFrame, index: pd.Index, prefix: str = "cat", top: int = TOP_VALUES
) -> pd.DataFrame:
    """Each customer's share per category (of spend, or of views) for the ``top`` categories by
    total weight (the rest add up in ``<prefix>_other``), one row per customer of ``index``
    (zeros without any)."""
    if categories is not None and not categories.empty:
        categories = categories[categories["category"] != "unknown"]  # products without a category
    if categories is None or categories.empty:
        return pd.DataFrame(index=index)
    weight = "spend" if "spend" in categories.columns else "views"
    totals = categories.groupby("category")[weight].sum().sort_values(ascending=False, kind="stable")
    kept = set(totals.index[:top])
    names = sorted(kept | {"other"})  # the rest are folded into "other"
    column = np.array([f"{prefix}_{c}" for c in names], dtype=object)
    code = pd.Categorical(categories["category"], categories=names).codes.astype(np.int64)
    code[code < 0] = names.index("other")
    row = index.get_indexer(categories["customer_id"])
    inside = row >= 0
    matrix = np.bincount(
        row[inside] * len(column) + code[inside],
        weights=pd.to_numeric(categories["share"], errors="coerce").fillna(0.0).to_numpy(float)[inside],
        minlength=len(index) * len(column),
    ).reshape(len(index), len(column))
    used = np.flatnonzero(matrix.any(axis=0))  # "other" only when some category was folded into it
    wide = pd.DataFrame(matrix[:, used], index=index, columns=list(column[used]))
    return wide.reindex(sorted(wide.columns), axis=1)


def _per_month(profile: pd.DataFrame, column: str) -> pd.Series:
    """A count per 30 days the customer has been known, log-scaled: engagement intensity that
    does not grow with tenure."""
    days = pd.to_numeric(profile["days_known"], errors="coerce").fillna(1).clip(lower=30)
    return np.log1p(pd.to_numeric(profile[column], errors="coerce").fillna(0) * 30 / days)


def behaviour_features(
    profile: pd.DataFrame, categories: pd.DataFrame, browsing: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Behavioural features, one row per customer of ``profile`` (indexed by customer_id).

    Who a customer is, not where they are in their lifecycle (that is the stage): lifetime
    buying, spend and browsing by category, channels, and engagement per month known.
    """
    rhythm = pd.to_numeric(profile["rhythm_days"], errors="coerce")
    typical = rhythm.median() if rhythm.notna().any() else 0.0
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
    frame = frame.join(category_shares(categories, profile.index, "cat"))
    if browsing is not None:
        frame = frame.join(category_shares(browsing, profile.index, "browse"))
    return frame.reindex(sorted(frame.columns), axis=1).astype(float)


def _indicators(values: pd.Series, prefix: str, top: int = TOP_VALUES) -> pd.DataFrame:
    counts = values.value_counts()
    kept = sorted(counts.index[:top])
    return pd.DataFrame(
        {f"{prefix}_{value}": (values == value).astype(float) for value in kept}, index=values.index
    )


def demographic_features(profile: pd.DataFrame) -> pd.DataFrame:
    """Demographic and contextual features (empty when the customers have no such traits)."""
    parts = []
    age = pd.to_numeric(profile["age"], errors="coerce")
    if age.notna().any():
        parts.append(age.fillna(age.median()).rename("age").to_frame())
    for column, prefix in (
        ("gender", "gender"),
        ("region", "region"),
        ("country", "country"),
        ("acquisition_channel", "acquired"),
    ):
        values = profile[column]
        if values.notna().any() and values.nunique() > 1:
            parts.append(_indicators(values.fillna("unknown"), prefix))
    if not parts:
        return pd.DataFrame(index=profile.index)
    frame = pd.concat(parts, axis=1)
    return frame.reindex(sorted(frame.columns), axis=1).astype(float)

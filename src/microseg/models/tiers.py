"""Tier models: RFM, CLV, tenure and engagement tiers, and composite codes combining them.

Each tier puts every customer in exactly one tier of its layer:

* **CLV** by rank of the 12-month CLV: ``top_1``, ``top_5``, ``top_20`` (percent of customers
  with a CLV) and ``rest``; ``none`` without a CLV (prospects, or when the model could not run);
* **RFM**: the named RFM segment (champions, loyal, at_risk, ...); ``none`` without purchases;
* **tenure** by days since the first purchase (or since signup for prospects): ``0-3m``,
  ``3-12m``, ``1-2y``, ``2y+``;
* **engagement** by recent web, email and app activity: ``high`` (top fifth of the engaged),
  ``medium`` (the next three tenths), ``low`` (the other engaged) and ``none`` (no activity in
  90 days).

The **composite code** joins a customer's tiers (``top_5/champions/1-2y/high``); **named
composites**, configured by the user, select customers by tier values, for instance
``new_highly_engaged = { tenure = ["0-3m"], engagement = ["high"] }``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from microseg.features.rfm import percent_rank
from microseg.registry import TIER_LAYERS

CLV_CUTS = (0.01, 0.05, 0.20)
TENURE_BOUNDS = (90, 365, 730)
TENURE_NAMES = ("0-3m", "3-12m", "1-2y", "2y+")


def clv_tier(clv: pd.Series, cuts: Sequence[float] = CLV_CUTS) -> np.ndarray:
    """``top_1``/``top_5``/``top_20``/``rest`` by CLV rank among customers with a CLV."""
    values = pd.to_numeric(clv, errors="coerce").to_numpy(float)
    out = np.full(len(values), "none", dtype=object)
    known = np.isfinite(values)
    if known.any():
        # share of customers with a strictly higher CLV: ties share the better tier
        above = percent_rank(values[known], descending=True)
        tiers = np.full(known.sum(), "rest", dtype=object)
        for cut in sorted(cuts, reverse=True):
            tiers[above < cut] = f"top_{round(cut * 100):g}"
        out[known] = tiers
    return out


def tenure_tier(
    days: pd.Series, bounds: Sequence[int] = TENURE_BOUNDS, names: Sequence[str] = TENURE_NAMES
) -> np.ndarray:
    """Tier of the days a customer has been with the business."""
    values = pd.to_numeric(days, errors="coerce").to_numpy(float)
    index = np.searchsorted(np.asarray(bounds, dtype=float), values, side="left")
    out = np.asarray(names, dtype=object)[np.minimum(index, len(names) - 1)]
    out[~np.isfinite(values)] = "none"
    return out


def engagement_score(profile: pd.DataFrame) -> np.ndarray:
    """Recent activity on a common scale: log-counts of page views, email opens and app events
    in the last 90 days, plus the email click rate."""
    parts = [
        np.log1p(pd.to_numeric(profile[c], errors="coerce").fillna(0).to_numpy(float))
        for c in ("page_views_90d", "email_opens_90d", "app_events_90d")
    ]
    clicks = pd.to_numeric(profile["email_click_rate"], errors="coerce").fillna(0).to_numpy(float)
    return sum(parts) + clicks


def engagement_tier(profile: pd.DataFrame) -> np.ndarray:
    """``high``/``medium``/``low`` among customers active in the last 90 days, else ``none``."""
    score = engagement_score(profile)
    out = np.full(len(score), "none", dtype=object)
    engaged = score > 0
    if engaged.any():
        rank = percent_rank(score[engaged], descending=True)  # share with a higher score
        out[engaged] = np.where(rank < 0.2, "high", np.where(rank < 0.5, "medium", "low"))
    return out


def assign_tiers(profile: pd.DataFrame) -> pd.DataFrame:
    """The four tier layers and the composite code of every customer in ``profile``."""
    tenure_days = profile["days_since_first_purchase"].where(
        profile["days_since_first_purchase"].notna(), profile.get("days_since_signup")
    )
    tiers = pd.DataFrame(
        {
            "clv_tier": clv_tier(profile["clv"]) if "clv" in profile else "none",
            "rfm_tier": profile["rfm_segment"].astype(object).where(profile["rfm_segment"].notna(), "none")
            if "rfm_segment" in profile
            else "none",
            "tenure_tier": tenure_tier(tenure_days),
            "engagement_tier": engagement_tier(profile),
        },
        index=profile.index,
    )
    code = tiers[TIER_LAYERS[0]].astype(str)
    for layer in TIER_LAYERS[1:]:
        code = code + "/" + tiers[layer].astype(str)
    tiers["composite_code"] = code
    return tiers


def named_composites(
    tiers: pd.DataFrame, definitions: Mapping[str, Mapping[str, Sequence[str]]]
) -> pd.DataFrame:
    """Customers in each configured composite: a long frame (index of ``tiers``, composite).

    A definition maps tier layers (``clv``, ``rfm``, ``tenure``, ``engagement``, or the same
    with ``_tier``) to the accepted tier values; a customer must match every layer listed.
    """
    rows = []
    for name, layers in definitions.items():
        match = np.ones(len(tiers), dtype=bool)
        for layer, accepted in layers.items():
            column = layer if layer.endswith("_tier") else f"{layer}_tier"
            match &= tiers[column].isin(list(accepted)).to_numpy()
        rows.append(pd.Series(name, index=tiers.index[match], name="composite"))
    return pd.concat(rows).to_frame() if rows else pd.DataFrame({"composite": []})

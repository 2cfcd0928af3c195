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

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from microseg.engine.expressions import number
from microseg.registry import TIER_LAYERS

CLV_CUTS = (0.01, 0.05, 0.20)
TENURE_BOUNDS = (90, 365, 730)
TENURE_NAMES = ("0-3m", "3-12m", "1-2y", "2y+")


def _share_above(value: ir.FloatingValue, among: ir.BooleanValue) -> ir.FloatingValue:
    """Among the rows where ``among`` holds, the share of the others with a strictly higher
    ``value`` (SQL's ``percent_rank`` in descending order): ties share the better rank."""
    return ibis.percent_rank().over(group_by=among, order_by=ibis.desc(value))


def clv_tier_expression(clv: ir.Value, cuts: Sequence[float] = CLV_CUTS) -> ir.StringValue:
    """``top_1``/``top_5``/``top_20``/``rest`` by CLV rank among customers with a CLV, ``none``
    without one."""
    value = number(clv)
    known = value.notnull()
    above = _share_above(value, known)
    cases = [(above < cut, f"top_{round(cut * 100):g}") for cut in sorted(cuts)]
    return ibis.ifelse(known, ibis.cases(*cases, else_="rest"), "none")


def tenure_tier_expression(
    days: ir.Value, bounds: Sequence[int] = TENURE_BOUNDS, names: Sequence[str] = TENURE_NAMES
) -> ir.StringValue:
    """Tier of the days a customer has been with the business (``none`` when unknown)."""
    value = number(days)
    cases = [(value <= float(bound), str(name)) for bound, name in zip(bounds, names, strict=False)]
    return ibis.ifelse(
        value.isnull(), "none", ibis.cases(*cases, else_=str(names[min(len(bounds), len(names) - 1)]))
    )


def engagement_score_expression(table: ir.Table) -> ir.FloatingValue:
    """Recent activity on a common scale: log-counts of page views, email opens and app events
    in the last 90 days, plus the email click rate."""
    parts = [
        (number(table[c]).fill_null(0.0) + 1.0).ln()
        for c in ("page_views_90d", "email_opens_90d", "app_events_90d")
    ]
    return parts[0] + parts[1] + parts[2] + number(table.email_click_rate).fill_null(0.0)


def engagement_tier_expression(table: ir.Table) -> ir.StringValue:
    """``high``/``medium``/``low`` among customers active in the last 90 days, else ``none``."""
    score = engagement_score_expression(table)
    engaged = score > 0
    rank = _share_above(score, engaged)
    return ibis.ifelse(engaged, ibis.cases((rank < 0.2, "high"), (rank < 0.5, "medium"), else_="low"), "none")


def tier_expressions(
    table: ir.Table,
    clv_cuts: Sequence[float] = CLV_CUTS,
    tenure_bounds: Sequence[int] = TENURE_BOUNDS,
    tenure_names: Sequence[str] = TENURE_NAMES,
) -> dict[str, ir.StringValue]:
    """The four tier layers and the composite code as engine expressions over a table with the
    profile and value columns (``clv`` and ``rfm_segment`` may be absent: tier ``none``)."""
    tiers = {
        "clv_tier": clv_tier_expression(table.clv, clv_cuts)
        if "clv" in table.columns
        else ibis.literal("none"),
        "rfm_tier": table.rfm_segment.cast("string").fill_null("none")
        if "rfm_segment" in table.columns
        else ibis.literal("none"),
        "tenure_tier": tenure_tier_expression(table.days_since_first_purchase, tenure_bounds, tenure_names),
        "engagement_tier": engagement_tier_expression(table),
    }
    code = tiers[TIER_LAYERS[0]]
    for layer in TIER_LAYERS[1:]:
        code = code.concat("/", tiers[layer])
    return {**tiers, "composite_code": code}


def _evaluate(frame: pd.DataFrame, expressions) -> pd.DataFrame:
    """Evaluate expressions of a table on ``frame`` in memory, rows in the frame's order."""
    table = ibis.memtable(frame.reset_index(drop=True).assign(__row=np.arange(len(frame))))
    out = table.select("__row", **expressions(table)).order_by("__row").to_pandas()
    return out.drop(columns="__row").set_axis(frame.index)


def _numbers(values, name: str) -> pd.DataFrame:
    return pd.DataFrame({name: pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)})


def clv_tier(clv, cuts: Sequence[float] = CLV_CUTS) -> np.ndarray:
    """``top_1``/``top_5``/``top_20``/``rest`` by CLV rank among customers with a CLV (the
    engine expression :func:`clv_tier_expression` on an array)."""
    out = _evaluate(_numbers(clv, "clv"), lambda t: {"tier": clv_tier_expression(t.clv, cuts)})
    return out["tier"].to_numpy(dtype=object)


def tenure_tier(
    days, bounds: Sequence[int] = TENURE_BOUNDS, names: Sequence[str] = TENURE_NAMES
) -> np.ndarray:
    """Tier of the days a customer has been with the business."""
    out = _evaluate(_numbers(days, "days"), lambda t: {"tier": tenure_tier_expression(t.days, bounds, names)})
    return out["tier"].to_numpy(dtype=object)


ENGAGEMENT_INPUTS = ("page_views_90d", "email_opens_90d", "app_events_90d", "email_click_rate")


def engagement_tier(profile: pd.DataFrame) -> np.ndarray:
    """``high``/``medium``/``low`` among customers active in the last 90 days, else ``none``."""
    frame = pd.DataFrame(
        {c: pd.to_numeric(profile[c], errors="coerce").to_numpy(float) for c in ENGAGEMENT_INPUTS}
    )
    out = _evaluate(frame, lambda t: {"tier": engagement_tier_expression(t)})
    return out["tier"].to_numpy(dtype=object)


def assign_tiers(
    profile: pd.DataFrame,
    clv_cuts: Sequence[float] = CLV_CUTS,
    tenure_bounds: Sequence[int] = TENURE_BOUNDS,
    tenure_names: Sequence[str] = TENURE_NAMES,
) -> pd.DataFrame:
    """The four tier layers and the composite code of every customer in ``profile`` (the
    engine expressions of :func:`tier_expressions`, run in memory)."""
    columns = ["days_since_first_purchase", *ENGAGEMENT_INPUTS, *(c for c in ("clv",) if c in profile)]
    frame = pd.DataFrame(
        {c: pd.to_numeric(profile[c], errors="coerce").to_numpy(float) for c in columns}, index=profile.index
    )
    if "rfm_segment" in profile:
        frame["rfm_segment"] = (
            profile["rfm_segment"].astype(object).where(profile["rfm_segment"].notna(), None)
        )
    return _evaluate(frame, lambda t: tier_expressions(t, clv_cuts, tenure_bounds, tenure_names))


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

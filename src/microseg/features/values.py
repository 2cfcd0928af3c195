"""Per-customer value: RFM, scores and the CLV models' predictions, as of a date.

The RFM part is an Ibis expression (it runs on the configured engine); the models are fitted with
NumPy on its result, which is one row per buying customer. When a model cannot be fitted (every
customer bought once, too few customers...) the RFM columns are still produced, the prediction
columns are left empty and the reason is returned as a warning; nothing fails silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from microseg.config import ClvConfig
from microseg.features.rfm import PERIOD_DAYS, rfm_scores, rfm_summary
from microseg.models.clv.base import BTYDModel, ConvergenceError


def transaction_model(name: str, penalizer: float = 0.0) -> BTYDModel:
    """The repeat-buying model configured as ``clv.model``."""
    if name == "bgnbd":
        from microseg.models.clv.bgnbd import BGNBD as model
    elif name == "paretonbd":
        from microseg.models.clv.paretonbd import ParetoNBD as model
    elif name == "mbgnbd":
        from microseg.models.clv.mbgnbd import MBGNBD as model
    else:
        raise ValueError(f"unknown transaction model {name!r}; choose bgnbd, paretonbd or mbgnbd")
    return model(penalizer=penalizer)


def rfm_table(events: ir.Table, as_of: dt.date, period: str) -> ir.Table:
    """RFM inputs, totals and scores per buying customer (an Ibis expression)."""
    scored = rfm_scores(rfm_summary(events, as_of, period), as_of)
    end = ibis.literal(as_of, type="date")
    return scored.mutate(
        average_transaction=scored.total_spend / scored.transactions,
        tenure_days=end.delta(scored.first_purchase, unit="day"),
    )


@dataclass
class Valuation:
    """The per-customer values, the fitted parameters and any warnings."""

    values: pd.DataFrame
    fits: pd.DataFrame
    warnings: list[str] = field(default_factory=list)


def _fit_rows(model_name: str, model, as_of: dt.date) -> list[dict]:
    summary = model.summary()
    return [
        {
            "as_of": as_of,
            "model": model_name,
            "parameter": name,
            "estimate": float(row.estimate),
            "se": float(row.se),
            "log_likelihood": summary.attrs["log_likelihood"],
            "n_customers": summary.attrs["n_customers"],
        }
        for name, row in summary.iterrows()
    ]


def value_customers(rfm: pd.DataFrame, as_of: dt.date, settings: ClvConfig) -> Valuation:
    """Fit the configured models on ``rfm`` (from :func:`rfm_table`) and predict per customer."""
    from microseg.models.clv.gammagamma import GammaGamma
    from microseg.models.clv.value import discounted_expected_purchases

    out = rfm.copy()
    for column in ("p_alive", "churn_risk", "expected_purchases", "expected_spend", "clv"):
        out[column] = np.nan
    fits: list[dict] = []
    warnings: list[str] = []
    if out.empty:
        return Valuation(out, pd.DataFrame(fits), ["no customer has bought anything yet: nothing to value"])
    x = out["frequency"].to_numpy(float)
    t_x = out["recency"].to_numpy(float)
    T = out["T"].to_numpy(float)
    m = out["monetary_value"].to_numpy(float)
    period_days = PERIOD_DAYS[settings.period]

    buying = transaction_model(settings.model, settings.penalizer)
    try:
        buying.fit(x, t_x, T)
    except (ValueError, ConvergenceError) as exc:
        warnings.append(f"{type(buying).__name__} not fitted, no predictions: {exc}")
        return Valuation(out, pd.DataFrame(fits), warnings)
    fits += _fit_rows(type(buying).__name__, buying, as_of)
    try:
        p_alive = buying.probability_alive(x, t_x, T)
        expected = buying.predict_purchases(settings.purchases_days / period_days, x, t_x, T)
    except ConvergenceError as exc:
        warnings.append(f"no predictions: {exc}")
        return Valuation(out, pd.DataFrame(fits), warnings)
    out["p_alive"] = p_alive
    out["churn_risk"] = 1.0 - p_alive
    out["expected_purchases"] = expected

    spend = GammaGamma(penalizer=settings.penalizer)
    repeat = (x > 0) & (m > 0)
    try:
        spend.fit(x[repeat], m[repeat])
    except (ValueError, ConvergenceError) as exc:
        warnings.append(f"GammaGamma not fitted, no spend or CLV predictions: {exc}")
        return Valuation(out, pd.DataFrame(fits), warnings)
    fits += _fit_rows("GammaGamma", spend, as_of)
    # customers without a positive repeat spend get the population mean (GammaGamma's x = 0 case)
    spend_x = np.where(repeat, x, 0.0)
    spend_m = np.where(repeat, m, 0.0)
    out["expected_spend"] = spend.expected_spend(spend_x, spend_m)
    try:
        discounted = discounted_expected_purchases(
            buying,
            x,
            t_x,
            T,
            months=settings.horizon_months,
            discount_rate=settings.discount_rate,
            days_per_period=period_days,
        )
    except ConvergenceError as exc:
        warnings.append(f"no CLV: {exc}")
        return Valuation(out, pd.DataFrame(fits), warnings)
    out["clv"] = out["expected_spend"].to_numpy() * discounted
    return Valuation(out, pd.DataFrame(fits), warnings)

"""Per-customer value: RFM, scores and the CLV models' predictions, as of a date.

The RFM summary is an Ibis expression (it runs on the configured engine) with one row per buying
customer; scores and models run with NumPy on its columns, and the result is an Arrow table
ready to store. When a model cannot be fitted (every customer bought once, too few customers...)
the RFM columns are still produced, the prediction columns are left empty and the reason is
returned as a warning; nothing fails silently.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from microseg.config import ClvConfig
from microseg.features.rfm import PERIOD_DAYS, rfm_scores, rfm_summary
from microseg.models.clv.base import BTYDModel, ConvergenceError, compress

PREDICTIONS = ("p_alive", "churn_risk", "expected_purchases", "expected_spend", "clv")


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
    """RFM inputs and totals per buying customer (an Ibis expression)."""
    summary = rfm_summary(events, as_of, period)
    end = ibis.literal(as_of, type="date")
    return summary.mutate(
        average_transaction=summary.total_spend / summary.transactions,
        tenure_days=end.delta(summary.first_purchase, unit="day"),
        days_since_last=end.delta(summary.last_purchase, unit="day"),
    )


@dataclass
class Valuation:
    """The per-customer values (Arrow), the fitted parameters and any warnings."""

    values: pa.Table
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


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(float)


def value_customers(rfm: pa.Table, as_of: dt.date, settings: ClvConfig) -> Valuation:
    """Scores, then the configured models fitted on ``rfm`` (from :func:`rfm_table`) and their
    predictions per customer.

    The spend model and the scores do not depend on the transaction model: they run in a second
    thread while it fits (NumPy and SciPy release the GIL in their loops).
    """
    if rfm.num_rows == 0:
        return Valuation(
            _assemble(rfm, None, {}),
            pd.DataFrame(),
            ["no customer has bought anything yet: nothing to value"],
        )
    x, t_x, T, m = (_column(rfm, c) for c in ("frequency", "recency", "T", "monetary_value"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        side = pool.submit(_scores_and_spend, rfm, x, m, as_of, settings)
        predictions, fits, warnings = _transactions(x, t_x, T, as_of, settings)
        scores, spend, spend_fits, spend_warning = side.result()
    if spend_warning:
        warnings.append(spend_warning)
    elif "p_alive" in predictions:
        fits += spend_fits
        predictions["expected_spend"] = spend
        predictions["clv"] = spend * predictions.pop("discounted_purchases")
    predictions.pop("discounted_purchases", None)
    return Valuation(_assemble(rfm, scores, predictions), pd.DataFrame(fits), warnings)


def _assemble(rfm: pa.Table, scores: dict | None, predictions: dict) -> pa.Table:
    out = rfm
    if scores is None:
        scores = rfm_scores(np.array([]), np.array([]), np.array([]))
    for name, values in scores.items():
        out = out.append_column(name, pa.array(values))  # a Categorical becomes a dictionary array
    for name in PREDICTIONS:
        values = predictions.get(name)
        out = out.append_column(
            name, pa.array(values) if values is not None else pa.nulls(rfm.num_rows, pa.float64())
        )
    return out


def _scores_and_spend(rfm: pa.Table, x, m, as_of: dt.date, settings: ClvConfig):
    """RFM scores, and the Gamma-Gamma expected spend per customer with its fit (or a warning)."""
    from microseg.models.clv.gammagamma import GammaGamma

    scores = rfm_scores(
        _column(rfm, "days_since_last"), _column(rfm, "transactions"), _column(rfm, "total_spend")
    )
    spend = GammaGamma(penalizer=settings.penalizer)
    repeat = (x > 0) & (m > 0)
    try:
        spend.fit(x[repeat], m[repeat])
        # customers without a positive repeat spend get the population mean (GammaGamma's x = 0)
        expected = spend.expected_spend(np.where(repeat, x, 0.0), np.where(repeat, m, 0.0))
    except (ValueError, ConvergenceError) as exc:
        return scores, None, [], f"GammaGamma: no spend or CLV predictions: {exc}"
    return scores, expected, _fit_rows("GammaGamma", spend, as_of), None


def _transactions(x, t_x, T, as_of: dt.date, settings: ClvConfig) -> tuple[dict, list, list[str]]:
    """The transaction model's fit, P(alive), expected purchases and discounted purchases."""
    from microseg.models.clv.value import discounted_expected_purchases

    # customers with the same (x, t_x, T) get the same predictions: work on the distinct rows
    # (merged on whole days, then converted to the period unit)
    period_days = PERIOD_DAYS[settings.period]
    (ux, ut, uT), weights, rows = compress(x, np.round(t_x * period_days), np.round(T * period_days))
    ut, uT = ut / period_days, uT / period_days
    buying = transaction_model(settings.model, settings.penalizer)
    try:
        buying.fit(ux, ut, uT, weights=weights, distinct=True)
        p_alive = buying.probability_alive(ux, ut, uT)[rows]
        expected = buying.predict_purchases(settings.purchases_days / period_days, ux, ut, uT)[rows]
        discounted = discounted_expected_purchases(
            buying,
            ux,
            ut,
            uT,
            distinct=True,
            months=settings.horizon_months,
            discount_rate=settings.discount_rate,
            days_per_period=period_days,
        )[rows]
    except (ValueError, ConvergenceError) as exc:
        return {}, [], [f"{type(buying).__name__}: no predictions: {exc}"]
    predictions = {
        "p_alive": p_alive,
        "churn_risk": 1.0 - p_alive,
        "expected_purchases": expected,
        "discounted_purchases": discounted,
    }
    return predictions, _fit_rows(type(buying).__name__, buying, as_of), []

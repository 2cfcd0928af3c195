"""Customer lifetime value from a transaction model and a spend model.

The value of a customer over the next ``months`` months is the expected number of purchases in
each month times the expected spend per purchase, discounted monthly:

    CLV = Σ_{m=1..months} (E[X(T, T + m·L)] − E[X(T, T + (m − 1)·L)]) · E[spend] / (1 + d)^m

where E[X(T, T + t)] is the transaction model's ``predict_purchases(t, frequency, recency, T)``
(BG/NBD, Pareto/NBD, MBG/NBD, BG/BB: anything with that method), E[spend] the spend model's
``expected_spend(frequency, monetary_value)`` (Gamma-Gamma), L = days_per_month/days_per_period
the length of a month in the transaction model's time unit and d the monthly discount rate. As
in the usual practice (lifetimes' ``customer_lifetime_value``), purchases are discounted by the
month they fall in and spend is assumed independent of the number of purchases.

The transaction model is evaluated once per month on the distinct (frequency, recency, T) rows
only: a million customers summarised in days or weeks share a few hundred thousand rows at most.

>>> import pandas as pd
>>> from microseg.models.clv.bgnbd import BGNBD
>>> from microseg.models.clv.gammagamma import GammaGamma
>>> transactions, spend = BGNBD(), GammaGamma()
>>> transactions.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
>>> spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
>>> clv = customer_lifetime_value(
...     transactions, spend, [2, 0], [30.43, 0], [38.86, 38.86], [22.35, 0],
...     months=12, discount_rate=0.01, days_per_period=7,
... )
>>> clv.round(2).tolist()  # weeks as the time unit; 12 months of a repeat buyer, a one-off buyer
[36.31, 8.37]
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from microseg.errors import InvalidInputError
from microseg.models.clv.base import as_array, unique_rows

__all__ = ["customer_lifetime_value", "discounted_expected_purchases"]


def _check_settings(months, discount_rate, days_per_period, days_per_month) -> None:
    if isinstance(months, bool) or not isinstance(months, numbers.Integral) or months < 1:
        raise InvalidInputError(f"months must be an integer >= 1, got {months!r}")
    for name, value, low_ok in (
        ("discount_rate", discount_rate, True),
        ("days_per_period", days_per_period, False),
        ("days_per_month", days_per_month, False),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
            raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
        if value < 0 or (value == 0 and not low_ok):
            raise InvalidInputError(f"{name} must be {'>= 0' if low_ok else '> 0'}, got {value!r}")


def customer_lifetime_value(
    transaction_model,
    spend_model,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    days_per_period: float = 1.0,
    days_per_month: float = 365.25 / 12,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Discounted expected value of each customer's purchases over the next ``months`` months.

    ``frequency``, ``recency`` and ``T`` are in the transaction model's inputs and time unit
    (days_per_period days each: 1 for days, 7 for weeks, 365.25 for the yearly opportunities of
    a BG/BB); ``monetary_value`` is the mean spend per repeat purchase (ignored where frequency
    is 0: those customers get the spend model's population mean). ``discount_rate`` is monthly
    (0.01 a month is about 12.7% a year). Both models must be fitted.
    """
    if not callable(getattr(spend_model, "expected_spend", None)):
        raise TypeError(
            "spend_model needs an expected_spend(frequency, monetary_value) method (GammaGamma), "
            f"got {type(spend_model).__name__}"
        )
    purchases = discounted_expected_purchases(
        transaction_model,
        frequency,
        recency,
        T,
        months=months,
        discount_rate=discount_rate,
        days_per_period=days_per_period,
        days_per_month=days_per_month,
        n_jobs=n_jobs,
    )
    spend = np.asarray(
        spend_model.expected_spend(as_array(frequency, "frequency"), monetary_value), dtype=float
    )
    clv = purchases * spend
    if not np.all(np.isfinite(clv)):
        bad = np.flatnonzero(~np.isfinite(clv))
        raise InvalidInputError(
            f"the models gave a non-finite value for {len(bad)} customer(s) (first at position "
            f"{bad[0]}): check the fitted parameters of both models"
        )
    return clv


def discounted_expected_purchases(
    transaction_model,
    frequency,
    recency,
    T,
    *,
    months: int = 12,
    discount_rate: float = 0.01,
    days_per_period: float = 1.0,
    days_per_month: float = 365.25 / 12,
    n_jobs: int | None = None,
    distinct: bool = False,
) -> np.ndarray:
    """Σ_m (E[X(T, T + m·L)] − E[X(T, T + (m − 1)·L)]) / (1 + d)^m per customer: the CLV
    without the spend, for a spend computed elsewhere.

    The months are evaluated in ``n_jobs`` threads (None: one per CPU, at most one per month;
    1: serially); the models' prediction methods only read the fitted parameters, and the
    special functions they spend their time in release the GIL. ``distinct=True`` says no two
    rows are identical (skips merging them).
    """
    _check_settings(months, discount_rate, days_per_period, days_per_month)
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs < 1
    ):
        raise InvalidInputError(f"n_jobs must be None or an integer >= 1, got {n_jobs!r}")
    if not callable(getattr(transaction_model, "predict_purchases", None)):
        raise TypeError(
            "transaction_model needs a predict_purchases(t, frequency, recency, T) method "
            f"(BGNBD, ParetoNBD, MBGNBD, BGBB), got {type(transaction_model).__name__}"
        )
    x, t_x, age = as_array(frequency, "frequency"), as_array(recency, "recency"), as_array(T, "T")
    if not (len(x) == len(t_x) == len(age)):
        raise InvalidInputError(
            f"frequency, recency and T must have the same length, got {len(x)}, {len(t_x)}, {len(age)}"
        )
    if distinct:  # the caller has merged identical customers already
        (ux, ut, uT), codes = (x, t_x, age), np.arange(len(x))
    else:
        (ux, ut, uT), codes = unique_rows(x, t_x, age)
    month = days_per_month / days_per_period

    many = getattr(transaction_model, "predict_purchases_many", None)
    if many is not None:  # the model evaluates all horizons at once, sharing work between them
        try:
            cumulative = list(many(month * np.arange(1, months + 1), ux, ut, uT))
        except ValueError:
            many(month * np.arange(1, 2), x, t_x, age)  # the message then gives customers' own positions
            raise
        return _discount(cumulative, discount_rate)[codes]

    def expected_purchases(m: int) -> np.ndarray:
        """E[purchases in (T, T + m months]] per distinct row."""
        return np.asarray(transaction_model.predict_purchases(m * month, ux, ut, uT), dtype=float)

    try:
        # the first month alone: a bad input fails once, before any thread starts
        cumulative = [expected_purchases(1)]
    except ValueError:
        # the same checks on every row, so that the message gives the customers' own positions
        transaction_model.predict_purchases(month, x, t_x, age)
        raise
    workers = min(months - 1, n_jobs or os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            cumulative += list(pool.map(expected_purchases, range(2, months + 1)))
    else:
        cumulative += [expected_purchases(m) for m in range(2, months + 1)]

    return _discount(cumulative, discount_rate)[codes]


def _discount(cumulative: list[np.ndarray], discount_rate: float) -> np.ndarray:
    """Σ_m (cumulative_m − cumulative_(m−1)) / (1 + d)^m."""
    value = np.zeros(len(cumulative[0]))
    previous = np.zeros(len(cumulative[0]))
    with np.errstate(invalid="ignore"):  # a non-finite expectation is reported by the caller
        for m, current in enumerate(cumulative, start=1):
            value += (current - previous) / (1.0 + discount_rate) ** m
            previous = current
    return value

"""Customer lifetime value from a transaction model and the Gamma-Gamma spend model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microseg.errors import NotFittedError
from microseg.models.clv.base import compress
from microseg.models.clv.bgbb import BGBB
from microseg.models.clv.bgnbd import BGNBD
from microseg.models.clv.gammagamma import GammaGamma
from microseg.models.clv.value import customer_lifetime_value

WEEK = 7.0
MONTH_IN_WEEKS = 365.25 / 12 / WEEK


def with_params(cls, params: dict):
    model = cls()
    model.params_ = pd.Series(params)
    return model


@pytest.fixture(scope="module")
def transactions() -> BGNBD:
    return with_params(BGNBD, {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # CDNOW, weeks


@pytest.fixture(scope="module")
def spend() -> GammaGamma:
    return with_params(GammaGamma, {"p": 6.25, "q": 3.74, "v": 15.44})


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    """300 customers summarised in weeks, many of them identical (one-time buyers of a week)."""
    rng = np.random.default_rng(5)
    n = 300
    T = rng.integers(1, 40, n).astype(float)
    x = np.where(rng.random(n) < 0.5, 0, rng.poisson(2.0, n) + 1).astype(float)
    t_x = np.where(x > 0, np.round(rng.uniform(0, 1, n) * T, 1), 0.0)
    m = np.where(x > 0, np.round(rng.gamma(4.0, 8.0, n), 2), 0.0)
    return pd.DataFrame({"x": x, "t_x": t_x, "T": T, "m": m})


def clv(transactions, spend, d: pd.DataFrame, **kwargs) -> np.ndarray:
    return customer_lifetime_value(
        transactions, spend, d.x, d.t_x, d["T"], d.m, days_per_period=WEEK, **kwargs
    )


def test_equals_a_per_customer_loop(transactions, spend, customers):
    months, rate = 6, 0.02
    expected = []
    for row in customers.itertuples():
        purchases = [
            transactions.predict_purchases(k * MONTH_IN_WEEKS, row.x, row.t_x, row.T)[0]
            for k in range(months + 1)
        ]
        per_purchase = spend.expected_spend(row.x, row.m)[0]
        expected.append(
            sum(
                (purchases[k] - purchases[k - 1]) * per_purchase / (1 + rate) ** k
                for k in range(1, months + 1)
            )
        )
    actual = clv(transactions, spend, customers, months=months, discount_rate=rate)
    assert len(np.unique(customers[["x", "t_x", "T"]].to_numpy(), axis=0)) < len(customers)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    np.testing.assert_array_equal(
        actual, clv(transactions, spend, customers, months=months, discount_rate=rate, n_jobs=1)
    )


def test_without_discount_it_telescopes_to_the_whole_horizon(transactions, spend, customers):
    d = customers
    total = transactions.predict_purchases(24 * MONTH_IN_WEEKS, d.x, d.t_x, d["T"]) * spend.expected_spend(
        d.x, d.m
    )
    np.testing.assert_allclose(clv(transactions, spend, d, months=24, discount_rate=0), total, rtol=1e-10)


def test_grows_with_the_horizon_and_shrinks_with_the_discount(transactions, spend, customers):
    by_months = np.array([clv(transactions, spend, customers, months=k) for k in (1, 3, 12, 36)])
    assert np.all(by_months > 0) and np.all(np.diff(by_months, axis=0) > 0)
    undiscounted = clv(transactions, spend, customers, discount_rate=0.0)
    discounted = clv(transactions, spend, customers, discount_rate=0.01)
    strongly = clv(transactions, spend, customers, discount_rate=0.05)
    assert np.all(undiscounted > discounted) and np.all(discounted > strongly)
    # within one month's discount of each other at most 12 months out
    assert np.all(discounted >= undiscounted / 1.01**12)


def test_the_transaction_model_sees_only_distinct_rows(spend, customers, transactions):
    class Spy:
        rows: list[int] = []

        def predict_purchases(self, t, frequency, recency, T):
            self.rows.append(len(frequency))
            return transactions.predict_purchases(t, frequency, recency, T)

    spy = Spy()
    clv(spy, spend, customers, months=4)
    distinct = len(customers.drop_duplicates(["x", "t_x", "T"]))
    assert spy.rows == [distinct] * 4 and distinct < len(customers)


def test_compress_merges_identical_rows():
    rng = np.random.default_rng(1)
    columns = [rng.integers(0, 5, 2000).astype(float), rng.integers(0, 3, 2000) / 2, np.full(2000, 7.5)]
    unique, weights, codes = compress(*columns)
    for u, column in zip(unique, columns, strict=True):
        np.testing.assert_array_equal(u[codes], column)  # every row maps back to itself
    frame = pd.DataFrame({"a": columns[0], "b": columns[1], "c": columns[2]})
    expected = frame.groupby(["a", "b", "c"], sort=False).size()
    assert len(unique[0]) == len(expected)
    got = pd.Series(weights, index=pd.MultiIndex.from_arrays(unique, names=["a", "b", "c"]))
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index().astype(float), check_names=False)


def test_works_with_a_discrete_time_model(spend):
    """BG/BB on yearly opportunities: months are twelfths of a period."""
    bgbb = with_params(BGBB, {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})
    x, t_x, n, m = [0, 3, 6], [0, 5, 6], [6, 6, 6], [0.0, 40.0, 40.0]
    value = customer_lifetime_value(
        bgbb, spend, x, t_x, n, m, months=24, discount_rate=0, days_per_period=365.25
    )
    expected = bgbb.predict_purchases(2, x, t_x, n) * spend.expected_spend(x, m)
    np.testing.assert_allclose(value, expected, rtol=1e-10)
    assert value[0] < value[1] < value[2]


def test_bad_settings_and_input_fail_clearly(transactions, spend, customers):
    d = customers
    for months in (0, 1.5, True):
        with pytest.raises(ValueError, match="months must be an integer >= 1"):
            clv(transactions, spend, d, months=months)
    with pytest.raises(ValueError, match="discount_rate must be >= 0"):
        clv(transactions, spend, d, discount_rate=-0.01)
    with pytest.raises(ValueError, match="discount_rate must be a finite number"):
        clv(transactions, spend, d, discount_rate=float("nan"))
    with pytest.raises(ValueError, match="days_per_period must be > 0"):
        customer_lifetime_value(transactions, spend, d.x, d.t_x, d["T"], d.m, days_per_period=0)
    with pytest.raises(ValueError, match="n_jobs must be None or an integer >= 1"):
        clv(transactions, spend, d, n_jobs=0)
    with pytest.raises(TypeError, match="predict_purchases"):
        customer_lifetime_value(spend, spend, d.x, d.t_x, d["T"], d.m)
    with pytest.raises(TypeError, match="expected_spend"):
        customer_lifetime_value(transactions, transactions, d.x, d.t_x, d["T"], d.m)
    with pytest.raises(ValueError, match="same length"):
        customer_lifetime_value(transactions, spend, d.x, d.t_x, d["T"][:-1], d.m)
    with pytest.raises(NotFittedError):
        customer_lifetime_value(BGNBD(), spend, d.x, d.t_x, d["T"], d.m)
    with pytest.raises(ValueError, match="monetary_value .* must be > 0"):
        customer_lifetime_value(transactions, spend, [1], [1.0], [2.0], [-5.0])
    # an error in the customers names their own position, not that of a distinct row
    bad = pd.concat(
        [d, pd.DataFrame({"x": [2.0], "t_x": [50.0], "T": [40.0], "m": [10.0]})], ignore_index=True
    )
    with pytest.raises(
        ValueError, match=rf"larger than T vector: 1 customer\(s\), first at position\(s\) {len(d)}"
    ):
        clv(transactions, spend, bad)

    class Broken:
        def predict_purchases(self, t, frequency, recency, T):
            return np.where(frequency > 3, np.nan, 0.1 * t)

    with pytest.raises(ValueError, match="non-finite value"):
        clv(Broken(), spend, d)

"""A snapshot continued from an earlier one equals the snapshot computed from all its events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from microseg.errors import InvalidInputError
from microseg.features.asof import AsOf
from microseg.features.profile import browsing_of, profile_of, spend_of
from microseg.features.rfm import rfm_of
from microseg.features.summary import summary_of
from microseg.schema import EVENT_TYPES, EVENTS

PAGE_FLAGS = {"sale": "/sale", "garden": "garden"}
AGGREGATES = ("activity", "purchase_days", "products_bought", "customer_activity", "buying_counts")


def random_events(n: int = 6_000, seed: int = 11) -> pd.DataFrame:
    """Events of every type over 500 days: orders spanning midnight, null amounts, channels and
    URLs, anonymous rows, refunds."""
    rng = np.random.default_rng(seed)
    types = np.array(list(EVENT_TYPES))
    kind = types[rng.integers(0, len(types), n)]
    kind[: n // 2] = "purchase"
    ts = np.datetime64("2023-01-01T00:00:00") + rng.integers(0, 500 * 86400, n).astype("timedelta64[s]")
    # every tenth purchase repeats an earlier line's order an hour later: orders over two days
    customer = np.char.add("c", rng.integers(0, 150, n).astype(str)).astype(object)
    order = np.char.add("o", rng.integers(0, 2500, n).astype(str)).astype(object)
    for i in range(1, n, 10):
        customer[i], order[i], ts[i] = customer[i - 1], order[i - 1], ts[i - 1] + np.timedelta64(3600, "s")
    customer[rng.random(n) < 0.03] = None
    order[rng.random(n) < 0.1] = None
    commerce = np.isin(kind, ["purchase", "refund", "cancellation"])
    quantity = np.where(np.isin(kind, ["refund", "cancellation"]), -1, 1) * rng.integers(1, 5, n)
    cents = rng.integers(1, 50_000, n)
    amount = [
        Decimal(int(c) * int(q)) / 100 if m and c % 17 else None
        for c, q, m in zip(cents, quantity, commerce, strict=True)
    ]
    pages = np.array(["/sale/shoes", "/category/garden", "/p/p3", "/home", None], dtype=object)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "event_type": kind,
            "ts": ts,
            "customer_id": customer,
            "source": "test",
            "channel": np.where(commerce, np.array(["pos", "web", "app", None])[rng.integers(0, 4, n)], None),
            "order_id": np.where(commerce, order, None),
            "product_id": np.where(commerce, np.char.add("p", rng.integers(0, 40, n).astype(str)), None),
            "quantity": pd.Series(quantity, dtype="Int64").mask(~commerce),
            "amount": amount,
            "url": np.where(kind == "page_view", pages[rng.integers(0, len(pages), n)], None),
            "import_id": "i",
        }
    )
    for c in EVENTS.column_names:
        if c not in frame:
            frame[c] = None
    return frame[EVENTS.column_names]


@pytest.fixture(scope="module")
def tables():
    from microseg.warehouse.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(":memory:")
    frame = random_events()
    wh.con.register("frame", frame)
    wh.sql("INSERT INTO events SELECT * FROM frame")
    customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(160)]})
    customers["signup_date"] = pd.Timestamp("2022-06-01")
    wh.con.register("people", customers)
    wh.sql(
        "INSERT INTO customers (customer_id, signup_date, source, updated_at) SELECT customer_id, signup_date, 'test', now()::TIMESTAMP FROM people"
    )
    wh.sql(
        "INSERT INTO products (product_id, category) SELECT 'p' || i, CASE WHEN i % 3 = 0 THEN 'garden' WHEN i % 3 = 1 THEN 'shoes' END FROM range(40) t(i)"
    )
    yield wh.table("events"), wh.table("customers"), wh.table("products")
    wh.close()


def rows(table) -> pd.DataFrame:
    frame = table.to_pandas()
    return frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)


def same(continued, full) -> None:
    """Equal rows: money and counts exactly, floats to 1e-9 relative."""
    a, b = rows(continued), rows(full)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, check_dtype=True)


@contextmanager
def snapshots(tables, earlier: dt.date, later: dt.date, cache: bool = True) -> Iterator[tuple[AsOf, AsOf]]:
    """The snapshot of ``later`` continued from ``earlier``, and computed from all events."""
    events, customers, products = tables
    kwargs = dict(customers=customers, products=products, page_flags=PAGE_FLAGS, cache=cache)
    with AsOf(events, later, **kwargs) as full, AsOf(events, earlier, **kwargs).advance(later) as continued:
        yield continued, full


@pytest.mark.parametrize(
    "earlier, later",
    [
        (dt.date(2023, 5, 31), dt.date(2023, 6, 30)),  # a month: the window reaches before it
        (dt.date(2023, 2, 28), dt.date(2023, 12, 31)),  # longer than the longest window
        (dt.date(2023, 6, 30), dt.date(2023, 6, 30)),  # the same date: nothing new
        (dt.date(2022, 12, 31), dt.date(2023, 3, 31)),  # from before the first event
    ],
)
def test_continued_aggregates_equal_the_full_ones(tables, earlier, later):
    with snapshots(tables, earlier, later) as (continued, full):
        assert continued.continued_from == earlier
        for name in AGGREGATES:
            same(getattr(continued, name), getattr(full, name))


def test_continued_snapshot_gives_the_same_features(tables):
    with snapshots(tables, dt.date(2023, 8, 31), dt.date(2023, 9, 30)) as (continued, full):
        same(summary_of(continued), summary_of(full))
        same(profile_of(continued), profile_of(full))
        same(spend_of(continued), spend_of(full))
        same(browsing_of(continued), browsing_of(full))
        for period in ("day", "week"):
            same(rfm_of(continued, period), rfm_of(full, period))
            calibration = dt.date(2023, 6, 30)
            same(rfm_of(continued, period, calibration), rfm_of(full, period, calibration))


def test_a_chain_of_months_equals_each_full_snapshot(tables):
    events, customers, products = tables
    kwargs = dict(customers=customers, products=products, page_flags=PAGE_FLAGS, cache=True)
    month_ends = pd.date_range("2023-01-31", "2023-07-31", freq="ME").date
    chained = AsOf(events, month_ends[0], **kwargs)
    for day in month_ends[1:]:
        chained = chained.advance(day)
        with AsOf(events, day, **kwargs) as full:
            same(summary_of(chained), summary_of(full))
            same(chained.activity, full.activity)
    chained.release()


def test_without_cache_the_continued_snapshot_is_an_expression(tables):
    with snapshots(tables, dt.date(2023, 3, 31), dt.date(2023, 4, 30), cache=False) as (continued, full):
        assert continued.continued_from == dt.date(2023, 3, 31)
        same(summary_of(continued), summary_of(full))


def test_advance_releases_the_earlier_tables(tables):
    events, customers, products = tables
    earlier = AsOf(events, dt.date(2023, 3, 31), customers=customers, products=products, cache=True)
    spent = earlier.activity
    assert spent.count().to_pyarrow().as_py() > 0
    with earlier.advance(dt.date(2023, 4, 30)) as later:
        with pytest.raises(Exception, match="does not exist"):
            spent.count().to_pyarrow()
        assert later.activity.count().to_pyarrow().as_py() > 0


def test_advance_refuses_an_earlier_date(tables):
    snapshot = AsOf(tables[0], dt.date(2023, 3, 31))
    with pytest.raises(InvalidInputError, match="2023-02-28 is before 2023-03-31"):
        snapshot.advance(dt.date(2023, 2, 28))


@pytest.mark.spark
def test_on_spark_the_merge_is_exact_and_the_chain_computes_from_all_events(tables, spark, tmp_path):
    """The merged aggregates are engine expressions that Spark computes as DuckDB does; the
    chain still computes every snapshot of a Spark project from all its events (a persisted
    frame that Spark evicts is recomputed from files that the next run rewrites)."""
    import ibis

    from microseg.features.chain import SnapshotChain

    con = ibis.pyspark.connect(spark)
    on_spark = []
    for table, name in zip(tables, ("events", "customers", "products"), strict=True):
        path = tmp_path / f"{name}.parquet"
        table.to_parquet(path)
        on_spark.append(con.read_parquet(str(path)))
    events, customers, products = on_spark
    earlier, later = dt.date(2023, 5, 31), dt.date(2023, 6, 30)
    kwargs = dict(customers=customers, products=products, page_flags=PAGE_FLAGS)
    continued = AsOf(events, earlier, **kwargs).advance(later)
    same(summary_of(continued), summary_of(AsOf(events, later, **kwargs)))

    chain = SnapshotChain(seen=lambda day: "unchanged")
    for day in (earlier, later):
        snapshot = chain.open(events, day, **kwargs)
        with chain.computing(snapshot):
            assert snapshot.continued_from is None
    chain.release()

"""The same pipeline on DuckDB and Spark gives identical per-customer results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from microseg.features.summary import customer_summary
from microseg.features.valuation import rfm_table
from microseg.project import Project
from microseg.schema import EVENT_TYPES, EVENTS
from tests.conftest import shared_file

pytestmark = pytest.mark.spark


def random_events(n: int = 20_000, seed: int = 7) -> pd.DataFrame:
    """Events of every type, with ties, nulls, anonymous rows and refunds."""
    rng = np.random.default_rng(seed)
    types = np.array(list(EVENT_TYPES))
    kind = types[rng.integers(0, len(types), n)]
    kind[: n // 2] = "purchase"
    start = np.datetime64("2023-01-01T00:00:00")
    ts = start + rng.integers(0, 400 * 86400, n).astype("timedelta64[s]")
    customer = np.char.add("c", rng.integers(0, 800, n).astype(str)).astype(object)
    customer[rng.random(n) < 0.05] = None
    commerce = np.isin(kind, ["purchase", "refund", "cancellation"])
    quantity = np.where(commerce, rng.integers(1, 5, n), 0)
    quantity = np.where(np.isin(kind, ["refund", "cancellation"]), -quantity, quantity)
    cents = rng.integers(1, 100_000, n)
    order = np.char.add("o", rng.integers(0, 6000, n).astype(str)).astype(object)
    order[rng.random(n) < 0.1] = None
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "event_type": kind,
            "ts": ts,
            "customer_id": customer,
            "source": "test",
            "order_id": np.where(commerce, order, None),
            "product_id": np.where(commerce, np.char.add("p", rng.integers(0, 50, n).astype(str)), None),
            "quantity": pd.Series(quantity, dtype="Int64").mask(~commerce),
            "amount": [
                Decimal(int(c) * int(q)) / 100 if m else None
                for c, q, m in zip(cents, quantity, commerce, strict=True)
            ],
            "import_id": "i",
        }
    )
    for c in EVENTS.column_names:
        if c not in frame:
            frame[c] = None
    return frame[EVENTS.column_names]


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.sort_values("customer_id").reset_index(drop=True)
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].astype("datetime64[us]")
    return out


def on_both_engines(warehouse, spark, tmp_path, build) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``build(events, customers)`` evaluated on DuckDB and on Spark, rows in the same order."""
    import ibis

    spark_con = ibis.pyspark.connect(spark)
    tables = {}
    for name in ("events", "customers"):
        path = tmp_path / f"{name}.parquet"
        warehouse.sql(f"COPY {name} TO '{path}' (FORMAT parquet)")
        tables[name] = spark_con.read_parquet(str(path))
    on_duckdb = build(warehouse.table("events"), warehouse.table("customers")).to_pandas()
    on_spark = build(tables["events"], tables["customers"]).to_pandas()
    return normalized(on_duckdb), normalized(on_spark[on_duckdb.columns])


def summaries_on_both(warehouse, spark, tmp_path, as_of: dt.date):
    return on_both_engines(warehouse, spark, tmp_path, lambda e, c: customer_summary(e, as_of, c))


def rfm_on_both(warehouse, spark, tmp_path, as_of: dt.date, period: str):
    return on_both_engines(warehouse, spark, tmp_path, lambda e, _: rfm_table(e, as_of, period))


def test_summary_parity_on_events_of_every_type(warehouse, spark, tmp_path):
    frame = random_events()
    warehouse.con.register("frame", frame)
    warehouse.sql("INSERT INTO events SELECT * FROM frame")
    # customers c800..c899 have no events; half signed up after the as-of date
    warehouse.sql(
        "INSERT INTO customers (customer_id, signup_date, source, updated_at) "
        "SELECT 'c' || i, DATE '2023-09-01' + CAST(i % 60 AS INTEGER), 'crm', TIMESTAMP '2024-01-01' "
        "FROM range(800, 900) t(i)"
    )
    duck, spk = summaries_on_both(warehouse, spark, tmp_path, dt.date(2023, 10, 1))
    silent = duck[duck.customer_id.isin([f"c{i}" for i in range(800, 900)])]
    assert len(silent) == 42 and (silent.orders == 0).all() and silent.first_event_at.isna().all()
    assert duck["revenue"].map(type).eq(Decimal).all()
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)
    duck, spk = rfm_on_both(warehouse, spark, tmp_path, dt.date(2023, 10, 1), "week")
    assert len(duck) > 700 and duck.frequency.sum() > 1000
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)


@pytest.mark.realdata
def test_summary_parity_on_online_retail(warehouse, spark, tmp_path):
    from microseg.config import parse_source
    from microseg.sources.files import import_file

    path = shared_file("online_retail_2010_2011.parquet")
    source = parse_source(
        "retail",
        {
            "path": str(path),
            "event_type": "purchase",
            "null_values": ["", "nan"],
            "classify": [{"event_type": "cancellation", "column": "InvoiceNo", "starts_with": "C"}],
            "columns": {
                "customer_id": "CustomerID",
                "ts": "InvoiceDate",
                "order_id": "InvoiceNo",
                "product_id": "StockCode",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
            },
        },
    )
    import_file(warehouse, source, path)
    duck, spk = summaries_on_both(warehouse, spark, tmp_path, dt.date(2011, 12, 9))
    assert len(duck) == 4_372
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)
    duck, spk = rfm_on_both(warehouse, spark, tmp_path, dt.date(2011, 12, 9), "day")
    assert len(duck) == 4_339  # customers with a purchase (the rest only cancelled)
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)


def test_project_runs_on_the_spark_backend(spark, tmp_path):
    root = tmp_path / "shop"
    Project.init(root)
    frame = random_events(3_000, seed=11)
    frame = frame.drop(columns=["source", "import_id"]).dropna(axis="columns", how="all")
    frame.to_parquet(root / "data" / "events.parquet")
    base = (root / "microseg.toml").read_text()
    source = '\n[sources.app]\npath = "data/events.parquet"\n'
    results = {}
    for backend in ("duckdb", "spark"):
        text = base.replace('backend = "duckdb"', f'backend = "{backend}"') + source
        (root / "microseg.toml").write_text(text)
        with Project(root) as project:
            project.import_sources()
            run = project.run(dt.date(2023, 12, 31))
            assert run.backend == backend
            results[backend] = project.customer_summary(dt.date(2023, 12, 31))
    assert len(results["duckdb"]) > 700
    pd.testing.assert_frame_equal(results["duckdb"], results["spark"])

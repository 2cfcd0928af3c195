"""File import: mapping, validation, quarantine, idempotence, for CSV, Parquet and JSON lines."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from microseg.config import parse_source
from microseg.errors import SourceError
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.ingest.files import import_file, import_source

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
ROWS = [
    "536365,85123A,WHITE HANGING HEART,6,12/1/2010 8:26,2.55,17850,United Kingdom",  # 1 good
    "536366,22633,HAND WARMER,6,13/45/2010 8:28,1.85,17850,United Kingdom",  # 2 bad date
    "536367,84879,BIRD ORNAMENT,32,12/1/2010 8:34,-1.69,13047,United Kingdom",  # 3 negative price
    "536368,22960,JAM MAKING SET,6,12/1/2010 8:34,4.25,,United Kingdom",  # 4 no customer
    "536369,21756,BATH BLOCKS,three,12/1/2010 8:35,5.95,13047,United Kingdom",  # 5 bad quantity
    "536370,22728,ALARM CLOCK,24,12/1/2010 8:45,abc,12583,France",  # 6 bad price
    "536371,22727,ALARM CLOCK RED,24,12/1/2010 8:45,3.75,12583",  # 7 a column short
    "C536379,D,Discount,-1,12/1/2010 9:41,27.50,14527,United Kingdom",  # 8 cancellation
    "536372,22632,HAND WARMER RED,6,12/1/2010 9:01,1.85,17850.0,United Kingdom",  # 9 good
    "536373,22633,,6,,2.10,17850,United Kingdom",  # 10 no timestamp
]
EXPECTED_BAD = {
    2: "ts (InvoiceDate): cannot read '13/45/2010 8:28' as a timestamp",
    3: "unit_price (UnitPrice): -1.6900 is negative",
    4: "customer_id (CustomerID): missing",
    5: "quantity (Quantity): cannot read 'three' as a whole number",
    6: "unit_price (UnitPrice): cannot read 'abc' as a number",
    7: "row: 7 fields where 8 are expected",
    10: "ts (InvoiceDate): missing",
}

RETAIL = {
    "event_type": "purchase",
    "classify": [{"event_type": "cancellation", "column": "InvoiceNo", "starts_with": "C"}],
    "columns": {
        "customer_id": "CustomerID",
        "ts": "InvoiceDate",
        "order_id": "InvoiceNo",
        "product_id": "StockCode",
        "quantity": "Quantity",
        "unit_price": "UnitPrice",
    },
    "customer_columns": {"country": "Country"},
    "product_columns": {"name": "Description"},
    "missing_customer": "quarantine",
}


def retail_source(path: Path, **overrides) -> object:
    body = {"path": str(path), **RETAIL, **overrides}
    return parse_source("retail", body)


@pytest.fixture
def broken_csv(tmp_path: Path) -> Path:
    path = tmp_path / "retail.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def quarantine_by_row(wh) -> dict[int, str]:
    return dict(wh.fetch("SELECT row_number, reason FROM quarantine ORDER BY row_number"))


def test_csv_loads_good_rows_and_quarantines_each_bad_one_with_its_reason(warehouse, broken_csv):
    source = retail_source(broken_csv, timestamp_format="%m/%d/%Y %H:%M")
    result = import_file(warehouse, source, broken_csv)
    assert (result.rows_read, result.loaded, result.duplicates, result.quarantined) == (10, 3, 0, 7)
    reasons = quarantine_by_row(warehouse)
    assert set(reasons) == set(EXPECTED_BAD)
    for row, reason in EXPECTED_BAD.items():
        assert reasons[row].startswith(reason), (row, reasons[row])
    # the quarantined row keeps what was read, so nothing is lost
    record = json.loads(warehouse.fetch("SELECT record FROM quarantine WHERE row_number = 5")[0][0])
    assert record["Quantity"] == "three"
    events = warehouse.fetch_df("SELECT * FROM events ORDER BY ts")
    assert list(events.order_id) == ["536365", "536372", "C536379"]
    assert list(events.event_type) == ["purchase", "purchase", "cancellation"]
    # float-looking ids are the same customer; cancellations are stored negative
    assert list(events.customer_id) == ["17850", "17850", "14527"]
    cancel = events[events.event_type == "cancellation"].iloc[0]
    assert cancel.quantity == -1 and cancel.amount == -27.5
    assert events.ts.iloc[0] == pd.Timestamp("2010-12-01 08:26")
    assert events.amount.iloc[0] == 15.3


def test_reimport_adds_nothing(warehouse, broken_csv):
    source = retail_source(broken_csv, timestamp_format="%m/%d/%Y %H:%M")
    import_file(warehouse, source, broken_csv)
    tables = ("events", "customers", "products", "quarantine")
    before = {t: warehouse.count(t) for t in tables}
    again = import_file(warehouse, source, broken_csv)
    assert (again.loaded, again.duplicates, again.quarantined) == (0, 3, 7)
    assert {t: warehouse.count(t) for t in tables} == before
    assert warehouse.count("imports") == 2


def test_parquet_and_jsonl_give_the_same_result_as_csv(broken_csv, tmp_path):
    complete_rows = [row for i, row in enumerate(ROWS, 1) if i != 7]  # row 7 is a CSV-only defect
    frame = pd.read_csv(io.StringIO("\n".join([HEADER, *complete_rows])), dtype=str, keep_default_na=False)
    parquet = tmp_path / "retail.parquet"
    frame.to_parquet(parquet)
    jsonl = tmp_path / "retail.jsonl"
    lines = [json.dumps(rec) for rec in frame.to_dict(orient="records")]
    lines.insert(3, "{not json")
    jsonl.write_text("\n".join(lines) + "\n")
    results, events, reasons = {}, {}, {}
    for path in (broken_csv, parquet, jsonl):
        # each format in a warehouse of its own: different files are different events
        with DuckDBWarehouse(":memory:") as wh:
            results[path.suffix] = import_file(
                wh, retail_source(path, timestamp_format="%m/%d/%Y %H:%M"), path
            )
            events[path.suffix] = wh.fetch(
                "SELECT event_type, ts, customer_id, order_id, product_id, quantity, unit_price, amount "
                "FROM events ORDER BY ts, order_id"
            )
            reasons[path.suffix] = sorted(r[0] for r in wh.fetch("SELECT reason FROM quarantine"))
    assert [results[s].loaded for s in (".csv", ".parquet", ".jsonl")] == [3, 3, 3]
    assert events[".csv"] == events[".parquet"] == events[".jsonl"]
    assert results[".parquet"].quarantined == 6
    assert results[".jsonl"].quarantined == 7
    assert reasons[".csv"] == sorted([*reasons[".parquet"], "row: 7 fields where 8 are expected"])
    assert reasons[".jsonl"] == sorted([*reasons[".parquet"], "not a JSON object"])


def test_typed_parquet_columns(warehouse, tmp_path):
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "who": [1.0, float("nan"), 3.0],
            "when": pd.to_datetime(["2024-01-01 10:00", "2024-01-02 11:00", "2024-01-03 12:00"]),
            "qty": [1, 2, 0],
            "price": [9.99, 5.0, 1.0],
            "extra": ["x", "y", "z"],
        }
    )
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    source = parse_source(
        "orders",
        {
            "path": str(path),
            "event_type": "purchase",
            "columns": {
                "event_id": "id",
                "customer_id": "who",
                "ts": "when",
                "quantity": "qty",
                "unit_price": "price",
            },
        },
    )
    result = import_file(warehouse, source, path)
    assert (result.loaded, result.quarantined) == (2, 1)
    assert result.details["anonymous"] == 1
    assert quarantine_by_row(warehouse) == {3: "quantity (qty): 0 must be positive for a purchase"}
    rows = warehouse.fetch("SELECT event_id, customer_id, amount, properties FROM events ORDER BY 1")
    assert rows[0] == ("a", "1", Decimal("9.9900"), '{"extra":"x"}')
    assert rows[1][1] is None


def test_duplicate_event_ids_in_one_file_are_counted(warehouse, tmp_path):
    path = tmp_path / "web.csv"
    path.write_text(
        "id,user,time,page\n"
        "e1,u1,2024-05-01T10:00:00Z,/home\n"
        "e2,u1,2024-05-01T10:01:00+02:00,/pricing\n"
        "e1,u1,2024-05-01T10:00:00Z,/home\n"
    )
    source = parse_source(
        "web",
        {
            "path": str(path),
            "event_type": "page_view",
            "columns": {"event_id": "id", "customer_id": "user", "ts": "time", "url": "page"},
        },
    )
    result = import_file(warehouse, source, path)
    assert (result.rows_read, result.loaded, result.duplicates) == (3, 2, 1)
    times = dict(warehouse.fetch("SELECT event_id, ts FROM events"))
    assert times["e2"] == dt.datetime(2024, 5, 1, 8, 1)  # offsets are converted to UTC


def test_source_timezone_converts_to_utc(warehouse, tmp_path):
    path = tmp_path / "pos.csv"
    path.write_text("customer,time,amount\nc1,2024-07-01 10:00:00,5\nc1,2024-01-15 10:00:00,6\n")
    source = parse_source(
        "pos",
        {
            "path": str(path),
            "event_type": "purchase",
            "timezone": "Europe/London",
            "columns": {"customer_id": "customer", "ts": "time", "amount": "amount"},
        },
    )
    import_file(warehouse, source, path)
    stamps = sorted(r[0] for r in warehouse.fetch("SELECT ts FROM events"))
    assert stamps == [dt.datetime(2024, 1, 15, 10, 0), dt.datetime(2024, 7, 1, 9, 0)]


def test_out_of_range_dates_and_unknown_event_types_are_quarantined(warehouse, tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id,ts,event_type\n"
        "c1,1900-01-01,page_view\n"
        "c1,2999-01-01,page_view\n"
        "c1,2024-01-01,teleport\n"
        "c1,2024-01-01,PAGE_VIEW\n"
    )
    source = parse_source("app", {"path": str(path)})
    result = import_file(warehouse, source, path)
    assert (result.loaded, result.quarantined) == (1, 3)
    reasons = quarantine_by_row(warehouse)
    assert "out of range" in reasons[1] and "out of range" in reasons[2]
    assert reasons[3] == "event_type: 'teleport' is not an event type"


def test_customers_source_upserts_traits_and_validates(warehouse, tmp_path):
    first = tmp_path / "crm1.csv"
    first.write_text(
        "id,mail,born,city,tier\n"
        "c1,ann@example.com,1980,Leeds,gold\n"
        "c2,not-an-email,1985,York,silver\n"
        "c3,cy@example.com,1850,Bath,\n"
    )
    second = tmp_path / "crm2.csv"
    second.write_text("id,mail,born,city,tier\nc1,,1980,London,gold\nc4,dee@example.com,,,\n")
    source = parse_source(
        "crm",
        {
            "path": str(tmp_path / "crm*.csv"),
            "kind": "customers",
            "columns": {"customer_id": "id", "email": "mail", "birth_year": "born"},
        },
    )
    results = import_source(warehouse, source, tmp_path)
    assert [(r.loaded, r.duplicates, r.quarantined) for r in results] == [(1, 0, 2), (2, 0, 0)]
    assert results[1].details["updated"] == 1
    again = import_file(warehouse, source, second)  # the latest state again: nothing changes
    assert (again.loaded, again.duplicates, again.quarantined) == (0, 2, 0)
    rows = warehouse.fetch_df("SELECT * FROM customers ORDER BY customer_id")
    assert list(rows.customer_id) == ["c1", "c4"]
    c1 = rows.iloc[0]
    assert (c1.email, c1.city, json.loads(c1.traits)) == ("ann@example.com", "London", {"tier": "gold"})
    reasons = quarantine_by_row(warehouse)
    assert reasons[2] == "email (mail): 'not-an-email' is not an email address"
    assert reasons[3] == "birth_year (born): 1850 is not a plausible year of birth"


def test_products_from_event_rows_take_the_latest_name(warehouse, broken_csv):
    source = retail_source(broken_csv, timestamp_format="%m/%d/%Y %H:%M")
    import_file(warehouse, source, broken_csv)
    products = dict(warehouse.fetch("SELECT product_id, name FROM products"))
    assert products == {"85123A": "WHITE HANGING HEART", "22632": "HAND WARMER RED", "D": "Discount"}
    customers = dict(warehouse.fetch("SELECT customer_id, country FROM customers"))
    assert customers == {"17850": "United Kingdom", "14527": "United Kingdom"}


def test_anonymous_policy_keeps_rows_without_customer(warehouse, broken_csv):
    source = retail_source(broken_csv, timestamp_format="%m/%d/%Y %H:%M", missing_customer="anonymous")
    result = import_file(warehouse, source, broken_csv)
    assert (result.loaded, result.quarantined) == (4, 6)
    assert result.details["anonymous"] == 1
    assert result.details["missing"]["customer_id (CustomerID)"] == 1


def test_unreadable_sources_fail_with_the_field_named(warehouse, broken_csv, tmp_path):
    with pytest.raises(SourceError, match=r"columns.customer_id: column 'Client' is not in the file"):
        import_file(
            warehouse,
            retail_source(broken_csv, columns={**RETAIL["columns"], "customer_id": "Client"}),
            broken_csv,
        )
    with pytest.raises(SourceError, match=r"sources.retail.path: no file matches"):
        import_source(warehouse, retail_source(tmp_path / "nothing-*.csv"), tmp_path)
    nameless = tmp_path / "data.dat"
    nameless.write_text("a\n1\n")
    with pytest.raises(SourceError, match="cannot tell the format"):
        import_file(warehouse, retail_source(nameless), nameless)
    assert warehouse.count("events") == 0  # a failed import leaves nothing behind

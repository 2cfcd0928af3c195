"""Readers: delimiters (whitespace too), header and column names, encodings, gzip, spreadsheets.

Every reader keeps the import's guarantees: rows_read = loaded + duplicates + corrected +
quarantined, and a quarantined row carries its row number in the file.
"""

from __future__ import annotations

import datetime as dt
import gzip
from decimal import Decimal

import pytest

from microseg.config import parse_source
from microseg.errors import SourceError
from microseg.sources import spreadsheets
from microseg.warehouse.ingest.files import import_file
from tests.conftest import shared_file
from tests.sources.conftest import orders_source, write

CDNOW_NAMES = ["customer", "sample", "day", "cds", "dollars"]


def cdnow_source(path, **settings):
    body = {
        "path": str(path),
        "event_type": "purchase",
        "delimiter": "whitespace",
        "header": False,
        "column_names": CDNOW_NAMES,
        "timestamp_format": "%Y%m%d",
        "columns": {"customer_id": "customer", "ts": "day", "quantity": "cds", "amount": "dollars"},
        **settings,
    }
    return parse_source("cdnow", body)


def assert_adds_up(result):
    assert result.rows_read == result.loaded + result.duplicates + result.corrected + result.quarantined


def test_whitespace_separated_gzip_without_header(warehouse, tmp_path):
    text = " 00001 00001 19970101  1   11.77\r\n 00002 00001 19970112  2   29.33\r\n00003 0001 1997013 x\r\n"
    path = tmp_path / "cdnow.txt.gz"
    path.write_bytes(gzip.compress(text.encode()))
    result = import_file(warehouse, cdnow_source(path), path)
    assert (result.rows_read, result.loaded, result.quarantined) == (3, 2, 1)
    assert_adds_up(result)
    reason = warehouse.fetch("SELECT row_number, reason FROM quarantine")[0]
    assert reason == (3, "row: 4 fields where 5 are expected")
    rows = warehouse.fetch("SELECT customer_id, ts, quantity, amount FROM events ORDER BY ts")
    assert rows[0] == ("00001", dt.datetime(1997, 1, 1), 1, Decimal("11.7700"))


@pytest.mark.realdata
def test_the_cdnow_sample_loads_whole(warehouse):
    path = shared_file("cdnow_sample.txt.gz")
    with gzip.open(path, "rt") as f:
        lines = [line.split() for line in f if line.strip()]
    result = import_file(warehouse, cdnow_source(path), path)
    assert (
        (result.rows_read, result.loaded, result.quarantined)
        == (len(lines), len(lines), 0)
        == (
            6_919,
            6_919,
            0,
        )
    )
    customers, dollars = warehouse.fetch("SELECT count(DISTINCT customer_id), sum(amount) FROM events")[0]
    assert customers == len({fields[0] for fields in lines}) == 2_357
    assert dollars == sum(Decimal(fields[4]) for fields in lines)


def test_header_off_and_column_names_on_a_delimited_file(warehouse, tmp_path):
    path = write(tmp_path / "orders.tsv", "c1\t2024-03-01\tp1\t2\t4.50\nc2\t2024-03-02\tp2\t1\t3.00\n")
    source = orders_source(path, header=False, column_names=["customer", "day", "sku", "qty", "price"])
    result = import_file(warehouse, source, path)
    assert (result.rows_read, result.loaded) == (2, 2)
    wrong = orders_source(path, header=False, column_names=["customer", "day", "sku"])
    with pytest.raises(SourceError, match=r"column_names: 3 names for 5 columns"):
        import_file(warehouse, wrong, path)


def test_encoding_setting_and_a_clear_message_for_other_encodings(warehouse, tmp_path):
    text = "customer,day,sku,qty,price,label\nc1,2024-03-01,p1,2,4.50,Crème brûlée\nc2,2024-03-02,p2,1,3.00,Tea\n"
    latin = tmp_path / "latin.csv"
    latin.write_bytes(text.encode("latin-1"))
    source = orders_source(latin, product_columns={"name": "label"})
    plain = import_file(warehouse, source, latin)  # read as UTF-8: the bad row only is quarantined
    assert (plain.loaded, plain.quarantined) == (1, 1)
    assert any('encoding = "latin-1"' in hint or "encoding" in hint for hint in plain.hints())
    fixed = import_file(
        warehouse, orders_source(latin, encoding="latin-1", product_columns={"name": "label"}), latin
    )
    assert (fixed.loaded, fixed.duplicates, fixed.quarantined) == (1, 1, 0)
    assert dict(warehouse.fetch("SELECT product_id, name FROM products"))["p1"] == "Crème brûlée"

    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.encode("utf-16"))
    with pytest.raises(SourceError, match=r'not UTF-8 \(it looks like UTF-16\); set encoding = "utf-16"'):
        import_file(warehouse, orders_source(utf16), utf16)
    result = import_file(warehouse, orders_source(utf16, encoding="utf-16"), utf16)
    assert (result.rows_read, result.quarantined) == (2, 0)


def test_an_empty_file_says_so(warehouse, tmp_path):
    empty = write(tmp_path / "empty.csv", "")
    with pytest.raises(SourceError, match="the file is empty"):
        import_file(warehouse, parse_source("app", {"path": str(empty)}), empty)
    header_only = write(tmp_path / "header.csv", "customer,day,sku,qty,price\n")
    result = import_file(warehouse, orders_source(header_only), header_only)
    assert (result.rows_read, result.loaded) == (0, 0)


def xlsx_file(path, rows, sheet="Orders"):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Notes"
    book.active.append(["this sheet is not data"])
    data = book.create_sheet(sheet)
    for row in rows:
        data.append(row)
    book.save(path)
    return path


@pytest.fixture(params=["calamine", "openpyxl"])
def xlsx_engine(request, monkeypatch):
    if request.param == "calamine":
        pytest.importorskip("python_calamine")
    monkeypatch.setattr(spreadsheets, "engine", lambda: request.param)
    return request.param


def test_xlsx_sheet_loads_with_row_numbers_in_quarantine(warehouse, tmp_path, xlsx_engine):
    path = xlsx_file(
        tmp_path / "orders.xlsx",
        [
            ["InvoiceNo", "CustomerID", "InvoiceDate", "StockCode", "Quantity", "UnitPrice"],
            [536365, 17850.0, dt.datetime(2010, 12, 1, 8, 26), "85123A", 6, 2.55],
            ["C536379", 14527.0, dt.datetime(2010, 12, 1, 9, 41), "D", -1, 27.5],
            [536366, 17850.0, dt.datetime(2010, 12, 1, 8, 28), "22633", 6, "abc"],
            [None, None, None, None, None, None],
            [536367, None, "12/01/2010 08:34", 84879, 32, 1.69],
        ],
    )
    source = parse_source(
        "retail",
        {
            "path": str(path),
            "sheet": "Orders",
            "event_type": "purchase",
            "classify": [{"event_type": "cancellation", "column": "InvoiceNo", "starts_with": "C"}],
            "timestamp_format": "%m/%d/%Y %H:%M",
            "columns": {
                "order_id": "InvoiceNo",
                "customer_id": "CustomerID",
                "ts": "InvoiceDate",
                "product_id": "StockCode",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
            },
        },
    )
    result = import_file(warehouse, source, path)
    assert (result.rows_read, result.loaded, result.quarantined) == (4, 3, 1)
    assert_adds_up(result)
    assert warehouse.fetch("SELECT row_number, reason FROM quarantine") == [
        (3, "unit_price (UnitPrice): cannot read 'abc' as a number")
    ]
    events = warehouse.fetch("SELECT order_id, customer_id, ts, product_id, amount FROM events ORDER BY ts")
    assert events[0] == ("536365", "17850", dt.datetime(2010, 12, 1, 8, 26), "85123A", Decimal("15.3000"))
    assert events[1][0] == "536367" and events[1][3] == "84879"  # text dates follow timestamp_format
    assert events[2][:2] == ("C536379", "14527") and events[2][4] == Decimal("-27.5000")


def test_xlsx_unknown_sheet_names_the_sheets(warehouse, tmp_path, xlsx_engine):
    path = xlsx_file(tmp_path / "orders.xlsx", [["customer", "day"], ["c1", "2024-01-01"]])
    source = parse_source(
        "app",
        {
            "path": str(path),
            "sheet": "Ordres",
            "event_type": "page_view",
            "columns": {"customer_id": "customer", "ts": "day"},
        },
    )
    with pytest.raises(SourceError, match=r"sheet 'Ordres' is not in .*Notes, Orders"):
        import_file(warehouse, source, path)

"""One bad row never aborts its file; a broken file or a failing disk is reported by its cause."""

from __future__ import annotations

import json
from decimal import Decimal

import duckdb
import pytest

from microseg.config import parse_source
from microseg.errors import SourceError, WarehouseError
from microseg.warehouse.ingest.files import import_file
from tests.sources.conftest import orders_source, write

BIG = 2 * 1024 * 1024 + 10  # just over the 2 MB limit of one value


def reasons(wh) -> dict[int, str]:
    return dict(wh.fetch("SELECT row_number, reason FROM quarantine ORDER BY row_number"))


def test_an_amount_too_large_for_money_is_quarantined(warehouse, tmp_path):
    path = write(
        tmp_path / "orders.csv",
        "customer,day,sku,qty,price\n"
        "c1,2024-03-01,p1,2,4.50\n"
        "c1,2024-03-01,p1,9000000000,90000000\n"
        "c1,2024-03-01,p1,1,1e20\n",
    )
    result = import_file(warehouse, orders_source(path), path)
    assert (result.loaded, result.quarantined) == (1, 2)
    got = reasons(warehouse)
    assert got[2].startswith("amount: quantity × unit_price is too large")
    assert got[3] == "unit_price (price): '1e20' is too large (at most 14 digits before the decimal point)"


def test_a_non_utf8_byte_in_json_lines_is_quarantined(warehouse, tmp_path):
    path = tmp_path / "web.jsonl"
    lines = [
        json.dumps({"user": "u1", "time": "2024-05-01T10:00:00Z", "page": "/a"}).encode(),
        b'{"user": "u2", "time": "2024-05-01T10:00:00Z", "page": "/caf\xe9"}',
        json.dumps({"user": "u3", "time": "2024-05-01T11:00:00Z", "page": "/b"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = parse_source(
        "web",
        {
            "path": str(path),
            "event_type": "page_view",
            "columns": {"customer_id": "user", "ts": "time", "url": "page"},
        },
    )
    result = import_file(warehouse, source, path)
    assert (result.rows_read, result.loaded, result.quarantined) == (3, 2, 1)
    assert reasons(warehouse)[2].startswith("row: not UTF-8 text")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_field_over_2_mb_is_quarantined_naming_the_field(warehouse, tmp_path, fmt):
    rows = [
        {"customer": "c1", "day": "2024-03-01", "sku": "p1", "qty": "1", "price": "2", "note": "ok"},
        {"customer": "c2", "day": "2024-03-01", "sku": "p1", "qty": "1", "price": "2", "note": "x" * BIG},
        {"customer": "c3", "day": "2024-03-01", "sku": "p1", "qty": "1", "price": "2", "note": "ok"},
    ]
    path = tmp_path / f"orders.{fmt}"
    if fmt == "csv":
        path.write_text(
            "customer,day,sku,qty,price,note\n" + "".join(",".join(r.values()) + "\n" for r in rows)
        )
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = orders_source(
        path,
        columns={
            "customer_id": "customer",
            "ts": "day",
            "product_id": "sku",
            "quantity": "qty",
            "unit_price": "price",
            "name": "note",
        },
    )
    result = import_file(warehouse, source, path)
    assert (result.rows_read, result.loaded, result.quarantined) == (3, 2, 1)
    assert reasons(warehouse)[2].startswith("name (note): the value is 2.0 MB, over the 2 MB limit")


def test_an_unterminated_quote_does_not_load_the_quote_as_part_of_an_id(warehouse, tmp_path):
    path = write(
        tmp_path / "orders.csv",
        'customer,day,sku,qty,price\nc0,2024-03-01,p1,1,2.00\n"C1,2024-03-01,p1,1,2.00\nc2,2024-03-01,p1,1,2.00\n',
    )
    result = import_file(warehouse, orders_source(path), path)
    assert result.rows_read == result.loaded + result.quarantined == 3
    assert result.loaded == 1
    assert reasons(warehouse)[2].startswith("row: a quote opens a value and never closes")
    customers = {r[0] for r in warehouse.fetch("SELECT customer_id FROM events")}
    assert customers == {"c0"}


def test_purchases_without_quantity_or_amount_are_refused(warehouse, tmp_path):
    path = write(tmp_path / "orders.csv", "customer,day,sku,price\nc1,2024-03-01,p1,4.50\n")
    source = orders_source(
        path, columns={"customer_id": "customer", "ts": "day", "product_id": "sku", "unit_price": "price"}
    )
    with pytest.raises(SourceError, match=r"sources.orders.columns.quantity: .*default_quantity"):
        import_file(warehouse, source, path)
    assert warehouse.count("events") == 0
    one_each = orders_source(
        path,
        default_quantity=1,
        columns={"customer_id": "customer", "ts": "day", "product_id": "sku", "unit_price": "price"},
    )
    result = import_file(warehouse, one_each, path)
    assert result.loaded == 1
    assert warehouse.fetch("SELECT quantity, amount FROM events") == [(1, Decimal("4.5000"))]


def test_prices_with_more_than_four_decimals_are_reported_and_amounts_kept_exact(warehouse, tmp_path):
    path = write(
        tmp_path / "orders.csv",
        "customer,day,sku,qty,price\nc1,2024-03-01,p1,1000,0.00125\nc1,2024-03-01,p2,2,4.50\n",
    )
    result = import_file(warehouse, orders_source(path), path)
    assert result.loaded == 2
    assert result.details["rounded"] == {"unit_price (price)": 1}
    rows = {p: (u, a) for p, u, a in warehouse.fetch("SELECT product_id, unit_price, amount FROM events")}
    assert rows["p1"] == (Decimal("0.0013"), Decimal("1.2500"))  # 1000 x 0.00125, not 1000 x 0.0013
    assert rows["p2"] == (Decimal("4.5000"), Decimal("9.0000"))


def test_an_offset_that_is_no_time_zone_is_quarantined(warehouse, tmp_path):
    path = write(
        tmp_path / "web.csv",
        "user,time\nu1,2024-05-01T10:00:00+02:00\nu1,2024-05-01T10:00:00+25:00\nu1,2024-05-01T10:00:00-13:00\n",
    )
    source = parse_source(
        "web",
        {"path": str(path), "event_type": "page_view", "columns": {"customer_id": "user", "ts": "time"}},
    )
    result = import_file(warehouse, source, path)
    assert (result.loaded, result.quarantined) == (1, 2)
    assert reasons(warehouse)[2] == (
        "ts (time): '2024-05-01T10:00:00+25:00' has an offset that is not a time zone (-12:00 to +14:00)"
    )


def test_a_full_disk_is_reported_by_its_cause_not_by_the_failed_rollback(warehouse, tmp_path, monkeypatch):
    path = write(tmp_path / "orders.csv", "customer,day,sku,qty,price\nc1,2024-03-01,p1,2,4.50\n")
    real_sql, real_changed = warehouse.sql, warehouse.changed

    def changed(statement, params=None):
        if statement.startswith("INSERT INTO events"):
            raise duckdb.IOException(
                'IO Error: Could not write file "wh.duckdb.wal": No space left on device'
            )
        return real_changed(statement, params)

    def sql(statement, params=None):
        if statement == "ROLLBACK":
            real_sql(statement, params)
            raise duckdb.TransactionException(
                "TransactionContext Error: cannot rollback - no transaction is active"
            )
        return real_sql(statement, params)

    monkeypatch.setattr(warehouse, "changed", changed)
    monkeypatch.setattr(warehouse, "sql", sql)
    with pytest.raises(WarehouseError, match=r"disk .*is full.*No space left on device"):
        import_file(warehouse, orders_source(path), path)
    monkeypatch.undo()
    assert warehouse.count("events") == warehouse.count("imports") == warehouse.count("quarantine") == 0
    assert import_file(warehouse, orders_source(path), path).loaded == 1  # and the warehouse still works

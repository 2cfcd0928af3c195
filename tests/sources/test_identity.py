"""Which rows are events: every line of a file, unless a natural key is configured.

Idempotency is by file content and line position: the same file (under any name) adds nothing
the second time, a file that grew keeps the ids of its earlier lines, and a changed line is a
correction that replaces the stored event.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from microseg.config import parse_source
from microseg.dynamics.snapshots import fingerprint
from microseg.errors import SourceError
from microseg.warehouse.ingest.files import import_file
from tests.sources.conftest import orders_source, write

# the same customer buys the same item count for the same amount twice on one day
IDENTICAL_LINES = (
    "customer,day,sku,qty,price\n"
    "c1,2024-03-01,p1,2,4.50\n"
    "c1,2024-03-01,p1,2,4.50\n"
    "c2,2024-03-01,p2,1,10.00\n"
    "c1,2024-03-01,p1,2,4.50\n"
    "c2,2024-03-02,p2,1,10.00\n"
)


def file_sums(text: str) -> tuple[int, Decimal]:
    """Lines and revenue of an orders file, computed straight from its text."""
    lines = text.strip().splitlines()[1:]
    revenue = sum(Decimal(q) * Decimal(p) for *_, q, p in (line.split(",") for line in lines))
    return len(lines), revenue


def stored_sums(wh) -> tuple[int, Decimal]:
    count, revenue = wh.fetch("SELECT count(*), coalesce(sum(amount), 0) FROM events")[0]
    return int(count), revenue


def test_identical_lines_are_separate_events(warehouse, tmp_path):
    path = write(tmp_path / "orders.csv", IDENTICAL_LINES)
    result = import_file(warehouse, orders_source(path), path)
    assert (result.rows_read, result.loaded, result.duplicates, result.quarantined) == (5, 5, 0, 0)
    assert stored_sums(warehouse) == file_sums(IDENTICAL_LINES) == (5, Decimal("47.00"))


def test_reimport_and_a_renamed_copy_store_nothing_twice(warehouse, tmp_path):
    text = IDENTICAL_LINES + "c3,2024-03-03,p3,zero,1.00\n"  # one bad line, for the quarantine
    path = write(tmp_path / "orders.csv", text)
    import_file(warehouse, orders_source(path), path)
    before = {t: warehouse.count(t) for t in ("events", "quarantine", "customers", "products")}
    again = import_file(warehouse, orders_source(path), path)
    assert (again.loaded, again.duplicates, again.corrected, again.quarantined) == (0, 5, 0, 1)
    copy = write(tmp_path / "copy-of-orders.csv", text)
    renamed = import_file(warehouse, orders_source(copy), copy)
    assert (renamed.loaded, renamed.duplicates, renamed.quarantined) == (0, 5, 1)
    after = {t: warehouse.count(t) for t in ("events", "quarantine", "customers", "products")}
    assert after == before
    # the one quarantined line is kept once, under the name it was last imported as
    assert warehouse.fetch("SELECT file, row_number FROM quarantine") == [(str(copy), 6)]


def test_a_file_that_grew_keeps_the_ids_of_its_earlier_lines(warehouse, tmp_path):
    path = write(tmp_path / "daily.csv", IDENTICAL_LINES)
    import_file(warehouse, orders_source(path), path)
    ids_before = {r[0] for r in warehouse.fetch("SELECT event_id FROM events")}
    grown = IDENTICAL_LINES + "c3,2024-03-04,p1,1,4.50\nc3,2024-03-04,p1,1,4.50\n"
    write(path, grown)
    result = import_file(warehouse, orders_source(path), path)
    assert (result.loaded, result.duplicates, result.corrected) == (2, 5, 0)
    ids_after = {r[0] for r in warehouse.fetch("SELECT event_id FROM events")}
    assert ids_before < ids_after
    assert stored_sums(warehouse) == file_sums(grown)
    # the grown export under a new name (tomorrow's copy) is recognised too
    tomorrow = write(tmp_path / "daily-2.csv", grown + "c4,2024-03-05,p2,1,10.00\n")
    result = import_file(warehouse, orders_source(tomorrow), tomorrow)
    assert (result.loaded, result.duplicates) == (1, 7)
    assert stored_sums(warehouse) == file_sums(tomorrow.read_text())


def test_a_corrected_line_replaces_its_event_and_is_counted(warehouse, tmp_path):
    path = write(tmp_path / "orders.csv", IDENTICAL_LINES)
    import_file(warehouse, orders_source(path), path)
    fixed = IDENTICAL_LINES.replace("c2,2024-03-01,p2,1,10.00", "c2,2024-03-01,p2,1,12.00")
    write(path, fixed)
    result = import_file(warehouse, orders_source(path), path)
    assert (result.loaded, result.duplicates, result.corrected, result.quarantined) == (0, 4, 1, 0)
    assert result.rows_read == result.loaded + result.duplicates + result.corrected + result.quarantined
    assert stored_sums(warehouse) == file_sums(fixed)
    # a line removed from the end of a changed file removes its event
    shorter = "\n".join(fixed.splitlines()[:-1]) + "\n"
    write(path, shorter)
    result = import_file(warehouse, orders_source(path), path)
    assert result.details["removed"] == 1
    assert stored_sums(warehouse) == file_sums(shorter)


def test_a_fixed_setting_on_the_same_file_corrects_its_events(warehouse, tmp_path):
    path = write(tmp_path / "orders.csv", IDENTICAL_LINES)
    import_file(warehouse, orders_source(path), path)
    result = import_file(warehouse, orders_source(path, timezone="Europe/Paris"), path)
    assert (result.loaded, result.duplicates, result.corrected) == (0, 0, 5)
    assert warehouse.fetch("SELECT min(ts) FROM events")[0][0].hour == 23  # 00:00 in Paris


def test_event_key_names_what_identifies_an_event(warehouse, tmp_path):
    text = "order,customer,day,sku,qty,price\no1,c1,2024-03-01,p1,2,4.50\no1,c1,2024-03-01,p2,1,3.00\n"
    first = write(tmp_path / "export-1.csv", text)
    source = parse_source(
        "orders",
        {
            "path": str(tmp_path / "export-*.csv"),
            "event_type": "purchase",
            "event_key": ["order_id", "product_id"],
            "columns": {
                "order_id": "order",
                "customer_id": "customer",
                "ts": "day",
                "product_id": "sku",
                "quantity": "qty",
                "unit_price": "price",
            },
        },
    )
    assert import_file(warehouse, source, first).loaded == 2
    # a later export repeats order o1: line 1 unchanged, line 2 corrected, and a new order
    later = write(
        tmp_path / "export-2.csv",
        text.replace("p2,1,3.00", "p2,2,3.00") + "o2,c2,2024-03-02,p1,1,4.50\n",
    )
    result = import_file(warehouse, source, later)
    assert (result.loaded, result.duplicates, result.corrected) == (1, 1, 1)
    assert stored_sums(warehouse) == (3, Decimal("19.50"))


def test_repeated_ids_in_one_file_with_new_content_are_corrections(warehouse, tmp_path):
    path = write(
        tmp_path / "web.csv",
        "id,user,time,page\n"
        "e1,u1,2024-05-01T10:00:00Z,/home\n"
        "e1,u1,2024-05-01T10:00:00Z,/home\n"
        "e1,u1,2024-05-01T10:00:00Z,/pricing\n",
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
    assert (result.rows_read, result.loaded, result.duplicates, result.corrected) == (3, 1, 1, 1)
    assert warehouse.fetch("SELECT url FROM events") == [("/pricing",)]  # the last version wins


def test_a_correction_changes_the_snapshot_fingerprint(tmp_path):
    from microseg.project import Project

    root = tmp_path / "shop"
    write(root / "data" / "orders.csv", IDENTICAL_LINES)
    write(
        root / "microseg.toml",
        '[sources.orders]\npath = "data/orders.csv"\nevent_type = "purchase"\n'
        'columns = { customer_id = "customer", ts = "day", product_id = "sku", quantity = "qty", '
        'unit_price = "price" }\n',
    )
    with Project(root) as project:
        project.import_sources()
        as_of = project.analysis_date()
        before = fingerprint(project.warehouse, as_of, project.config)
        write(root / "data" / "orders.csv", IDENTICAL_LINES.replace("4.50", "4.75", 1))
        (result,) = project.import_sources()
        assert result.corrected == 1
        after = fingerprint(project.warehouse, as_of, project.config)
    assert before[1] == after[1]  # the same number of events ...
    assert before[0] != after[0]  # ... but not the same inputs


@pytest.mark.parametrize("key", [["order"], ["event_id"]])
def test_event_key_must_name_event_fields(key):
    from microseg.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sources.orders.event_key"):
        orders_source("x.csv", event_key=key)


def test_a_file_imported_by_the_content_keyed_version_is_not_stored_twice(warehouse, tmp_path):
    path = write(tmp_path / "orders.csv", IDENTICAL_LINES)
    # what an import by the earlier version left: events with content ids, a log row without lineage
    warehouse.sql(
        "INSERT INTO imports (import_id, source, file, started_at, seconds, rows_read, loaded, duplicates, "
        "quarantined) VALUES ('old', 'orders', ?, now(), 1, 5, 3, 2, 0)",
        [str(path)],
    )
    with pytest.raises(SourceError, match=r"imported by an earlier version .* event_key"):
        import_file(warehouse, orders_source(path), path)
    assert warehouse.count("events") == 0
    keyed = orders_source(path, event_key=["customer_id", "ts", "product_id"])
    assert import_file(warehouse, keyed, path).rows_read == 5

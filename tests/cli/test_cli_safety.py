"""Hostile text through every command: ids, categories and quarantine reasons that look like
terminal markup, emoji codes, escape sequences, control bytes or spreadsheet formulas are shown as
text and exported inert; nothing crashes."""

from __future__ import annotations

import csv
import datetime as dt
import random
import re
from pathlib import Path

import pytest

from microseg.cli import main, state

#: Customer ids and product categories that attack a terminal or a spreadsheet.
HOSTILE = [
    "[/x]",
    "[bold red]BOLD",
    "\x1b[31mRED",
    "A\x00B",
    "=1+1",
    "@SUM(A1)",
    "-2+3",
    "+cmd",
    "\tTAB",
    ":smile:",
    "bidi\u202eevil",
]
SOURCE = """
[sources.shop]
path = "data/orders.csv"
event_type = "purchase"
columns = { order_id = "order", customer_id = "customer", ts = "when", product_id = "sku", quantity = "qty", unit_price = "price" }
product_columns = { category = "category" }
"""
SNAPSHOTS = ("2024-05-31", "2024-06-30")


def shows(text: str) -> str:
    """How a hostile string must read on the terminal."""
    escapes = {"\x1b": "\\x1b", "\x00": "\\x00", "\t": "\\t", "\u202e": "\\u202e"}
    return "".join(escapes.get(c, c) for c in text)


def cli(args: list[str], capsys) -> tuple[int, str, str]:
    state.debug = False
    capsys.readouterr()
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_safe(out: str, err: str) -> None:
    for stream in (out, err):
        assert "Traceback" not in stream
        assert "\x1b" not in stream and "\x00" not in stream and "\u202e" not in stream, stream
        assert "😄" not in stream


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A shop whose customers are 40 plain ones and the hostile ids, buying products of plain and
    hostile categories over the first half of 2024; two rows are quarantined for hostile values."""
    root = tmp_path_factory.mktemp("hostile") / "shop"
    state.debug = False
    assert main(["init", str(root)]) == 0
    rng = random.Random(7)
    customers = [f"C{i:03d}" for i in range(40)] + HOSTILE
    categories = ["garden", "home", *HOSTILE[:4], "=cmd"]
    rows, order = [], 0
    for n, customer in enumerate(customers):
        for _ in range(2 + n % 4):
            order += 1
            day = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(180))
            category = categories[rng.randrange(len(categories))]
            rows.append(
                [
                    f"o{order}",
                    customer,
                    f"{day} 10:00",
                    f"p-{category}",
                    1 + n % 3,
                    f"{5 + n % 7}.50",
                    category,
                ]
            )
    rows.append(["bad1", "[/x]", "[/x] not a date", "p1", 1, "2.00", "home"])
    rows.append(["bad2", "=evil", "2024-03-01 10:00", "p1", 1, "-4.00", "[bold]cat"])
    with (root / "data" / "orders.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["order", "customer", "when", "sku", "qty", "price", "category"])
        writer.writerows(rows)
    with (root / "microseg.toml").open("a") as f:
        f.write(SOURCE)
    for args in (["import"], ["backfill", "--from", SNAPSHOTS[0], "--to", SNAPSHOTS[1]]):
        code = main(["-p", str(root), *args])
        assert code == 0, args
    return root


def test_import_run_and_status_are_safe(hostile, capsys):
    for args in (
        ["import"],
        ["run", "--as-of", SNAPSHOTS[1]],  # the same date again: its results are replaced
        ["backfill", "--from", SNAPSHOTS[0], "--to", SNAPSHOTS[1]],
        ["status"],
        ["snapshots"],
    ):
        code, out, err = cli(["-p", str(hostile), *args], capsys)
        assert code == 0, err
        assert_safe(out, err)


def test_quarantine_shows_hostile_reasons_as_text(hostile, capsys):
    code, out, err = cli(["-p", str(hostile), "quarantine"], capsys)
    assert code == 0, err
    assert_safe(out, err)
    assert "'[/x] not a date'" in out and "is negative" in out


def test_values_show_every_hostile_id_as_text(hostile, capsys, tmp_path):
    code, out, err = cli(["-p", str(hostile), "values", "--top", "100"], capsys)
    assert code == 0, err
    assert_safe(out, err)
    for customer in HOSTILE:
        assert shows(customer) in out, customer


CARD_IDS = HOSTILE


@pytest.mark.parametrize("customer", CARD_IDS)
def test_cards_and_journeys_of_hostile_customers(hostile, capsys, customer):
    code, out, err = cli(["-p", str(hostile), "persona", "--customer", customer], capsys)
    assert code == 0, err
    assert_safe(out, err)
    assert f"Customer {shows(customer)}" in out
    code, out, err = cli(["-p", str(hostile), "journey", "--", customer], capsys)  # ids may start with -
    assert code == 0, err
    assert_safe(out, err)
    assert shows(customer) in out


def test_segments_and_persona_cards_with_hostile_categories(hostile, capsys):
    for kind in ("lifecycle", "behaviour", "micro", "rfm_tier"):
        code, out, err = cli(["-p", str(hostile), "segments", "--kind", kind], capsys)
        assert code == 0, err
        assert_safe(out, err)
    code, out, err = cli(["-p", str(hostile), "segments", "--kind", "behaviour"], capsys)
    ids = re.findall(r"│ (\w+\.b\d+)", out)
    for segment in ids:
        code, out, err = cli(["-p", str(hostile), "persona", segment, "--kind", "behaviour"], capsys)
        assert code == 0, err
        assert_safe(out, err)


def test_dynamics_commands_are_safe(hostile, capsys, tmp_path):
    commands = [
        ["members", "active", "--on", SNAPSHOTS[1], "--kind", "lifecycle", "--limit", "100"],
        ["migration", "--kind", "behaviour"],
        ["paths"],
        ["forecast", "--backtest"],
        ["alerts"],
        ["report", "--out", str(tmp_path / "report.html")],
    ]
    for args in commands:
        code, out, err = cli(["-p", str(hostile), *args], capsys)
        assert code == 0, (args, err)
        assert_safe(out, err)


def test_errors_quote_hostile_text_safely(hostile, capsys):
    for args in (
        ["journey", "[/x]nobody\x1b[2J"],
        ["members", "[bold]x\x00", "--on", SNAPSHOTS[1], "--kind", "lifecycle"],
        ["persona", "[/x]"],
        ["persona", "--customer", "[/x]nobody"],
    ):
        code, out, err = cli(["-p", str(hostile), *args], capsys)
        assert code == 1, (args, out)
        assert_safe(out, err)
        assert err.startswith("Error: ") and ("[/x]" in err or "[bold]x" in err), err


def test_exports_neutralise_formula_cells(hostile, capsys, tmp_path):
    exports = {
        "values": ["values"],
        "members": ["members", "active", "--on", SNAPSHOTS[1], "--kind", "lifecycle"],
        "forecast": ["forecast", "--top", "0"],
        "journey": ["journey", "--", "=1+1"],
        "quarantine": ["quarantine"],
        "segments": ["segments", "--kind", "behaviour"],
    }
    for name, args in exports.items():
        path = tmp_path / f"{name}.csv"
        code, out, err = cli(["-p", str(hostile), args[0], "--out", str(path), *args[1:]], capsys)
        assert code == 0, (name, err)
        with path.open(newline="") as f:
            cells = [cell for row in csv.reader(f) for cell in row]
        risky = [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]
        risky += [c for c in cells if c.startswith("-") and not re.fullmatch(r"-[\d.e+-]+", c)]
        assert not risky, (name, risky)
    with (tmp_path / "values.csv").open(newline="") as f:
        ids = {row["customer_id"] for row in csv.DictReader(f)}
    assert {"'=1+1", "'@SUM(A1)", "'-2+3", "'+cmd", "'\tTAB", "[/x]", ":smile:"} <= ids

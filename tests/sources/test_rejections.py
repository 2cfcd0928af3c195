"""Rejected rows are never hidden: reasons grouped with counts, hints, an exit code, and a
quarantine that is replaced when a file is imported again and can be listed and cleared."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from microseg.cli import main, state
from microseg.errors import ConfigError, RejectedRowsError
from microseg.project import Project
from microseg.warehouse.ingest.files import check_rejections, import_file
from microseg.warehouse.ingest.reasons import guess_timestamp_format
from tests.sources.conftest import orders_source, write

SOURCE = """
[sources.orders]
path = "data/orders*.csv"
event_type = "purchase"
columns = {{ customer_id = "customer", ts = "day", product_id = "sku", quantity = "qty", unit_price = "price" }}
{extra}
"""


def us_dates(n: int, start: dt.datetime = dt.datetime(2011, 3, 1, 8, 26)) -> str:
    """An orders file whose timestamps are US style (month first), one line per hour."""
    lines = ["customer,day,sku,qty,price"]
    for i in range(n):
        ts = start + dt.timedelta(hours=7 * i)
        lines.append(f"c{i % 7},{ts:%m/%d/%Y %H:%M},p{i % 3},1,2.50")
    lines.append(",,,,")  # a trailing line of empty fields, as spreadsheets export them
    return "\n".join(lines) + "\n"


def make_project(tmp_path: Path, text: str, extra: str = "") -> Path:
    root = tmp_path / "shop"
    write(root / "data" / "orders.csv", text)
    write(root / "microseg.toml", SOURCE.format(extra=extra))
    return root


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    state.debug = False
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_all_rows_rejected_exits_non_zero_with_reason_counts_and_a_hint(tmp_path, capsys):
    root = make_project(tmp_path, us_dates(300))
    code, out = run_cli(["-p", str(root), "import"], capsys)
    assert code == 1
    flat = " ".join(out.split())
    # one line per reason pattern, with its count, not one per rejected value
    assert "300 ts (day): cannot read … as a timestamp" in flat
    assert "1 ts (day): missing" in flat
    assert 'timestamp_format = "%m/%d/%Y %H:%M"' in flat
    assert "301 of 301 rows" in flat and "max_rejected_share" in flat


def test_the_exit_rule_is_testable_from_python(tmp_path):
    root = make_project(tmp_path, us_dates(50))
    with Project(root) as project:
        results = project.import_sources()
        (result,) = results
        assert result.rejected_share == 1.0
        reasons = dict(result.reason_counts())
        assert reasons["ts (day): cannot read … as a timestamp"] == 50
        with pytest.raises(RejectedRowsError, match=r"51 of 51 rows of orders.csv"):
            check_rejections(results)


def test_a_fixed_reimport_replaces_the_quarantine_of_its_file(tmp_path, capsys):
    root = make_project(tmp_path, us_dates(40))
    run_cli(["-p", str(root), "import"], capsys)
    fixed = SOURCE.format(extra='timestamp_format = "%m/%d/%Y %H:%M"')
    (root / "microseg.toml").write_text(fixed)
    code, out = run_cli(["-p", str(root), "import"], capsys)
    assert code == 0, out
    with Project(root) as project:
        rows = project.quarantine()
        assert list(rows.row_number) == [41]  # only the empty line is left
        assert project.status()["events"] == 40


def test_small_shares_pass_and_the_share_is_a_setting(tmp_path, capsys):
    text = us_dates(0) + "".join(f"c1,2024-03-{d:02d} 10:00,p1,1,2.50\n" for d in range(1, 29))
    root = make_project(tmp_path, text)  # 1 bad line of 29: 3.4%, under the 5% default
    code, out = run_cli(["-p", str(root), "import"], capsys)
    assert code == 0, out
    assert "1 ts (day): missing" in " ".join(out.split())
    (root / "microseg.toml").write_text(SOURCE.format(extra="max_rejected_share = 0.01"))
    code, out = run_cli(["-p", str(root), "import"], capsys)
    assert code == 1 and "max_rejected_share = 0.01" in out


def test_quarantine_is_listed_and_cleared_per_file_and_source(tmp_path, capsys):
    root = make_project(tmp_path, us_dates(3), extra="max_rejected_share = 1")
    write(root / "data" / "orders-2.csv", us_dates(2))
    with Project(root) as project:
        project.import_sources()
        assert len(project.quarantine()) == 7
        assert len(project.quarantine(file="orders-2.csv")) == 3
        assert len(project.quarantine(source="orders", file=str(root / "data" / "orders.csv"))) == 4
        with pytest.raises(ConfigError, match='did you mean "orders"'):
            project.quarantine(source="ordres")
    p = ["-p", str(root)]
    code, out = run_cli([*p, "quarantine", "--file", "orders-2.csv"], capsys)
    assert code == 0 and "3 quarantined rows" in out
    assert "orders.csv" not in out.replace("orders-2.csv", "")
    code, out = run_cli([*p, "quarantine", "--clear", "--file", "orders-2.csv"], capsys)
    assert code == 0 and "Cleared 3 quarantined rows" in out
    code, out = run_cli([*p, "quarantine", "--clear", "--source", "orders"], capsys)
    assert code == 0 and "Cleared 4 quarantined rows" in out
    code, out = run_cli([*p, "quarantine"], capsys)
    assert code == 0 and "No quarantined rows" in out
    code, out = run_cli([*p, "quarantine", "--source", "ordres"], capsys)
    assert code == 1 and "orders" in out  # an unknown source is an error with a suggestion


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["03/15/2011 08:26", "12/01/2010 8:26", "01/02/2011 17:05"], "%m/%d/%Y %H:%M"),
        (["15/03/2011 08:26", "01/12/2010 08:26"], "%d/%m/%Y %H:%M"),
        (["15.03.2011", "01.12.2010"], "%d.%m.%Y"),
        (["19970101", "19970118"], "%Y%m%d"),
        (["03/15/11", "12/01/10"], "%m/%d/%y"),
        (["not a date", "03/15/2011"], None),
    ],
)
def test_timestamp_format_guesses(values, expected):
    assert guess_timestamp_format(values) == expected


def test_hints_for_decimal_commas_and_a_wrong_delimiter(warehouse, tmp_path):
    path = write(
        tmp_path / "orders.csv",
        'customer,day,sku,qty,price\nc1,2024-03-01,p1,2,"4,50"\nc1,2024-03-02,p1,1,"3,25"\n',
    )
    result = import_file(warehouse, orders_source(path), path)
    assert result.quarantined == 2
    assert any('decimal_separator = ","' in hint for hint in result.hints())
    fixed = import_file(warehouse, orders_source(path, decimal_separator=","), path)
    assert fixed.quarantined == 0 and fixed.corrected == 0 and fixed.loaded == 2
    assert warehouse.fetch("SELECT sum(amount) FROM events")[0][0] == 12.25
    semicolons = write(tmp_path / "semi.csv", "customer;day;sku;qty;price\nc1;2024-03-01;p1;2;4.50\n")
    from microseg.errors import SourceError

    with pytest.raises(SourceError, match=r"delimiter = \";\""):
        import_file(warehouse, orders_source(semicolons, delimiter=","), semicolons)

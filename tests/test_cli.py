"""The command line: commands over Project, one error style, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from microseg.cli import main, state
from microseg.project import Project

EVENTS_CSV = (
    "order,customer,when,sku,qty,price\n"
    "o1,c1,2024-03-01 10:00,p1,2,3.50\n"
    "o2,c2,2024-03-02 11:00,p2,1,-4.00\n"
    "o3,c1,2024-03-05 12:00,p1,1,3.50\n"
)
SOURCE = """
[sources.shop]
path = "data/orders.csv"
event_type = "purchase"
columns = { order_id = "order", customer_id = "customer", ts = "when", product_id = "sku", quantity = "qty", unit_price = "price" }
"""


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    state.debug = False
    code = main([*args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def project_dir(tmp_path: Path, capsys) -> Path:
    code, out, _ = run_cli(["init", str(tmp_path / "shop")], capsys)
    assert code == 0 and "Created" in out
    root = tmp_path / "shop"
    (root / "data" / "orders.csv").write_text(EVENTS_CSV)
    with (root / "microseg.toml").open("a") as f:
        f.write(SOURCE)
    return root


def test_init_import_run_status_quarantine(project_dir, capsys):
    p = ["-p", str(project_dir)]
    code, out, _ = run_cli([*p, "import"], capsys)
    assert code == 0
    assert "orders.csv" in out and "Quarantined rows" in out
    code, out, _ = run_cli([*p, "run"], capsys)
    assert code == 0 and "as of 2024-03-05" in out and "1 customers" in out
    code, out, _ = run_cli([*p, "run", "--as-of", "2024-03-01"], capsys)
    assert code == 0 and "as of 2024-03-01" in out
    code, out, _ = run_cli([*p, "status"], capsys)
    assert code == 0
    assert re.search(r"\bevents\s+│\s+2\s", out), out
    code, out, _ = run_cli([*p, "quarantine"], capsys)
    assert code == 0 and "is negative" in out


def test_errors_are_one_line_with_exit_code_1(tmp_path, capsys):
    code, out, err = run_cli(["-p", str(tmp_path), "run"], capsys)
    assert code == 1
    assert err.startswith("Error: no microseg.toml in")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    code, _, err = run_cli(["--debug", "-p", str(tmp_path), "run"], capsys)
    assert code == 1
    assert "Traceback" in err and "Error: no microseg.toml" in err


def test_config_errors_name_the_key(project_dir, capsys):
    (project_dir / "microseg.toml").write_text('[sources.shop]\npath = "x.csv"\nkind = "order"\n')
    code, _, err = run_cli(["-p", str(project_dir), "import"], capsys)
    assert code == 1
    assert "sources.shop.kind: 'order' is not allowed" in err


def test_unknown_source_and_bad_date(project_dir, capsys):
    code, _, err = run_cli(["-p", str(project_dir), "import", "crm"], capsys)
    assert code == 1 and "sources.crm: no such source (sources: shop)" in err
    code, _, err = run_cli(["-p", str(project_dir), "run", "--as-of", "yesterday"], capsys)
    assert code == 1 and "--as-of: 'yesterday' is not a date" in err


def test_run_before_import_explains_what_to_do(project_dir, capsys):
    code, _, err = run_cli(["-p", str(project_dir), "run"], capsys)
    assert code == 1 and "run `microseg import` first" in err


def test_init_refuses_to_overwrite(project_dir, capsys):
    code, _, err = run_cli(["init", str(project_dir)], capsys)
    assert code == 1 and "already exists" in err


def test_usage_errors_exit_2(capsys):
    code, _, err = run_cli(["frobnicate"], capsys)
    assert code == 2 and "No such command" in err


def test_demo_runs_snapshots_and_writes_the_report(tmp_path, capsys):
    code, out, err = run_cli(["demo", str(tmp_path / "demo"), "--customers", "1000", "--months", "3"], capsys)
    assert code == 0, err
    assert "3 monthly snapshots (2025-10-31 to 2025-12-31)" in out
    report = tmp_path / "demo" / "reports" / "report-2025-12-31.html"
    assert f"Migration report: {report}" in out.replace("\n", "") and report.exists()
    with Project(tmp_path / "demo") as project:
        assert [d.isoformat() for d in project.snapshots()["as_of"].dt.date] == [
            "2025-10-31",
            "2025-11-30",
            "2025-12-31",
        ]

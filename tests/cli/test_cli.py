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
max_rejected_share = 0.5  # one bad line of three is on purpose here
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


def test_demo_runs_snapshots_and_writes_the_report(demo_shop_made):
    root, out = demo_shop_made  # `microseg demo shop --customers 2000`, as the README says
    assert "6 monthly snapshots (2025-07-31 to 2025-12-31)" in out
    report = root / "reports" / "report-2025-12-31.html"
    assert f"Migration report: {report}" in out.replace("\n", "") and report.exists()
    with Project(root) as project:
        assert [d.isoformat() for d in project.snapshots()["as_of"].dt.date] == [
            "2025-07-31",
            "2025-08-31",
            "2025-09-30",
            "2025-10-31",
            "2025-11-30",
            "2025-12-31",
        ]


@pytest.mark.slow  # a demo of its own
def test_demo_months_sets_the_snapshots(tmp_path, capsys):
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


# -- start-up, version and help ---------------------------------------------------------------

HEAVY = ("pandas", "numpy", "duckdb", "ibis", "pyarrow", "scipy", "sklearn", "plotly")


def test_the_command_line_starts_without_the_data_stack():
    """``microseg --help`` answers at once: nothing heavy is imported before a command runs."""
    import subprocess
    import sys

    probe = f"import sys, microseg, microseg.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
    # the public API still reaches everything, loaded on first use
    probe = "import microseg; print(microseg.Project.__name__, microseg.generate_demo.__name__)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["Project", "generate_demo"]
    import microseg

    assert set(microseg.__all__) == {*microseg._EXPORTS, "__version__"}
    assert all(getattr(microseg, name) is not None for name in microseg.__all__)


def test_version(capsys):
    from importlib.metadata import version

    import microseg

    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0 and out == f"microseg {microseg.__version__}\n"
    assert microseg.__version__ == version("microseg")


def test_help_shows_no_type_for_flags(capsys):
    from microseg.cli import app

    commands = [info.name or info.callback.__name__ for info in app.registered_commands]
    for args in [["--help"], *([name.rstrip("_"), "--help"] for name in commands)]:
        code, out, _ = run_cli(args, capsys)
        assert code == 0, args
        assert "<bool>" not in out, args
        assert re.search(r"--help\s+Show this message", out), args


def test_every_kind_option_lists_and_checks_the_layers(tmp_path, capsys):
    from microseg.registry import LAYERS

    code, out, _ = run_cli(["members", "--help"], capsys)
    assert all(layer in re.sub(r"\s+│?\s*", " ", out) for layer in LAYERS)
    commands = [
        ["segments"],
        ["persona", "x"],
        ["members", "x", "--on", "2025-01-01"],
        ["migration"],
        ["journey", "C1"],
        ["paths"],
        ["forecast"],
        ["alerts"],
        ["report"],
    ]
    for args in commands:
        # the layer is checked before the project is opened (tmp_path has none)
        code, _, err = run_cli(["-p", str(tmp_path), *args, "--kind", "lifecyle"], capsys)
        assert code == 1, args
        assert err.startswith("Error: no segment layer 'lifecyle' (did you mean \"lifecycle\"?)"), (args, err)
    for option in ("--by",):
        for command in ("forecast", "alerts"):
            code, _, err = run_cli(["-p", str(tmp_path), command, option, "clv_tire"], capsys)
            assert code == 1 and 'did you mean "clv_tier"' in err, err


def test_out_with_an_unknown_extension_is_refused_first(tmp_path, capsys):
    code, _, err = run_cli(["-p", str(tmp_path), "values", "--out", "values.xlsx"], capsys)
    assert code == 1 and err.startswith("Error: --out: 'values.xlsx' must end in .csv or .parquet")

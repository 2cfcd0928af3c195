"""Shared fixtures: real datasets from ../shared/data, a warehouse, one Spark session per run."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
from pathlib import Path

import pandas as pd
import pytest

from microseg.project import Project
from microseg.warehouse.duckdb import DuckDBWarehouse

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(name: str) -> Path:
    """A file of ../shared/data; skips the test when absent, except under CI=true."""
    path = SHARED_DATA / name
    if not path.exists():
        message = f"real dataset {path} is not available"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true requires it)")
        pytest.skip(message)
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-readme",
        action="store_true",
        help="rewrite the README's example outputs with what the commands print now",
    )


@pytest.fixture(scope="session")
def demo_shop_made(tmp_path_factory) -> tuple[Path, str]:
    """The project the README's examples run on, made as the README says:
    ``microseg demo shop --customers 2000`` (seed 42, six monthly snapshots), and what that
    command printed. One demo for every test that only reads one."""
    from tests.readme_examples import make_demo

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        root = make_demo(tmp_path_factory.mktemp("readme") / "shop")
    return root, printed.getvalue()


@pytest.fixture(scope="session")
def demo_shop(demo_shop_made) -> Path:
    """The folder of the README's demo project (tests only read it)."""
    return demo_shop_made[0]


#: The Online Retail file as a user configures it (README, "Use it on your data").
RETAIL_CONFIG = """
[project]
name = "online-retail"
analysis_date = "2011-12-09"

[sources.retail]
path = "{path}"
event_type = "purchase"
null_values = ["", "nan"]
missing_customer = "anonymous"
classify = [{{ event_type = "cancellation", column = "InvoiceNo", starts_with = "C" }}]
columns = {{ customer_id = "CustomerID", ts = "InvoiceDate", order_id = "InvoiceNo", product_id = "StockCode", quantity = "Quantity", unit_price = "UnitPrice" }}
customer_columns = {{ country = "Country" }}
product_columns = {{ name = "Description" }}
"""


def online_retail_project(root: Path) -> Project:
    """A project of the Online Retail file of ../shared/data in ``root``, not imported yet."""
    path = shared_file("online_retail_2010_2011.parquet")
    (root / "microseg.toml").write_text(RETAIL_CONFIG.format(path=path), encoding="utf-8")
    return Project(root)


@pytest.fixture(scope="session")
def retail_imported(tmp_path_factory):
    """Online Retail imported twice (the second import must add nothing) and run as of its last
    day: (project, first import, second import, run result), shared by the tests that only read it."""
    project = online_retail_project(tmp_path_factory.mktemp("online-retail"))
    first = project.import_sources()
    second = project.import_sources()
    result = project.run()
    yield project, first[0], second[0], result
    project.close()


@pytest.fixture(scope="session")
def retail_run(retail_imported):
    """Online Retail imported and run as of its last day: (project, run result)."""
    project, _, _, result = retail_imported
    return project, result


#: The month ends of Online Retail before its last day, 31 December 2010 to 30 November 2011.
RETAIL_MONTHS = [
    dt.date(2010, 12, 31),
    *[(pd.Timestamp(2011, month, 1) + pd.offsets.MonthEnd(0)).date() for month in range(1, 12)],
]


@pytest.fixture(scope="session")
def retail_history(tmp_path_factory):
    """Online Retail run as of its last day, then snapshotted at the twelve month ends before it:
    (project, the backfill's result). A project of its own, so that the tests reading
    ``retail_run`` see a single snapshot."""
    project = online_retail_project(tmp_path_factory.mktemp("online-retail-history"))
    project.import_sources()
    project.run()
    result = project.backfill(RETAIL_MONTHS[0], RETAIL_MONTHS[-1], every="month")
    yield project, result
    project.close()


@pytest.fixture
def warehouse():
    wh = DuckDBWarehouse(":memory:")
    yield wh
    wh.close()


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole run (starting one takes 8-18 s)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail('CI=true requires pyspark: pip install "microseg[spark]"')
        pytest.skip('needs pip install "microseg[spark]"')
    from microseg.engine.spark import spark_session

    return spark_session("local[2]")

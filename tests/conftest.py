"""Shared fixtures: real datasets from ../shared/data, a warehouse, one Spark session per run."""

from __future__ import annotations

import os
from pathlib import Path

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
def demo_shop(tmp_path_factory) -> Path:
    """The project the README's examples run on, made as the README says:
    ``microseg demo shop --customers 2000`` (seed 42, six monthly snapshots)."""
    from tests.readme_examples import make_demo

    return make_demo(tmp_path_factory.mktemp("readme") / "shop")


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
def retail_run(tmp_path_factory):
    """Online Retail imported and run as of its last day: shared by the tests that only read it."""
    project = online_retail_project(tmp_path_factory.mktemp("online-retail"))
    project.import_sources()
    result = project.run()
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

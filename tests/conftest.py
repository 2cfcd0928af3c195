"""Shared fixtures: real datasets from ../shared/data, a warehouse, one Spark session per run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from microseg.engine.duckdb import DuckDBWarehouse

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

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

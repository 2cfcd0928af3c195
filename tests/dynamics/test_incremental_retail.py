"""Online Retail: a backfill continuing each month end from the one before stores exactly what
a backfill computing each from all its events stores."""

from __future__ import annotations

import pytest

from tests.conftest import RETAIL_MONTHS, online_retail_project
from tests.dynamics.test_incremental_backfill import assert_same_tables, spy_on_advance

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture
def continued(monkeypatch):
    return spy_on_advance(monkeypatch)


def test_online_retail_incremental_backfill_equals_the_full_one(retail_history, tmp_path, continued):
    """Online Retail: the twelve month ends continued one from another (the shared history
    fixture) against the same snapshots each computed from all its events."""
    incremental, result = retail_history
    assert all(not run.reused for run in result.runs)
    full = online_retail_project(tmp_path)
    try:
        full.import_sources()
        full.run()
        full.backfill(RETAIL_MONTHS[0], RETAIL_MONTHS[-1], every="month", incremental=False)
        assert continued == []
        assert_same_tables(incremental, full)
    finally:
        full.close()

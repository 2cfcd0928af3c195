"""Published datasets for the CLV models (read from ../shared/data)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import shared_file


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """Hardie's calibration summary of the CDNOW sample: ID, x, t_x, T (weeks), zbar."""
    return pd.read_csv(shared_file("cdnow_rfm_summary_hardie.csv"))

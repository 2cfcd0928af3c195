"""RFM summary and scores: the CDNOW summary rebuilt from raw transactions, point-in-time."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from microseg.features.rfm import RFM_SEGMENT_GRID, RFM_SEGMENTS, rfm_scores, rfm_summary
from microseg.features.valuation import rfm_table
from tests.conftest import shared_file

CALIBRATION_END = dt.date(1997, 9, 30)


def cdnow_events() -> pd.DataFrame:
    raw = pd.read_csv(
        shared_file("cdnow_sample.txt.gz"),
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    return pd.DataFrame(
        {
            "customer_id": raw.sample_id.astype(str),
            "event_type": "purchase",
            "ts": pd.to_datetime(raw.date, format="%Y%m%d"),
            "amount": raw.dollars,
        }
    )


def half_up(values: pd.Series, digits: int = 2) -> pd.Series:
    """Round as Hardie's spreadsheet does (half away from zero), not to even."""
    scale = 10**digits
    return np.floor(values * scale + 0.5 + 1e-9) / scale


@pytest.mark.realdata
def test_cdnow_summary_equals_hardies(tmp_path):
    events = cdnow_events()
    assert len(events) == 6_919
    rfm = rfm_summary(ibis.memtable(events), CALIBRATION_END, period="week").to_pandas()
    hardie = pd.read_csv(shared_file("cdnow_rfm_summary_hardie.csv"))
    assert len(rfm) == len(hardie) == 2_357
    merged = hardie.merge(rfm.assign(ID=rfm.customer_id.astype(int)), on="ID", suffixes=("_hardie", ""))
    assert len(merged) == 2_357
    assert (merged.x == merged.frequency).all()
    assert (half_up(merged.recency) == merged.t_x).all()
    assert (half_up(merged["T"]) == merged["T_hardie"]).all()
    assert (half_up(merged.monetary_value) == merged.zbar).all()
    assert merged.frequency.sum() == 2_457  # repeat transactions in calibration (README)


def small_events() -> ibis.Table:
    t = dt.datetime
    return ibis.memtable(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b", None, "c"],
            "event_type": [
                "purchase",
                "purchase",
                "refund",
                "purchase",
                "purchase",
                "page_view",
                "purchase",
                "purchase",
            ],
            "ts": [
                t(2024, 1, 1, 9),
                t(2024, 1, 1, 18),
                t(2024, 1, 2),
                t(2024, 1, 11),
                t(2024, 1, 5),
                t(2024, 1, 20),
                t(2024, 1, 6),
                t(2024, 2, 1),
            ],
            "amount": [10.0, 5.0, -5.0, 30.0, 8.0, None, 99.0, 1.0],
        }
    )


def test_same_day_purchases_merge_and_later_events_are_ignored():
    rfm = rfm_summary(small_events(), dt.date(2024, 1, 21)).to_pandas().set_index("customer_id")
    assert sorted(rfm.index) == ["a", "b"]  # c bought after the date, the anonymous row has no customer
    a = rfm.loc["a"]
    assert (a.frequency, a.recency, a["T"], a.monetary_value) == (1, 10.0, 20.0, 30.0)
    assert (a.transactions, a.total_spend) == (2, 45.0)
    b = rfm.loc["b"]
    assert (b.frequency, b.recency, b["T"], b.monetary_value) == (0, 0.0, 16.0, 0.0)


def test_period_must_be_known():
    with pytest.raises(ValueError, match="period must be one of day, week"):
        rfm_summary(small_events(), dt.date(2024, 1, 21), period="month")


def test_scores_and_segments():
    rng = np.random.default_rng(3)
    n = 500
    first = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    rows = []
    for i in range(n):
        k = rng.integers(1, 8)
        for j in range(k):
            rows.append(
                (
                    f"c{i}",
                    first[i] + pd.Timedelta(days=int(j * rng.integers(5, 40))),
                    float(rng.integers(5, 200)),
                )
            )
    events = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"]).assign(event_type="purchase")
    as_of = dt.date(2024, 6, 30)
    scored = rfm_table(ibis.memtable(events), as_of, "day").to_pandas()
    scored = scored.assign(**rfm_scores(scored.days_since_last, scored.transactions, scored.total_spend))
    assert len(scored) == n
    for col in ("r_score", "f_score", "m_score"):
        assert set(scored[col]) <= {1, 2, 3, 4, 5}
    # equal values share a score; better values never score lower
    by_days = scored.groupby("days_since_last").r_score.nunique()
    assert (by_days == 1).all()
    ordered = scored.sort_values("days_since_last")
    assert ordered.r_score.is_monotonic_decreasing
    assert scored.sort_values("total_spend").m_score.is_monotonic_increasing
    expected = [RFM_SEGMENT_GRID[r][f - 1] for r, f in zip(scored.r_score, scored.f_score, strict=True)]
    assert scored.rfm_segment.tolist() == expected
    assert set(scored.rfm_segment) <= set(RFM_SEGMENTS)

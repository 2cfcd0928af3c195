"""CLV charts: the values behind them and the holdout comparison on CDNOW."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pytest

from microseg.features.rfm import calibration_holdout
from microseg.models.clv import BGNBD
from microseg.models.clv.plots import (
    calibration_holdout_chart,
    calibration_holdout_table,
    frequency_recency_grid,
    frequency_recency_matrix,
)
from tests.features.test_rfm import cdnow_events

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def holdout():
    return calibration_holdout(
        ibis.memtable(cdnow_events()), dt.date(1997, 9, 30), dt.date(1998, 6, 30), "week"
    ).to_pandas()


@pytest.fixture(scope="module")
def model(holdout):
    return BGNBD().fit(holdout.frequency, holdout.recency, holdout["T"])


def test_holdout_has_the_published_transactions(holdout):
    assert len(holdout) == 2_357
    assert holdout.holdout_transactions.sum() == 1_882
    assert holdout.frequency.sum() == 2_457
    assert (holdout.holdout_duration == 39).all()


def test_calibration_holdout_chart(model, holdout):
    table = calibration_holdout_table(model, holdout)
    assert list(table.index) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table.customers.sum() == 2_357
    assert (table.actual * table.customers).sum() == pytest.approx(1_882)
    # the model ranks customers: more calibration purchases, more predicted holdout purchases
    assert table.predicted.is_monotonic_increasing
    predicted_total = (table.predicted * table.customers).sum()
    assert predicted_total == pytest.approx(1_653, rel=0.01)  # BG/NBD under-forecasts CDNOW's holdout by ~12%
    fig = calibration_holdout_chart(model, holdout)
    assert [trace.name for trace in fig.data] == ["actual", "predicted"]
    assert "actual 1,882" in fig.layout.title.text


def test_frequency_recency_matrix(model):
    grid = frequency_recency_grid(model, 38.86, metric="p_alive", max_frequency=12)
    assert grid.shape == (13, 39)
    assert grid.loc[0, 0.0] == 1.0 and np.isnan(grid.loc[0, 5.0])  # recency > 0 needs a repeat purchase
    row = grid.loc[5].to_numpy()
    assert np.all(np.diff(row) > 0)  # a recent last purchase means more likely alive
    fig = frequency_recency_matrix(model, 38.86, metric="expected_purchases", t=39)
    assert fig.data[0].type == "heatmap"
    z = np.asarray(fig.data[0].z, dtype=float)
    assert np.nanmax(z) > 5 and np.nanmin(z) >= 0
    with pytest.raises(ValueError, match="metric must be"):
        frequency_recency_grid(model, 10, metric="clv")

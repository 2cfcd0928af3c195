"""The charts users of CLV tools expect, as Plotly figures.

* :func:`frequency_recency_matrix`: expected purchases (or P(alive)) for every combination of
  frequency and recency, for customers of a given age T;
* :func:`calibration_holdout_chart`: how well the model predicted a holdout period, customers
  grouped by their calibration frequency (actual vs predicted mean purchases).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from microseg.errors import InvalidInputError
from microseg.models.clv.base import BTYDModel


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError:  # pragma: no cover - plotly is a core dependency
        from microseg.errors import MissingDependencyError

        raise MissingDependencyError("plotly", "plots") from None
    return go


def frequency_recency_grid(
    model: BTYDModel,
    T: float,
    *,
    metric: str = "expected_purchases",
    t: float = 1.0,
    max_frequency: int | None = None,
) -> pd.DataFrame:
    """The values behind the matrix: rows frequency 0..max, columns recency 0..T (whole periods)."""
    if metric not in ("expected_purchases", "p_alive"):
        raise InvalidInputError(f"metric must be 'expected_purchases' or 'p_alive', got {metric!r}")
    if T <= 0:
        raise InvalidInputError(f"T must be > 0, got {T!r}")
    model._check_fitted()
    max_frequency = int(max_frequency if max_frequency is not None else max(10, round(T)))
    recencies = np.arange(0, int(np.floor(T)) + 1, dtype=float)
    freq, rec = np.meshgrid(np.arange(max_frequency + 1, dtype=float), recencies, indexing="ij")
    valid = (freq > 0) | (rec == 0)  # a customer without repeat purchases has recency 0
    values = np.full(freq.shape, np.nan)
    f, r = freq[valid], rec[valid]
    if metric == "p_alive":
        values[valid] = model.probability_alive(f, r, np.full_like(f, T))
    else:
        values[valid] = model.predict_purchases(t, f, r, np.full_like(f, T))
    return pd.DataFrame(values, index=pd.Index(freq[:, 0].astype(int), name="frequency"), columns=recencies)


def frequency_recency_matrix(
    model: BTYDModel,
    T: float,
    *,
    metric: str = "expected_purchases",
    t: float = 1.0,
    max_frequency: int | None = None,
):
    """Heatmap of expected purchases in the next ``t`` periods (or P(alive)) by frequency and
    recency, for customers observed for ``T`` periods."""
    grid = frequency_recency_grid(model, T, metric=metric, t=t, max_frequency=max_frequency)
    go = _go()
    title = (
        f"Expected purchases in the next {t:g} period(s), customers of age {T:g}"
        if metric == "expected_purchases"
        else f"Probability alive, customers of age {T:g}"
    )
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=grid.columns,
            y=grid.index,
            colorscale="Viridis",
            colorbar={"title": "P(alive)" if metric == "p_alive" else "purchases"},
        )
    )
    fig.update_layout(
        title=title, xaxis_title="recency (age at last purchase)", yaxis_title="frequency (repeat purchases)"
    )
    return fig


def calibration_holdout_table(
    model: BTYDModel, calibration: pd.DataFrame, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency (the last group
    holds every frequency >= ``max_frequency``). ``calibration`` is the output of
    ``microseg.features.rfm.calibration_holdout``."""
    model._check_fitted()
    d = calibration
    predicted = model.predict_purchases(d.holdout_duration.to_numpy(float), d.frequency, d.recency, d["T"])
    group = np.minimum(d.frequency.to_numpy(), max_frequency)
    table = (
        pd.DataFrame(
            {"frequency": group, "actual": d.holdout_transactions.to_numpy(float), "predicted": predicted}
        )
        .groupby("frequency")
        .agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean"))
    )
    table.index = [f"{i}+" if i == max_frequency else str(i) for i in table.index]
    table.index.name = "calibration frequency"
    return table


def calibration_holdout_chart(model: BTYDModel, calibration: pd.DataFrame, *, max_frequency: int = 7):
    """Actual vs predicted mean holdout purchases by calibration frequency."""
    table = calibration_holdout_table(model, calibration, max_frequency=max_frequency)
    go = _go()
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=table.index, y=table.actual, mode="lines+markers", name="actual"))
    fig.add_trace(
        go.Scatter(
            x=table.index, y=table.predicted, mode="lines+markers", name="predicted", line={"dash": "dash"}
        )
    )
    total_actual = float((table.actual * table.customers).sum())
    total_predicted = float((table.predicted * table.customers).sum())
    fig.update_layout(
        title=(
            f"Holdout purchases: actual {total_actual:,.0f}, predicted {total_predicted:,.0f} "
            f"({total_predicted / total_actual - 1:+.1%})"
        ),
        xaxis_title="purchases in the calibration period (repeat)",
        yaxis_title="mean purchases in the holdout period",
    )
    return fig


def holdout_by_frequency_chart(validation):
    """Mean holdout transactions by calibration frequency: actual, and each model of a
    ``ClvValidation``."""
    go = _go()
    table = validation.by_frequency
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=table.index, y=table["actual"], mode="lines+markers", name="actual"))
    for column in table.columns.drop(["customers", "actual"]):
        fig.add_trace(
            go.Scatter(
                x=table.index, y=table[column], mode="lines+markers", name=column, line={"dash": "dash"}
            )
        )
    fig.update_layout(
        xaxis_title="repeat transactions in the calibration period",
        yaxis_title="mean transactions in the holdout period",
    )
    return fig


def tracking_chart(validation, *, cumulative: bool = True):
    """Repeat transactions of the cohort week by week (or cumulated), actual and expected by
    each model of a ``ClvValidation``, with the end of the calibration period marked."""
    go = _go()
    weeks = validation.tracking
    suffix = " cumulative" if cumulative else ""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=weeks["week"], y=weeks["actual" + ("_cumulative" if cumulative else "")], name="actual")
    )
    for label in validation.models_labels():
        fig.add_trace(go.Scatter(x=weeks["week"], y=weeks[label + suffix], name=label, line={"dash": "dash"}))
    fig.add_vline(x=validation.calibration_weeks + 0.5, line={"dash": "dot", "color": "grey"})
    fig.update_layout(
        xaxis_title=f"week (calibration to week {validation.calibration_weeks}, then holdout)",
        yaxis_title="repeat transactions" + (" (cumulative)" if cumulative else " per week"),
    )
    return fig

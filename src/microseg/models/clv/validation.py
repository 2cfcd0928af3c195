"""How well the repeat-buying models predict a holdout period: the checks lifetimes users know.

The history is split at ``calibration_end``: the models are fitted on the customers who bought
by then (their calibration RFM) and compared with what those customers did afterwards, up to
``observation_end``:

* **by calibration frequency**: mean actual and predicted holdout transactions of the customers
  with 0, 1, 2, ... 7+ repeat transactions in the calibration period (predictions conditional
  on each customer's calibration history, as in Fader, Hardie & Lee 2005, figure 4);
* **tracking**: cumulative and weekly repeat transactions of the cohort, actual against the
  model's expectation for customers who started on their first-purchase days (the
  unconditional E[X(t)] summed over customers, the paper's figure 2 and lifetimes'
  ``plot_cumulative_transactions``); weeks end on the calibration end, so the calibration
  weeks and the holdout weeks meet there;
* **scores**: the per-customer error of holdout transactions and the holdout totals, the
  numbers ``clv.model = "auto"`` chooses by (``microseg.models.clv.selection``).

Every repeat-buying model is checked, the NBD (nobody leaves) included, so data without visible
dropout still get predicted against actual holdout transactions.

On the CDNOW sample split at 1997-09-30 (week 39 of 78), the cohort made 2,457 repeat
transactions in the calibration weeks and 1,882 in the holdout weeks; BG/NBD predicts 1,653 of
them from the customers' calibration histories, and the NBD, which lets nobody leave, 2,930.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from microseg.errors import InvalidInputError
from microseg.models.clv.base import RepeatBuyingModel
from microseg.models.clv.selection import (
    NO_DROPOUT_MODEL,
    REPEAT_BUYING_MODELS,
    HoldoutScore,
    choose_by_holdout,
    repeat_buying_model,
    score_on_holdout,
)

__all__ = ["ClvValidation", "by_frequency", "tracking", "validate_models"]

#: How the page shows the scores.
SCORE_FORMATS = {
    "rmse": ".3f",
    "predicted": ",.0f",
    "actual": ",.0f",
    "total_error": "+.1%",
    "cohort_predicted": ",.0f",
}
#: The last group of the frequency table holds this many repeat transactions and more.
MAX_FREQUENCY = 7
WEEK_DAYS = 7


@dataclass
class ClvValidation:
    """The result of a holdout check of one or more repeat-buying models.

    ``scores`` has one row per model (``model``, ``label``, ``rmse``, ``predicted`` and
    ``actual`` holdout transactions, ``total_error``, ``cohort_predicted`` from the tracking
    curve, ``error`` when the model could not be fitted); ``by_frequency`` the mean holdout
    transactions by calibration frequency, actual and per model; ``tracking`` the weekly and
    cumulative repeat transactions, actual and per model. ``chosen``/``reason`` say which model
    ``clv.model = "auto"`` would keep on this split and why.
    """

    calibration_end: dt.date
    observation_end: dt.date
    period: str
    customers: int
    scores: pd.DataFrame
    by_frequency: pd.DataFrame
    tracking: pd.DataFrame
    chosen: str | None = None
    reason: str = ""
    models: dict[str, RepeatBuyingModel] = field(default_factory=dict, repr=False)

    def models_labels(self) -> list[str]:
        """Labels of the models that could be fitted, as in the tracking columns."""
        return [model.label for model in self.models.values()]

    @property
    def holdout_days(self) -> int:
        return (self.observation_end - self.calibration_end).days

    @property
    def calibration_weeks(self) -> int:
        return int((self.tracking["part"] == "calibration").sum())

    def summary(self) -> list[str]:
        """The check in a few sentences."""
        weeks = self.tracking
        first_holdout = self.calibration_weeks + 1
        actual = float(weeks.loc[weeks["part"] == "holdout", "actual"].sum())
        lines = [
            f"Calibration to {self.calibration_end} (weeks 1-{self.calibration_weeks}), holdout "
            f"{self.holdout_days} days to {self.observation_end} (weeks {first_holdout}-{len(weeks)}): "
            f"{self.customers:,} customers who bought by the calibration end.",
            f"Repeat transactions: {weeks['actual_cumulative'].iloc[self.calibration_weeks - 1]:,.0f} in the "
            f"calibration weeks, {actual:,.0f} in the holdout weeks, "
            f"{weeks['actual_cumulative'].iloc[-1]:,.0f} in all.",
        ]
        for row in self.scores.itertuples():
            if isinstance(row.error, str):
                lines.append(f"{row.label}: could not be fitted on the calibration period ({row.error}).")
                continue
            lines.append(
                f"{row.label}: {row.predicted:,.0f} holdout transactions predicted from each customer's "
                f"calibration history ({row.total_error:+.1%}), {row.cohort_predicted:,.0f} by the cohort "
                f"curve; per-customer RMSE {row.rmse:.3f}."
            )
        if self.chosen:
            label = type(repeat_buying_model(self.chosen)).label
            lines.append(f'clv.model = "auto" would keep {label}: {self.reason}.')
        elif not self.models:
            line = (
                "No model could be fitted on this calibration period, so none is scored: the actual "
                "counts are shown alone."
            )
            no_dropout = self.scores["error"].fillna("").str.contains("show no dropout")
            if no_dropout.any() and NO_DROPOUT_MODEL not in set(self.scores["model"]):
                line += (
                    " The models that fail for lack of dropout describe customers who do not leave in "
                    f"this period: check the NBD, where nobody leaves (--model {NO_DROPOUT_MODEL})."
                )
            lines.append(line)
        return lines

    def to_html(self, title: str = "Customer value: holdout check") -> str:
        """One self-contained page (Plotly inlined, no request leaves it) with the charts and
        tables of the check."""
        from microseg.models.clv.plots import holdout_by_frequency_chart, tracking_chart

        return _page(
            title,
            self.summary(),
            [
                ("Holdout transactions by calibration frequency", holdout_by_frequency_chart(self)),
                ("Cumulative repeat transactions", tracking_chart(self, cumulative=True)),
                ("Weekly repeat transactions", tracking_chart(self, cumulative=False)),
            ],
            [
                ("Mean holdout transactions by calibration frequency", self.by_frequency.reset_index(), {}),
                ("Models", self._score_table(), SCORE_FORMATS),
            ],
        )

    def write_html(self, path: str | Path, title: str = "Customer value: holdout check") -> Path:
        """Write :meth:`to_html` to ``path`` (folders created) and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_html(title), encoding="utf-8")
        return target

    def _score_table(self) -> pd.DataFrame:
        """The scores as shown: holdout totals, their error, the cohort curve's holdout total."""
        columns = ["label", "rmse", "predicted", "actual", "total_error", "cohort_predicted", "error"]
        return self.scores[columns].rename(columns={"label": "model"})


def validate_models(
    calibration: pd.DataFrame,
    repeat_days: pd.DataFrame,
    *,
    calibration_end: dt.date,
    observation_end: dt.date,
    period: str = "week",
    models: Sequence[str] = REPEAT_BUYING_MODELS,
    penalizer: float = 0.0,
) -> ClvValidation:
    """Fit ``models`` on ``calibration`` (``microseg.features.rfm.calibration_holdout``: RFM in
    ``period`` units, ``first_purchase``, ``holdout_transactions``, ``holdout_duration``) and
    compare them with the holdout; ``repeat_days`` has the cohort's repeat transactions per day
    (``day``, ``repeat_transactions``) up to ``observation_end``."""
    from microseg.features.rfm import PERIOD_DAYS

    if calibration.empty:
        raise InvalidInputError(f"nobody bought by the calibration end {calibration_end}: nothing to check")
    days_per_period = PERIOD_DAYS[period]
    duration = float(calibration["holdout_duration"].iloc[0])
    scores: list[HoldoutScore] = []
    fitted: dict[str, RepeatBuyingModel] = {}
    for name in models:
        score, model = score_on_holdout(
            name,
            calibration["frequency"],
            calibration["recency"],
            calibration["T"],
            calibration["holdout_transactions"],
            duration,
            days_per_period=days_per_period,
            penalizer=penalizer,
        )
        scores.append(score)
        if model is not None:
            fitted[name] = model
    weeks = tracking(fitted, calibration, repeat_days, calibration_end, observation_end, days_per_period)
    table = by_frequency(fitted, calibration)
    rows = []
    for score in scores:
        holdout = weeks["part"] == "holdout"
        cohort = float(weeks.loc[holdout, score.label].sum()) if score.model in fitted else float("nan")
        rows.append(
            {
                "model": score.model,
                "label": score.label,
                "rmse": score.rmse,
                "predicted": score.predicted,
                "actual": score.actual,
                "total_error": score.total_error if score.fitted else float("nan"),
                "cohort_predicted": cohort,
                "error": score.error,
            }
        )
    choice = choose_by_holdout(scores, calibration_end, (observation_end - calibration_end).days)
    return ClvValidation(
        calibration_end,
        observation_end,
        period,
        len(calibration),
        pd.DataFrame(rows),
        table,
        weeks,
        choice[0] if choice else None,
        choice[1] if choice else "",
        fitted,
    )


def by_frequency(models: dict[str, RepeatBuyingModel], calibration: pd.DataFrame) -> pd.DataFrame:
    """Customers, mean actual and mean predicted holdout transactions (one column per model,
    by its label) by calibration frequency 0, 1, ... 7+."""
    group = np.minimum(calibration["frequency"].to_numpy(), MAX_FREQUENCY)
    frame = pd.DataFrame({"group": group, "actual": calibration["holdout_transactions"].to_numpy(float)})
    duration = calibration["holdout_duration"].to_numpy(float)
    for model in models.values():
        frame[model.label] = model.predict_purchases(
            duration, calibration["frequency"], calibration["recency"], calibration["T"]
        )
    table = frame.groupby("group").agg(
        customers=("actual", "size"), **{c: (c, "mean") for c in frame.columns if c != "group"}
    )
    table.index = [f"{i}+" if i == MAX_FREQUENCY else str(i) for i in table.index]
    table.index.name = "calibration frequency"
    return table


def tracking(
    models: dict[str, RepeatBuyingModel],
    calibration: pd.DataFrame,
    repeat_days: pd.DataFrame,
    calibration_end: dt.date,
    observation_end: dt.date,
    days_per_period: float = WEEK_DAYS,
) -> pd.DataFrame:
    """Weekly and cumulative repeat transactions of the cohort: ``week`` (1 = the week of the
    first purchase), ``week_end``, ``part`` (calibration or holdout), ``actual``,
    ``actual_cumulative`` and for each model (by label) the expected weekly and cumulative
    counts. The last holdout week ends on ``observation_end`` (it may be short)."""
    first_days = pd.to_datetime(calibration["first_purchase"]).dt.date
    start = min(first_days)
    before = (calibration_end - start).days + 1
    ends = [calibration_end - dt.timedelta(days=WEEK_DAYS * k) for k in range(-(-before // WEEK_DAYS))][::-1]
    ends += [
        min(calibration_end + dt.timedelta(days=WEEK_DAYS * k), observation_end)
        for k in range(1, -(-(observation_end - calibration_end).days // WEEK_DAYS) + 1)
    ]
    frame = pd.DataFrame(
        {
            "week": np.arange(1, len(ends) + 1),
            "week_end": ends,
            "part": ["calibration" if end <= calibration_end else "holdout" for end in ends],
        }
    )
    day = pd.to_datetime(repeat_days["day"]).dt.date.to_numpy() if len(repeat_days) else np.array([])
    count = repeat_days["repeat_transactions"].to_numpy(float) if len(repeat_days) else np.array([])
    cumulative = np.array([count[day <= end].sum() for end in ends])
    frame["actual"] = np.diff(cumulative, prepend=0.0)
    frame["actual_cumulative"] = cumulative
    # customers who started on the same day have the same expectation: one evaluation per day
    cohort = pd.Series(first_days).value_counts()
    starts, sizes = np.array(cohort.index), cohort.to_numpy(float)
    for model in models.values():
        expected = []
        for end in ends:
            age = np.array([(end - d).days for d in starts], dtype=float) / days_per_period
            known = age >= 0
            expected.append(float(sizes[known] @ model.expected_purchases_new(age[known])))
        expected = np.array(expected)
        frame[model.label] = np.diff(expected, prepend=0.0)
        frame[f"{model.label} cumulative"] = expected
    return frame


# --- the page -------------------------------------------------------------------------------------


def _cell(value, spec: str | None) -> str:
    """A table cell's text: numbers formatted by ``spec`` (or a default for their kind), gaps blank."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if spec is None:
            spec = ",d" if isinstance(value, (int, np.integer)) else ",.3f"
        return format(value, spec)
    return str(value)


def _table(frame: pd.DataFrame, formats: dict[str, str]) -> tuple[list[str], list[list[str]], list[int]]:
    """(headers, rows of cell texts, the indexes of the numeric columns) of a frame."""
    numeric = [
        i
        for i, column in enumerate(frame.columns)
        if pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
    ]
    rows = [
        [_cell(v, formats.get(str(c))) for c, v in zip(frame.columns, row, strict=True)]
        for row in frame.itertuples(index=False)
    ]
    return [str(c) for c in frame.columns], rows, numeric


def _page(title: str, summary: list[str], charts: list, tables: list[tuple[str, pd.DataFrame, dict]]) -> str:
    from markupsafe import Markup

    from microseg.outputs.pages import render_page

    figures = []
    for i, (heading, fig) in enumerate(charts):
        fig.update_layout(template="plotly_white", height=420)
        # Plotly writes the data as JSON with <, > and & as \u escapes: the markup is safe to embed
        figures.append(
            (heading, Markup(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{i}")))
        )
    shown = [(heading, *_table(frame, formats)) for heading, frame, formats in tables]
    return render_page("validation.html", title=title, summary=summary, charts=figures, tables=shown)

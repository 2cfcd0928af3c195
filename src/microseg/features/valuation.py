"""Per-customer value: RFM, scores and the CLV models' predictions, as of a date.

The RFM summary is an Ibis expression (it runs on the configured engine) with one row per buying
customer; scores and models run with NumPy on its columns, and the result is an Arrow table
ready to store.

With ``clv.model = "auto"`` the repeat-buying model is chosen among BG/NBD, Pareto/NBD,
MBG/NBD and the NBD: a model with dropout when the data show dropout, the NBD (nobody leaves)
when none does, compared by a holdout check when the history allows it, by likelihood otherwise
(the exact rule is in ``microseg.models.clv.selection``); the choice, the candidates' scores and
the evidence for dropout are returned as a small table. When no model can be fitted (every customer bought once,
too few customers...) the RFM columns are still produced, the prediction columns are left empty
and the reason is returned; nothing fails silently.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from microseg.config import ClvConfig
from microseg.features.asof import AsOf
from microseg.features.rfm import (
    PERIOD_DAYS,
    holdout_of,
    rfm_of,
    rfm_scores,
    transactions,
)
from microseg.models.clv.base import BTYDModel, ConvergenceError, RepeatBuyingModel, compress, unique_rows
from microseg.models.clv.selection import (
    MIN_HOLDOUT_CUSTOMERS,
    REPEAT_BUYING_MODELS,
    DropoutEvidence,
    HoldoutPlan,
    HoldoutScore,
    choose_by_holdout,
    choose_by_likelihood,
    dropout_evidence,
    plain_reason,
    plan_holdout,
    rank_by_holdout,
    rank_by_likelihood,
    repeat_buying_model,
    score_on_holdout,
    short_reason,
    tier,
)

PREDICTIONS = ("p_alive", "churn_risk", "expected_purchases", "expected_spend", "clv")

#: The models are compared on at most this many customers (the chosen one is fitted on all).
CHECK_SAMPLE = 50_000


def transaction_model(name: str, penalizer: float = 0.0) -> BTYDModel:
    """The repeat-buying model named ``name`` (a ``clv.model`` value other than ``auto``)."""
    return repeat_buying_model(name, penalizer)


def rfm_table(events: ir.Table | AsOf, as_of: dt.date, period: str) -> ir.Table:
    """RFM inputs and totals per buying customer (an Ibis expression), from the events or from
    the run's snapshot (``AsOf``) of ``as_of``."""
    snapshot = events if isinstance(events, AsOf) else AsOf(events, as_of)
    summary = rfm_of(snapshot, period)
    end = ibis.literal(as_of, type="date")
    return summary.mutate(
        average_transaction=summary.total_spend / summary.transactions,
        tenure_days=end.delta(summary.first_purchase, unit="day"),
        days_since_last=end.delta(summary.last_purchase, unit="day"),
    )


def repeat_transaction_days(events: ir.Table, calibration_end: dt.date, observation_end: dt.date) -> ir.Table:
    """``day, repeat_transactions``: per day up to ``observation_end``, the transactions of the
    customers who first bought by ``calibration_end``, their first one excepted (the actual
    curve of a holdout check's tracking chart)."""
    days = transactions(events, observation_end)
    first = days.group_by("customer_id").aggregate(first_day=days.day.min())
    cohort = days.join(first, "customer_id")
    repeat = cohort.filter(
        (cohort.first_day <= ibis.literal(calibration_end, type="date")) & (cohort.day > cohort.first_day)
    )
    return repeat.group_by("day").aggregate(repeat_transactions=repeat.count()).order_by("day")


@dataclass(frozen=True)
class Holdout:
    """The calibration/holdout split of a valuation: the plan, and the calibration RFM with each
    customer's holdout transactions (``calibration_holdout``), None when there is no check."""

    plan: HoldoutPlan
    calibration: pa.Table | None = None


def holdout_for(events: ir.Table | AsOf, rfm: pa.Table, as_of: dt.date, settings: ClvConfig) -> Holdout:
    """The holdout check's data for ``rfm`` (from :func:`rfm_table`): ``clv.holdout_days`` at the
    end of the history (0: a third of it, at most a year); ``events`` may be the run's snapshot
    (``AsOf``) of ``as_of``."""
    first = pc.min(rfm.column("first_purchase")).as_py() if rfm.num_rows else None
    plan = plan_holdout(first, as_of, settings.holdout_days)
    if plan.calibration_end is None:
        return Holdout(plan)
    snapshot = events if isinstance(events, AsOf) else AsOf(events, as_of)
    table = holdout_of(snapshot, plan.calibration_end, settings.period).to_pyarrow()
    return Holdout(plan, table)


#: The ``value_models`` rows of ``Valuation.models``, as Arrow types.
MODEL_SCHEMA = pa.schema(
    [
        ("as_of", pa.date32()),
        ("model", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("calibration_end", pa.date32()),
        ("holdout_customers", pa.int64()),
        ("holdout_actual", pa.float64()),
        ("holdout_predicted", pa.float64()),
        ("holdout_rmse", pa.float64()),
        ("log_likelihood", pa.float64()),
        ("dropout", pa.float64()),
        ("dropout_se", pa.float64()),
        ("dropout_identified", pa.bool_()),
    ]
)


@dataclass
class Valuation:
    """The per-customer values (Arrow), the fitted parameters and any warnings.

    ``models`` (Arrow) has one row per model considered (the ``value_models`` table): the chosen
    repeat-buying model and why, the other candidates' holdout scores or errors, the spend
    model. ``model`` is the label of the repeat-buying model used (None when none could be
    fitted), ``dropout`` its evidence for dropout, ``with_clv`` the customers with a CLV and
    ``unavailable`` why the others have none.
    """

    values: pa.Table
    fits: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    models: pa.Table = field(default_factory=lambda: MODEL_SCHEMA.empty_table())
    model: str | None = None
    model_reason: str = ""
    dropout: DropoutEvidence | None = None
    with_clv: int = 0
    unavailable: str | None = None


def _fit_rows(model_name: str, model, as_of: dt.date) -> list[dict]:
    summary = model.summary()
    return [
        {
            "as_of": as_of,
            "model": model_name,
            "parameter": name,
            "estimate": float(row.estimate),
            "se": float(row.se),
            "log_likelihood": summary.attrs["log_likelihood"],
            "n_customers": summary.attrs["n_customers"],
        }
        for name, row in summary.iterrows()
    ]


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().astype(float)


def value_customers(
    rfm: pa.Table, as_of: dt.date, settings: ClvConfig, holdout: Holdout | None = None
) -> Valuation:
    """Scores, then the configured models fitted on ``rfm`` (from :func:`rfm_table`) and their
    predictions per customer. ``holdout`` (from :func:`holdout_for`) lets ``clv.model = "auto"``
    compare the models on a holdout period; without it they are compared by likelihood.

    The spend model and the scores do not depend on the transaction model: they run in a second
    thread while it fits (NumPy and SciPy release the GIL in their loops).
    """
    if rfm.num_rows == 0:
        return Valuation(
            _assemble(rfm, None, {}),
            pd.DataFrame(),
            ["no customer has bought anything yet: nothing to value"],
            unavailable="no customer has bought anything yet",
        )
    x, t_x, T, m = (_column(rfm, c) for c in ("frequency", "recency", "T", "monetary_value"))
    with ThreadPoolExecutor(max_workers=1) as pool:
        side = pool.submit(_scores_and_spend, rfm, x, m, as_of, settings)
        buying = _transactions(x, t_x, T, as_of, settings, holdout)
        scores, spend, spend_fits, spend_error = side.result()
    predictions, fits = buying.predictions, buying.fits
    spend_row = {
        "as_of": as_of,
        "model": "GammaGamma",
        "status": "fitted" if spend_error is None else "failed",
    }
    if spend_error is not None:
        spend_row["reason"] = spend_error
    models = pa.Table.from_pylist([*buying.rows, spend_row], schema=MODEL_SCHEMA)
    unavailable = why_no_clv(models.to_pandas())
    if spend_error is None and "p_alive" in predictions:
        fits += spend_fits
        predictions["expected_spend"] = spend
        predictions["clv"] = spend * predictions.pop("discounted_purchases")
    predictions.pop("discounted_purchases", None)
    with_clv = int(np.isfinite(predictions["clv"]).sum()) if "clv" in predictions else 0
    return Valuation(
        _assemble(rfm, scores, predictions),
        pd.DataFrame(fits),
        [],
        models,
        buying.label,
        buying.reason,
        buying.dropout,
        with_clv,
        unavailable,
    )


def why_no_clv(models: pd.DataFrame) -> str | None:
    """Why a run's customers have no CLV, read from its ``value_models`` rows (None when they
    have one, or when the rows are missing).

    >>> rows = pd.DataFrame({"model": ["BGNBD", "GammaGamma"], "status": ["failed", "fitted"],
    ...                      "reason": ["every customer has frequency 0", None]})
    >>> why_no_clv(rows)
    'BG/NBD could not be fitted: every customer has frequency 0'
    """
    from microseg.models.clv.selection import label_of

    if models.empty:
        return None
    buying = models[models["model"] != "GammaGamma"]
    chosen = buying[buying["status"] == "chosen"]
    if chosen.empty:
        failed = buying[buying["status"] == "failed"]
        for reason in failed["reason"].dropna():
            if " gives no predictions: " in reason:  # chosen, fitted, but its predictions failed
                return reason
        if len(buying) == 1 and len(failed) == 1:
            return f"{label_of(failed['model'].iloc[0])} could not be fitted: {failed['reason'].iloc[0]}"
        return "no repeat-buying model could be fitted: " + "; ".join(
            f"{label_of(model)}: {short_reason(_all_data_error(str(reason)))}"
            for model, reason in zip(failed["model"], failed["reason"], strict=True)
        )
    spend = models[(models["model"] == "GammaGamma") & (models["status"] == "failed")]
    if not spend.empty:
        return f"the spend model (Gamma-Gamma) could not be fitted: {spend['reason'].iloc[0]}"
    return None


def _all_data_error(reason: str) -> str:
    """The error of the fit on all data in a ``value_models`` reason."""
    for marker in ("nor on all data: ", "not fitted on all data: "):
        if marker in reason:
            return reason.split(marker, 1)[1]
    return reason


def _assemble(rfm: pa.Table, scores: dict | None, predictions: dict) -> pa.Table:
    out = rfm
    if scores is None:
        scores = rfm_scores(np.array([]), np.array([]), np.array([]))
    for name, values in scores.items():
        out = out.append_column(name, pa.array(values))  # a Categorical becomes a dictionary array
    for name in PREDICTIONS:
        values = predictions.get(name)
        out = out.append_column(
            name, pa.array(values) if values is not None else pa.nulls(rfm.num_rows, pa.float64())
        )
    return out


def _scores_and_spend(rfm: pa.Table, x, m, as_of: dt.date, settings: ClvConfig):
    """RFM scores, and the Gamma-Gamma expected spend per customer with its fit (or why not)."""
    from microseg.models.clv.gammagamma import GammaGamma

    scores = rfm_scores(
        _column(rfm, "days_since_last"), _column(rfm, "transactions"), _column(rfm, "total_spend")
    )
    spend = GammaGamma(penalizer=settings.penalizer)
    repeat = (x > 0) & (m > 0)
    try:
        spend.fit(x[repeat], m[repeat])
        # customers without a positive repeat spend get the population mean (GammaGamma's x = 0)
        expected = spend.expected_spend(np.where(repeat, x, 0.0), np.where(repeat, m, 0.0))
    except (ValueError, ConvergenceError) as exc:
        return scores, None, [], plain_reason(exc, spend)
    return scores, expected, _fit_rows("GammaGamma", spend, as_of), None


@dataclass
class _Buying:
    """The repeat-buying side of a valuation."""

    predictions: dict = field(default_factory=dict)
    fits: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # value_models rows of the candidates
    label: str | None = None
    reason: str = ""
    dropout: DropoutEvidence | None = None
    error: str | None = None  # why there are no predictions


def _transactions(x, t_x, T, as_of: dt.date, settings: ClvConfig, holdout: Holdout | None) -> _Buying:
    """The chosen transaction model's fit, P(alive), expected purchases and discounted purchases."""
    from microseg.models.clv.value import discounted_expected_purchases

    # customers with the same (x, t_x, T) get the same predictions: work on the distinct rows
    # (merged on whole days, then converted to the period unit)
    period_days = PERIOD_DAYS[settings.period]
    (ux, ut, uT), weights, rows = compress(x, np.round(t_x * period_days), np.round(T * period_days))
    ut, uT = ut / period_days, uT / period_days
    candidates = _choose(ux, ut, uT, weights, settings, holdout)
    model = candidates.model
    if model is None:
        return candidates.result(as_of)
    try:
        p_alive = model.probability_alive(ux, ut, uT)[rows]
        expected = model.predict_purchases(settings.purchases_days / period_days, ux, ut, uT)[rows]
        discounted = discounted_expected_purchases(
            model,
            ux,
            ut,
            uT,
            distinct=True,
            months=settings.horizon_months,
            discount_rate=settings.discount_rate,
            days_per_period=period_days,
        )[rows]
    except (ValueError, ConvergenceError) as exc:
        candidates.error = f"{model.label} gives no predictions: {plain_reason(exc, model)}"
        return candidates.result(as_of)
    result = candidates.result(as_of)
    result.predictions = {
        "p_alive": p_alive,
        "churn_risk": 1.0 - p_alive,
        "expected_purchases": expected,
        "discounted_purchases": discounted,
    }
    result.fits = _fit_rows(type(model).__name__, model, as_of)
    return result


@dataclass
class _Candidate:
    """One repeat-buying model of a valuation: its holdout score and its fit on all data."""

    name: str
    score: HoldoutScore | None = None
    model: RepeatBuyingModel | None = None  # fitted on all data
    error: str | None = None  # why it could not be fitted on all data
    sample_model: RepeatBuyingModel | None = None  # fitted on the sample the choice was made on
    sample_error: str | None = None

    @property
    def label(self) -> str:
        return type(repeat_buying_model(self.name)).label


class _Candidates:
    """The models considered for one valuation, the chosen one and why."""

    def __init__(self, names, ux, ut, uT, weights, settings: ClvConfig) -> None:
        self.candidates = {name: _Candidate(name) for name in names}
        self._data = (ux, ut, uT, weights)
        self.settings = settings
        self.chosen: _Candidate | None = None
        self.reason = ""
        self.error: str | None = None  # why no model gives predictions
        self.calibration_end: dt.date | None = None
        self.passed: list[str] = []  # why ``use_first`` passed over models

    @property
    def model(self) -> RepeatBuyingModel | None:
        return self.chosen.model if self.chosen else None

    def fit(self, name: str) -> RepeatBuyingModel | None:
        """Model ``name`` fitted on all data (once), or None."""
        candidate = self.candidates[name]
        if candidate.model is None and candidate.error is None:
            candidate.model, candidate.error = self._fit(name, self._data)
        return candidate.model

    def fit_sample(self, name: str) -> RepeatBuyingModel | None:
        """Model ``name`` fitted on a sample of the customers, for choosing among the models on
        large data (on all of them when they are few)."""
        candidate = self.candidates[name]
        ux, ut, uT, weights = self._data
        if weights.sum() <= CHECK_SAMPLE:
            return self.fit(name)
        if candidate.sample_model is None and candidate.sample_error is None:
            kept = np.bincount(
                np.repeat(np.arange(len(weights)), weights.astype(np.int64))[:: _step(int(weights.sum()))],
                minlength=len(weights),
            ).astype(float)
            rows = kept > 0
            sample = (ux[rows], ut[rows], uT[rows], kept[rows])
            candidate.sample_model, candidate.sample_error = self._fit(name, sample)
        return candidate.sample_model

    @property
    def sample_size(self) -> int | None:
        """Customers of the sample the models were compared on, None when all were used."""
        total = int(self._data[3].sum())
        return len(range(0, total, _step(total))) if total > CHECK_SAMPLE else None

    def _fit(self, name: str, data) -> tuple[RepeatBuyingModel | None, str | None]:
        model = repeat_buying_model(name, self.settings.penalizer)
        ux, ut, uT, weights = data
        try:
            return model.fit(ux, ut, uT, weights=weights, distinct=True), None
        except (ValueError, ConvergenceError) as exc:
            return None, plain_reason(exc, model)

    def choose(self, name: str, reason: str) -> None:
        self.chosen, self.reason = self.candidates[name], reason

    def use_first(self, order: list[str], choice: tuple[str, str], tiers: dict[str, int], how: str) -> bool:
        """Choose the first model of ``order`` that can be fitted on all data, and that still
        finds dropout there when it was preferred for finding it (tier 0); False when none is
        left (``passed`` then says why each was passed over). ``choice`` is the (name, reason)
        of the first, ``how`` how it was chosen."""
        self.passed = passed = []
        for name in order:
            model = self.fit(name)
            candidate = self.candidates[name]
            if model is None:
                passed.append(f"{candidate.label} could not be fitted on all data")
                continue
            if tiers.get(name) == 0 and not dropout_evidence(model).identified:
                passed.append(f"{candidate.label} finds no dropout on all data")
                continue
            reason = choice[1]
            if passed:
                first = self.candidates[choice[0]].label
                reason = (
                    f"{first} was chosen {how}, but {'; '.join(passed).removeprefix(first + ' ')}; "
                    f"{candidate.label} is the next in line ({reason})"
                )
            self.choose(name, reason)
            return True
        return False

    def rows(self, as_of: dt.date) -> list[dict]:
        """The ``value_models`` rows of the candidates."""
        rows = []
        for candidate in self.candidates.values():
            row = {"as_of": as_of, "model": type(repeat_buying_model(candidate.name)).__name__}
            notes = []
            score = candidate.score
            if score is not None:
                row.update(
                    calibration_end=self.calibration_end,
                    holdout_customers=score.customers,
                    holdout_actual=score.actual,
                    holdout_predicted=score.predicted if score.fitted else None,
                    holdout_rmse=score.rmse if score.fitted else None,
                )
                if not score.fitted:
                    notes.append(f"not fitted on the calibration period: {score.error}")
            fitted = candidate.model or candidate.sample_model
            if candidate.model is None and candidate.sample_model is not None:
                notes.append(f"fitted on a sample of {self.sample_size:,} customers")
            if candidate.sample_error is not None and candidate.error is None:
                notes.append(
                    f"not fitted on a sample of {self.sample_size:,} customers: {candidate.sample_error}"
                )
            if fitted is not None:
                evidence = dropout_evidence(fitted, self.settings.period)
                row.update(
                    log_likelihood=fitted.log_likelihood_,
                    dropout=evidence.estimate,
                    dropout_se=evidence.se if evidence.modelled else None,
                    dropout_identified=evidence.identified,
                )
            if candidate.error is not None:
                if score is None:  # no holdout check: fitted on all data only
                    notes.append(candidate.error)
                elif score.error == candidate.error:
                    notes = [f"not fitted on the calibration period nor on all data: {candidate.error}"]
                else:
                    notes.append(f"not fitted on all data: {candidate.error}")
            if candidate is self.chosen:
                failed = self.error is not None  # chosen, but its predictions failed
                row.update(status="failed" if failed else "chosen", reason=self.error or self.reason)
            else:
                failed = fitted is None and (
                    candidate.error is not None
                    or candidate.sample_error is not None
                    or not score
                    or not score.fitted
                )
                row.update(status="failed" if failed else "fitted", reason="; ".join(notes) or None)
            rows.append(row)
        return rows

    def result(self, as_of: dt.date) -> _Buying:
        model = self.model if self.error is None else None
        return _Buying(
            rows=self.rows(as_of),
            label=type(model).label if model is not None else None,
            reason=self.reason if model is not None else "",
            dropout=dropout_evidence(model, self.settings.period) if model is not None else None,
            error=self.error,
        )


def _choose(ux, ut, uT, weights, settings: ClvConfig, holdout: Holdout | None) -> _Candidates:
    """The repeat-buying model fitted on all data: the configured one, or with ``auto`` the best
    on the holdout check (by likelihood when there is none)."""
    auto = settings.model == "auto"
    names = REPEAT_BUYING_MODELS if auto else (settings.model,)
    candidates = _Candidates(names, ux, ut, uT, weights, settings)
    if not auto:
        if candidates.fit(settings.model) is None:
            chosen = candidates.candidates[settings.model]
            candidates.error = f"{chosen.label} could not be fitted: {chosen.error}"
        else:
            candidates.choose(settings.model, f'as configured (clv.model = "{settings.model}")')
        return candidates

    why_not = _why_no_holdout(holdout)
    if why_not is None:
        plan = holdout.plan
        candidates.calibration_end = plan.calibration_end
        scores = _holdout_scores(holdout, settings)
        for score in scores:
            candidates.candidates[score.model].score = score
        population = holdout.calibration.num_rows
        sampled = population if population > CHECK_SAMPLE else None
        choice = choose_by_holdout(scores, plan.calibration_end, plan.holdout_days, sampled)
        if choice is not None:
            tiers = {score.model: score.tier for score in scores}
            order = rank_by_holdout(scores)
            if tiers[choice[0]] == 0:
                # the calibration period shows dropout: only a model that finds it will do; when
                # none can be used on all data, all models are compared there instead
                order = [name for name in order if tiers[name] == 0]
            if candidates.use_first(order, choice, tiers, "on the holdout check"):
                return candidates
            why_not = (
                "the models chosen on the holdout check cannot be used on all data: "
                f"{'; '.join(candidates.passed)}"
            )
        else:
            why_not = f"no model could be fitted on the calibration period to {plan.calibration_end}"

    # by likelihood: on a sample of the customers when they are many (Pareto/NBD takes seconds
    # per hundred thousand), then the chosen model on all of them
    fits = [(name, candidates.fit_sample(name)) for name in REPEAT_BUYING_MODELS]
    errors = {
        c.name: c.sample_error or c.error for c in candidates.candidates.values() if c.sample_error or c.error
    }
    choice = choose_by_likelihood(fits, why_not, sample=candidates.sample_size, errors=errors)
    if choice is not None:
        tiers = {
            name: tier(name, dropout_evidence(model).identified) for name, model in fits if model is not None
        }
        if candidates.use_first(rank_by_likelihood(fits), choice, tiers, "by likelihood"):
            return candidates
    candidates.error = "no repeat-buying model could be fitted: " + "; ".join(
        f"{c.label}: {short_reason(c.error or c.sample_error or '')}" for c in candidates.candidates.values()
    )
    return candidates


def _why_no_holdout(holdout: Holdout | None) -> str | None:
    if holdout is None:
        return "no holdout data given"
    if holdout.plan.reason is not None:
        return holdout.plan.reason
    customers = holdout.calibration.num_rows
    if customers < MIN_HOLDOUT_CUSTOMERS:
        return (
            f"{customers} customers bought by the calibration end {holdout.plan.calibration_end}, "
            f"fewer than the {MIN_HOLDOUT_CUSTOMERS} a holdout check needs"
        )
    return None


def _step(customers: int) -> int:
    """Every how many customers one is sampled: at most ``CHECK_SAMPLE`` of them."""
    return -(-customers // CHECK_SAMPLE)


def _holdout_scores(holdout: Holdout, settings: ClvConfig) -> list[HoldoutScore]:
    """Each model fitted on the calibration period and scored on the holdout (on a sample of
    ``CHECK_SAMPLE`` customers when there are more: customers alike in every input are
    interchangeable, so every k-th in the order of their inputs is a fair, deterministic pick)."""
    table = holdout.calibration
    columns = [_column(table, c) for c in ("frequency", "recency", "T", "holdout_transactions")]
    if table.num_rows > CHECK_SAMPLE:
        _, codes = unique_rows(*columns)
        picked = np.argsort(codes, kind="stable")[:: _step(table.num_rows)]
        columns = [column[picked] for column in columns]
    duration = float(table.column("holdout_duration")[0].as_py())
    days = PERIOD_DAYS[settings.period]
    return [
        score_on_holdout(name, *columns, duration, days_per_period=days, penalizer=settings.penalizer)[0]
        for name in REPEAT_BUYING_MODELS
    ]

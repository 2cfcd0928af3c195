"""Choosing the repeat-buying model by a holdout check, and the evidence for dropout."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest

from microseg.config import ClvConfig
from microseg.features.rfm import calibration_holdout
from microseg.features.valuation import holdout_for, rfm_table, value_customers, why_no_clv
from microseg.models.clv import BGNBD, MBGNBD, NBD, ParetoNBD
from microseg.models.clv.selection import (
    HoldoutScore,
    choose_by_holdout,
    choose_by_likelihood,
    dropout_evidence,
    plan_holdout,
    rank_by_holdout,
    rank_by_likelihood,
    repeat_buying_model,
    score_on_holdout,
)

START = dt.datetime(2023, 1, 2)
AS_OF = dt.date(2024, 6, 30)


def simulate_events(n: int, seed: int, *, a: float = 0.8, b: float = 2.4) -> pd.DataFrame:
    """Purchases of a BG/NBD population (weekly rates Gamma(0.4, 6), dropout Beta(a, b) after
    each purchase) with Gamma-Gamma spend (p = 6, ν ~ Gamma(4, 15)), first purchases spread over
    the first 12 weeks, observed to AS_OF."""
    rng = np.random.default_rng(seed)
    end = (dt.datetime.combine(AS_OF, dt.time(23)) - START).days / 7
    rows = []
    for i in range(n):
        rate, p, nu = rng.gamma(0.4, 1 / 6), rng.beta(a, b), rng.gamma(4, 1 / 15)
        t = rng.uniform(0, 12)
        while t <= end:
            rows.append((f"c{i:05d}", START + dt.timedelta(weeks=t), float(rng.gamma(6, 1 / nu))))
            if rng.random() < p:
                break
            t += rng.exponential(1 / rate)
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "amount"])
    return frame.assign(event_type="purchase")


@pytest.fixture(scope="module")
def events() -> ibis.Table:
    return ibis.memtable(simulate_events(3_000, seed=5))


def test_dropout_is_identified_when_customers_leave(events):
    rfm = rfm_table(events, AS_OF, "week").to_pandas()
    model = BGNBD().fit(rfm.frequency, rfm.recency, rfm["T"])
    evidence = dropout_evidence(model, "week")
    a, b = model.params_["a"], model.params_["b"]
    assert evidence.estimate == pytest.approx(a / (a + b))
    assert evidence.identified and evidence.estimate - 1.96 * evidence.se > 0
    assert "finds dropout" in evidence.describe()


def test_dropout_is_not_identified_when_its_interval_reaches_zero():
    """The Online Retail fit: a = 0.0034 (SE 0.0103), b = 6.75 (SE 22.4)."""
    model = BGNBD()
    names = ["r", "alpha", "a", "b"]
    model.params_ = pd.Series([0.8264, 9.842, 0.003443, 6.749], index=names)
    cov = np.diag([0.0268, 0.373, 0.0103, 22.4]) ** 2
    cov[2, 3] = cov[3, 2] = 0.0103 * 22.4 * 0.9  # a and b move together
    model.covariance_ = pd.DataFrame(cov, index=names, columns=names)
    evidence = dropout_evidence(model)
    assert evidence.estimate == pytest.approx(0.003443 / (0.003443 + 6.749))
    assert not evidence.identified
    assert "consistent with nobody leaving" in evidence.describe()


def test_pareto_dropout_is_the_mean_rate():
    model = ParetoNBD()
    names = ["r", "alpha", "s", "beta"]
    model.params_ = pd.Series([0.553, 10.578, 0.606, 11.669], index=names)
    model.covariance_ = pd.DataFrame(np.diag([0.01, 1.0, 0.01, 4.0]), index=names, columns=names)
    evidence = dropout_evidence(model, "week")
    assert evidence.estimate == pytest.approx(0.606 / 11.669)
    assert "per week" in evidence.measure and evidence.identified


def test_plan_holdout():
    first = dt.date(2023, 1, 1)
    plan = plan_holdout(first, dt.date(2023, 12, 31))  # 364 days: a third is 121
    assert plan.calibration_end == dt.date(2023, 12, 31) - dt.timedelta(days=121) and plan.reason is None
    assert plan_holdout(first, dt.date(2027, 1, 1)).holdout_days == 365  # at most a year
    assert plan_holdout(first, dt.date(2023, 12, 31), 90).calibration_end == dt.date(2023, 10, 2)
    assert "too short" in plan_holdout(first, dt.date(2023, 2, 15)).reason
    assert "not longer than the holdout" in plan_holdout(first, dt.date(2023, 2, 15), 60).reason
    assert plan_holdout(None, dt.date(2023, 2, 15)).calibration_end is None


def _score(name: str, squared: np.ndarray, predicted: float, actual: float = 100.0) -> HoldoutScore:
    label = repeat_buying_model(name).label
    return HoldoutScore(
        name, label, len(squared), actual, predicted, float(np.sqrt(squared.mean())), None, squared
    )


def test_the_lowest_error_wins_when_it_is_clearly_lower():
    rng = np.random.default_rng(0)
    base = rng.exponential(1.0, 2_000)
    scores = [_score("bgnbd", base, 95.0), _score("mbgnbd", base * 1.5, 100.0)]
    name, reason = choose_by_holdout(scores, dt.date(2024, 1, 1), 90)
    assert name == "bgnbd"
    assert reason.startswith("chosen by a holdout check (calibration to 2024-01-01, 90-day holdout")
    assert "the lowest error of per-customer holdout transactions" in reason


def test_equally_good_models_are_told_apart_by_the_holdout_total():
    rng = np.random.default_rng(1)
    base = rng.exponential(1.0, 2_000)
    noise = rng.normal(0, 0.05, 2_000)  # within the noise of the per-customer errors
    scores = [
        _score("bgnbd", base, 80.0),
        _score("paretonbd", base + noise, 99.0),
        _score("mbgnbd", base + 0.001, 120.0),
    ]
    name, reason = choose_by_holdout(scores, dt.date(2024, 1, 1))
    assert name == "paretonbd"
    assert "predict each customer's holdout transactions equally well" in reason
    assert "Pareto/NBD is the closest on the holdout total" in reason


def test_a_model_that_cannot_be_fitted_is_named_and_skipped():
    base = np.ones(500)
    failed = HoldoutScore("paretonbd", "Pareto/NBD", 500, 100.0, error="the data show no dropout")
    name, reason = choose_by_holdout([_score("bgnbd", base, 90.0), failed], dt.date(2024, 1, 1))
    assert name == "bgnbd" and "Pareto/NBD could not be fitted" in reason
    assert choose_by_holdout([failed], dt.date(2024, 1, 1)) is None


def fitted_model(cls, ll: float, dropout_se: float = 0.01):
    """A model as fitted: parameters, covariance and log-likelihood (dropout 0.2 per purchase,
    with this standard error)."""
    model = cls()
    if cls is NBD:
        model.params_ = pd.Series({"r": 0.4, "alpha": 10.0})
    else:
        model.params_ = pd.Series({"r": 0.4, "alpha": 10.0, "a": 1.0, "b": 4.0})
    names = list(model.params_.index)
    variance = np.full(len(names), 1e-4)
    if cls is not NBD:  # var(a/(a+b)) = (b² var a + a² var b)/(a+b)^4
        variance[2] = variance[3] = (dropout_se * 25) ** 2 / 17
    model.covariance_ = pd.DataFrame(np.diag(variance), index=names, columns=names)
    model.log_likelihood_ = ll
    return model


def test_choose_by_likelihood():
    fits = [
        ("bgnbd", fitted_model(BGNBD, -100.0)),
        ("paretonbd", None),
        ("mbgnbd", fitted_model(MBGNBD, -90.0)),
    ]
    name, reason = choose_by_likelihood(fits, "the history is short")
    assert name == "mbgnbd"
    assert reason == (
        "no holdout check (the history is short); chosen by likelihood on all data "
        "(log-likelihood: MBG/NBD -90.0, BG/NBD -100.0; Pareto/NBD could not be fitted)"
    )
    assert choose_by_likelihood([("bgnbd", None)], "x") is None


def test_by_likelihood_a_model_that_finds_dropout_comes_before_the_nbd():
    fits = [
        ("bgnbd", fitted_model(BGNBD, -100.0)),
        ("mbgnbd", fitted_model(MBGNBD, -90.0, dropout_se=0.2)),  # dropout not identified
        ("nbd", fitted_model(NBD, -95.0)),
    ]
    assert rank_by_likelihood(fits) == ["bgnbd", "nbd", "mbgnbd"]
    name, reason = choose_by_likelihood(fits, "the history is short")
    assert name == "bgnbd"
    assert reason == (
        "no holdout check (the history is short); BG/NBD finds dropout on all data, so MBG/NBD (dropout "
        "not identified) and the NBD (nobody leaves) are set aside; chosen by likelihood on all data "
        "(log-likelihood: MBG/NBD -90.0, NBD -95.0, BG/NBD -100.0)"
    )


def test_by_likelihood_the_nbd_is_used_when_no_model_finds_dropout():
    fits = [
        ("bgnbd", fitted_model(BGNBD, -90.0, dropout_se=0.2)),
        ("paretonbd", None),
        ("mbgnbd", None),
        ("nbd", fitted_model(NBD, -91.0)),
    ]
    errors = {"paretonbd": "the data show no dropout: the likelihood keeps rising; observe longer"}
    name, reason = choose_by_likelihood(fits, "the history is short", errors=errors)
    assert name == "nbd" and rank_by_likelihood(fits) == ["nbd", "bgnbd"]
    assert reason == (
        "no holdout check (the history is short); no model with dropout finds any on all data (BG/NBD: "
        "dropout not identified; Pareto/NBD: the data show no dropout; MBG/NBD: could not be fitted), "
        "so the NBD, where nobody leaves, is used (log-likelihood: BG/NBD -90.0, NBD -91.0; "
        "Pareto/NBD and MBG/NBD could not be fitted)"
    )
    # without the NBD, the best of the models whose dropout is not identified
    name, reason = choose_by_likelihood([*fits[:3], ("nbd", None)], "short", errors={"nbd": "flat: r"})
    assert name == "bgnbd"
    assert "no model finds dropout on all data and the NBD could not be fitted (flat)" in reason


def test_on_the_holdout_the_nbd_is_scored_but_a_model_with_dropout_is_preferred():
    rng = np.random.default_rng(2)
    base = rng.exponential(1.0, 2_000)
    scores = [
        _score("bgnbd", base * 1.2, 95.0),
        _score("mbgnbd", base * 1.1, 97.0),
        _score("nbd", base, 100.0),  # the best score, but nobody leaves in it
    ]
    scores[0].finds_dropout = True
    name, reason = choose_by_holdout(scores, dt.date(2024, 1, 1), 90)
    assert name == "bgnbd" and rank_by_holdout(scores) == ["bgnbd", "nbd", "mbgnbd"]
    assert reason.startswith(
        "chosen by a holdout check (calibration to 2024-01-01, 90-day holdout, 2,000 customers): BG/NBD "
        "finds dropout on the calibration period, so MBG/NBD (dropout not identified) and the NBD (nobody "
        "leaves) are set aside; the lowest error of per-customer holdout transactions; per-customer "
        "RMSE: NBD "
    )
    # no model finds dropout: the NBD is used, and its score is reported
    scores[0].finds_dropout = False
    name, reason = choose_by_holdout(scores, dt.date(2024, 1, 1), 90)
    assert name == "nbd" and rank_by_holdout(scores) == ["nbd", "mbgnbd", "bgnbd"]
    assert reason.startswith(
        "no model with dropout finds any on the calibration period (BG/NBD: dropout not identified; "
        "MBG/NBD: dropout not identified), so the NBD, where nobody leaves, is used; scored by a holdout "
        "check (calibration to 2024-01-01, 90-day holdout, 2,000 customers): per-customer RMSE: NBD "
    )
    assert reason.endswith("its holdout total: 100 predicted vs 100 actual (+0%)")


def test_nbd_evidence_says_nobody_leaves():
    evidence = dropout_evidence(fitted_model(NBD, -1.0))
    assert not evidence.identified and not evidence.modelled and evidence.estimate == 0.0
    assert evidence.describe().startswith("The value model is the NBD model: nobody leaves in this data")
    assert "P(alive) is not estimated" in evidence.describe()


def test_score_on_holdout_of_a_simulated_population(events):
    holdout = calibration_holdout(events, dt.date(2024, 1, 31), AS_OF, "week").to_pandas()
    score, model = score_on_holdout(
        "bgnbd",
        holdout.frequency,
        holdout.recency,
        holdout["T"],
        holdout.holdout_transactions,
        float(holdout.holdout_duration.iloc[0]),
        days_per_period=7,
    )
    assert model is not None and score.fitted
    assert score.customers == len(holdout) and score.actual == holdout.holdout_transactions.sum()
    # the population is a BG/NBD one: the total is predicted within a few percent
    assert abs(score.total_error) < 0.1
    direct = BGNBD().fit(holdout.frequency, holdout.recency, holdout["T"])
    predicted = direct.predict_purchases(
        holdout.holdout_duration.iloc[0], holdout.frequency, holdout.recency, holdout["T"]
    )
    assert score.predicted == pytest.approx(predicted.sum(), rel=1e-3)  # merged on whole days


def test_auto_valuation_chooses_by_holdout_and_says_why(events):
    settings = ClvConfig()
    assert settings.model == "auto"
    rfm = rfm_table(events, AS_OF, settings.period).to_pyarrow()
    valuation = value_customers(rfm, AS_OF, settings, holdout_for(events, rfm, AS_OF, settings))
    models = valuation.models.to_pandas()
    assert list(models.model) == ["BGNBD", "ParetoNBD", "MBGNBD", "NBD", "GammaGamma"]
    chosen = models[models.status == "chosen"]
    assert len(chosen) == 1 and chosen.reason.iloc[0] == valuation.model_reason
    assert valuation.model_reason.startswith("chosen by a holdout check")
    scored = models[models.model != "GammaGamma"]
    assert scored.calibration_end.notna().all() and (scored.holdout_actual > 0).all()
    # the chosen model is refitted on all data: its parameters are the ones stored
    assert valuation.model in ("BG/NBD", "Pareto/NBD", "MBG/NBD")
    assert valuation.dropout.identified and bool(chosen.dropout_identified.iloc[0])
    assert valuation.with_clv == rfm.num_rows and valuation.unavailable is None and valuation.warnings == []
    assert why_no_clv(models) is None


def test_without_holdout_data_the_models_are_compared_by_likelihood(events):
    rfm = rfm_table(events, AS_OF, "week").to_pyarrow()
    valuation = value_customers(rfm, AS_OF, ClvConfig())
    models = valuation.models.to_pandas()
    fitted = models[models.log_likelihood.notna()]
    assert valuation.model_reason.startswith(
        "no holdout check (no holdout data given); dropout is identified on all data, so the NBD (nobody "
        "leaves) is set aside; chosen by likelihood on all data"
    )
    best = fitted.loc[fitted.log_likelihood.idxmax(), "model"]
    assert models.loc[models.status == "chosen", "model"].item() == best


def test_a_configured_model_is_used_as_it_is(events):
    rfm = rfm_table(events, AS_OF, "week").to_pyarrow()
    valuation = value_customers(rfm, AS_OF, ClvConfig(model="mbgnbd"))
    assert valuation.model == "MBG/NBD" and valuation.model_reason == 'as configured (clv.model = "mbgnbd")'
    assert list(valuation.models.column("model").to_pylist()) == ["MBGNBD", "GammaGamma"]


def test_a_configured_nbd_lets_nobody_leave(events):
    rfm = rfm_table(events, AS_OF, "week").to_pyarrow()
    valuation = value_customers(rfm, AS_OF, ClvConfig(model="nbd"))
    assert valuation.model == "NBD" and valuation.model_reason == 'as configured (clv.model = "nbd")'
    assert not valuation.dropout.identified and not valuation.dropout.modelled
    values = valuation.values.to_pandas()
    assert (values.p_alive == 1.0).all() and (values.churn_risk == 0.0).all()
    assert values.clv.notna().all() and (values.clv > 0).all()
    rows = valuation.models.to_pandas().set_index("model")
    assert rows.loc["NBD", "dropout"] == 0.0 and pd.isna(rows.loc["NBD", "dropout_se"])
    assert list(valuation.fits.query("model == 'NBD'").parameter) == ["r", "alpha"]


def test_large_data_is_compared_on_a_sample_and_the_choice_fitted_on_all(events, monkeypatch):
    import microseg.features.valuation as valuation_module

    monkeypatch.setattr(valuation_module, "CHECK_SAMPLE", 1_000)
    settings = ClvConfig()
    rfm = rfm_table(events, AS_OF, settings.period).to_pyarrow()
    holdout = holdout_for(events, rfm, AS_OF, settings)
    valuation = value_customers(rfm, AS_OF, settings, holdout)
    population = holdout.calibration.num_rows
    step = -(-population // 1_000)
    assert f"{len(range(0, population, step)):,} of {population:,} customers" in valuation.model_reason
    models = valuation.models.to_pandas()
    assert (models.holdout_customers.dropna() <= 1_000).all()
    assert valuation.fits.n_customers.iloc[0] == rfm.num_rows  # the chosen model: all customers
    # the same sample again: the same choice, whatever order the engine returns the rows in
    shuffled = rfm.take(np.random.default_rng(0).permutation(rfm.num_rows))
    again = value_customers(shuffled, AS_OF, settings, holdout)
    assert again.model_reason == valuation.model_reason

    by_likelihood = value_customers(rfm, AS_OF, settings)  # no holdout: by likelihood, on a sample
    sample = len(range(0, rfm.num_rows, -(-rfm.num_rows // 1_000)))
    assert f"chosen by likelihood on a sample of {sample:,} customers" in by_likelihood.model_reason
    assert by_likelihood.fits.n_customers.iloc[0] == rfm.num_rows
    rows = by_likelihood.models.to_pandas().set_index("model")
    others = rows[(rows.status == "fitted") & (rows.index != "GammaGamma")]
    assert others.reason.str.startswith(f"fitted on a sample of {sample:,} customers").all()

"""Which repeat-buying model to trust, and how far: a holdout check between the models, and
whether the data identify dropout at all.

**The models.** BG/NBD, Pareto/NBD and MBG/NBD differ mostly in how customers leave; the NBD is
their common limit where nobody leaves (each customer buys at their own Poisson rate for ever).

**Dropout.** P(alive) is only as good as the model's evidence that customers leave. The mean
dropout (a/(a+b) per purchase for BG/NBD and MBG/NBD, s/β per period for Pareto/NBD) is
*identified* when its 95% interval (delta method) excludes zero. When it is not, the data are
consistent with nobody leaving: P(alive) is near 1 for everyone and says nothing about who has
lapsed. The NBD has no dropout to identify (its P(alive) is 1).

**Choosing a model** (``clv.model = "auto"``). Each model is put in one of three tiers:

1. a model with dropout that identifies it;
2. the NBD;
3. a model with dropout that does not identify it.

The chosen model comes from the first tier that has a fitted model: a model with dropout when
the data show dropout; the NBD when every model with dropout fails (typically because the
likelihood keeps rising as dropout goes to 0) or finds none; a model with unidentified dropout
only when the NBD cannot be fitted either. Within the tier:

* When the history is long enough, each model is fitted on a calibration period and asked to
  predict every customer's repeat transactions in the holdout period that follows (as in Fader,
  Hardie & Lee 2005); the tiers are those of the calibration fits. The score is the root mean
  squared error of those per-customer predictions: the models predict means, and the squared
  error is the score a mean is best at. A model whose squared errors are not significantly
  larger than the best one's (paired difference within its 95% interval) is as good on that
  score; among those, the one closest on the holdout's total wins. Every model is scored, the
  NBD included, and the scores of all are reported.
* Without a holdout check (short history, too few customers, no model fits the calibration
  period), the models are fitted on all the data and the tier's models are compared by their
  likelihood (the models with dropout have four parameters each, so this is also their AIC
  order).

The chosen model is then fitted on all the data. A model chosen for its dropout is kept only if
that fit identifies dropout too; otherwise, or when it cannot be fitted, the next model of its
tier takes its place, and when none of the tier is left, the models are compared on all the data
by likelihood, tiers included, as without a holdout check. Any other model that cannot be fitted
on all the data gives way to the next in the order above.

>>> import numpy as np, pandas as pd
>>> from microseg.models.clv.bgnbd import BGNBD
>>> model = BGNBD()
>>> model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
>>> model.covariance_ = pd.DataFrame(np.diag([0.0001, 0.01, 0.01, 0.04]), index=model.params_.index,
...                                  columns=model.params_.index)
>>> evidence = dropout_evidence(model)
>>> round(evidence.estimate, 3), evidence.identified
(0.246, True)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from microseg.errors import InvalidInputError
from microseg.models.clv.base import ConvergenceError, RepeatBuyingModel, compress

__all__ = [
    "MIN_HOLDOUT_CUSTOMERS",
    "MIN_HOLDOUT_DAYS",
    "DROPOUT_MODELS",
    "NO_DROPOUT_MODEL",
    "REPEAT_BUYING_MODELS",
    "DropoutEvidence",
    "HoldoutPlan",
    "HoldoutScore",
    "choose_by_holdout",
    "choose_by_likelihood",
    "dropout_evidence",
    "label_of",
    "listed",
    "plain_reason",
    "plan_holdout",
    "rank_by_holdout",
    "rank_by_likelihood",
    "repeat_buying_model",
    "score_on_holdout",
]

#: The repeat-buying models by their setting name (``clv.model``), in the order ties are broken.
REPEAT_BUYING_MODELS: tuple[str, ...] = ("bgnbd", "paretonbd", "mbgnbd", "nbd")
#: The models in which customers can leave ...
DROPOUT_MODELS: tuple[str, ...] = ("bgnbd", "paretonbd", "mbgnbd")
#: ... and their limit where nobody does.
NO_DROPOUT_MODEL = "nbd"

#: A holdout shorter than this says more about the calendar than about the models.
MIN_HOLDOUT_DAYS = 28
#: The automatic holdout: this share of the history, at most a year.
HOLDOUT_SHARE = 1 / 3
MAX_AUTO_HOLDOUT_DAYS = 365
#: Fewer calibration customers than this make the holdout scores noise.
MIN_HOLDOUT_CUSTOMERS = 100
#: z of the 95% intervals.
Z95 = 1.96


def repeat_buying_model(name: str, penalizer: float = 0.0) -> RepeatBuyingModel:
    """A new, unfitted model by its ``clv.model`` name.

    >>> repeat_buying_model("paretonbd").label
    'Pareto/NBD'
    """
    if name == "bgnbd":
        from microseg.models.clv.bgnbd import BGNBD as model
    elif name == "paretonbd":
        from microseg.models.clv.paretonbd import ParetoNBD as model
    elif name == "mbgnbd":
        from microseg.models.clv.mbgnbd import MBGNBD as model
    elif name == "nbd":
        from microseg.models.clv.nbd import NBD as model
    else:
        raise InvalidInputError(
            f"unknown repeat-buying model {name!r}; choose {', '.join(REPEAT_BUYING_MODELS)}"
        )
    return model(penalizer=penalizer)


# --- dropout --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropoutEvidence:
    """The fitted model's mean dropout with its standard error, and whether it is identified."""

    model: str  # the model's label, e.g. "BG/NBD"
    measure: str  # what the estimate is, in words
    estimate: float
    se: float
    modelled: bool = True  # False for the NBD: nobody leaves, there is no dropout to estimate

    @property
    def identified(self) -> bool:
        """The 95% interval of the mean dropout excludes zero."""
        return bool(self.modelled and np.isfinite(self.se) and self.estimate - Z95 * self.se > 0)

    def describe(self) -> str:
        """One sentence for users."""
        if not self.modelled:
            return (
                f"The value model is the {self.model} model: nobody leaves in this data; P(alive) is not "
                "estimated (it is 1 for everyone) and says nothing about who has lapsed"
            )
        interval = (
            f"{self.estimate:.2g} ± {Z95 * self.se:.2g}" if np.isfinite(self.se) else f"{self.estimate:.2g}"
        )
        if self.identified:
            return f"{self.model} finds dropout: {self.measure} {interval} (95% interval)"
        return (
            f"{self.model} cannot tell whether customers leave: {self.measure} is {interval} "
            "(95% interval), consistent with nobody leaving; P(alive) is then near 1 for everyone "
            "and says nothing about who has lapsed"
        )


def dropout_evidence(model: RepeatBuyingModel, period: str = "period") -> DropoutEvidence:
    """The mean dropout of a fitted BG/NBD, MBG/NBD or Pareto/NBD and its delta-method standard
    error from the fit's covariance (for the NBD: none, by assumption).

    >>> import pandas as pd
    >>> from microseg.models.clv.nbd import NBD
    >>> model = NBD()
    >>> model.params_ = pd.Series({"r": 0.385, "alpha": 12.072})
    >>> dropout_evidence(model).identified
    False
    """
    model._check_fitted()
    params = model.params_
    if not type(model).has_dropout:
        return DropoutEvidence(type(model).label, "no dropout", 0.0, float("nan"), modelled=False)
    if "s" in params.index:  # Pareto/NBD: exponential lifetimes, rate μ ~ Gamma(s, β)
        names = ["s", "beta"]
        s, beta = float(params["s"]), float(params["beta"])
        estimate = s / beta
        gradient = np.array([1 / beta, -s / beta**2])
        measure = f"the mean dropout rate per {period} (s/β)"
    else:  # BG/NBD, MBG/NBD: a customer leaves after a purchase with p ~ Beta(a, b)
        names = ["a", "b"]
        a, b = float(params["a"]), float(params["b"])
        estimate = a / (a + b)
        gradient = np.array([b, -a]) / (a + b) ** 2
        measure = "the mean chance of leaving after a purchase (a/(a+b))"
    covariance = getattr(model, "covariance_", None)
    se = float("nan")
    if covariance is not None:
        variance = float(gradient @ covariance.loc[names, names].to_numpy(float) @ gradient)
        se = float(np.sqrt(variance)) if np.isfinite(variance) and variance >= 0 else float("nan")
    return DropoutEvidence(type(model).label, measure, estimate, se)


def tier(name: str, finds_dropout: bool) -> int:
    """The model's place in the order of preference: 0 a model with dropout that identifies it,
    1 the NBD, 2 a model with dropout that does not identify it.

    >>> tier("bgnbd", True), tier("nbd", False), tier("paretonbd", False)
    (0, 1, 2)
    """
    if name == NO_DROPOUT_MODEL:
        return 1
    return 0 if finds_dropout else 2


# --- the holdout check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutPlan:
    """Where the calibration period ends, or why there is no holdout check."""

    calibration_end: dt.date | None
    holdout_days: int
    reason: str | None = None  # why there is no check


def plan_holdout(first_purchase: dt.date | None, as_of: dt.date, holdout_days: int = 0) -> HoldoutPlan:
    """The calibration/holdout split of the history from ``first_purchase`` to ``as_of``:
    ``holdout_days`` at the end (0: a third of the history, at most a year).

    >>> plan_holdout(dt.date(1997, 1, 1), dt.date(1998, 6, 30), 273).calibration_end
    datetime.date(1997, 9, 30)
    >>> plan_holdout(dt.date(2024, 1, 1), dt.date(2024, 2, 1)).reason
    'the history (31 days) is too short for a holdout of at least 28 days after a calibration period as long'
    """
    if first_purchase is None:
        return HoldoutPlan(None, holdout_days, "nobody has bought anything")
    span = (as_of - first_purchase).days
    days = holdout_days or min(int(span * HOLDOUT_SHARE), MAX_AUTO_HOLDOUT_DAYS)
    if holdout_days == 0 and days < MIN_HOLDOUT_DAYS:
        return HoldoutPlan(
            None,
            days,
            f"the history ({span} days) is too short for a holdout of at least {MIN_HOLDOUT_DAYS} days "
            "after a calibration period as long",
        )
    if days >= span:
        return HoldoutPlan(
            None, days, f"the history ({span} days) is not longer than the holdout ({days} days)"
        )
    return HoldoutPlan(as_of - dt.timedelta(days=days), days)


@dataclass
class HoldoutScore:
    """How a model fitted on the calibration period predicted the holdout period."""

    model: str  # the clv.model name
    label: str
    customers: int
    actual: float  # repeat transactions in the holdout
    predicted: float = float("nan")
    rmse: float = float("nan")
    error: str | None = None  # why the model could not be fitted or scored
    squared_errors: np.ndarray | None = None
    finds_dropout: bool = False  # the calibration fit identifies dropout

    @property
    def fitted(self) -> bool:
        return self.error is None

    @property
    def total_error(self) -> float:
        """Relative error of the predicted holdout total."""
        return self.predicted / self.actual - 1 if self.actual > 0 else float("nan")

    @property
    def tier(self) -> int:
        return tier(self.model, self.finds_dropout)


def score_on_holdout(
    name: str,
    frequency,
    recency,
    T,
    holdout_transactions,
    holdout_duration: float,
    *,
    days_per_period: float = 1.0,
    penalizer: float = 0.0,
) -> tuple[HoldoutScore, RepeatBuyingModel | None]:
    """Fit model ``name`` on the calibration RFM and score its predictions of each customer's
    holdout transactions; (score, fitted model or None)."""
    model = repeat_buying_model(name, penalizer)
    actual = np.asarray(holdout_transactions, dtype=float)
    score = HoldoutScore(name, type(model).label, len(actual), float(actual.sum()))
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    # customers alike to the day share one row (as in the valuation)
    (ux, ut, uT), weights, rows = compress(
        x, np.round(t_x * days_per_period), np.round(age * days_per_period)
    )
    ut, uT = ut / days_per_period, uT / days_per_period
    try:
        model.fit(ux, ut, uT, weights=weights, distinct=True)
        predicted = model.predict_purchases(holdout_duration, ux, ut, uT)[rows]
    except (ValueError, ConvergenceError) as exc:
        score.error = plain_reason(exc, model)
        return score, None
    squared = (predicted - actual) ** 2
    score.predicted = float(predicted.sum())
    score.rmse = float(np.sqrt(squared.mean()))
    score.squared_errors = squared
    score.finds_dropout = dropout_evidence(model).identified
    return score, model


def plain_reason(exc: BaseException, model: object) -> str:
    """A model's error message without the model's name in front (the caller names it)."""
    return str(exc).removeprefix(f"{type(model).__name__}: ")


def short_reason(reason: str) -> str:
    """The finding of an error message without its advice (after the first semicolon)."""
    return reason.split("; ", 1)[0]


def _gist(reason: str) -> str:
    """The first words of an error message, before any detail (after the first colon).

    >>> _gist("the data show no dropout: the likelihood keeps rising ...; observe longer")
    'the data show no dropout'
    """
    return short_reason(reason).split(": ", 1)[0]


def _as_good(best: HoldoutScore, other: HoldoutScore) -> bool:
    """``other``'s squared errors are not significantly larger than ``best``'s (paired)."""
    if other is best:
        return True
    difference = other.squared_errors - best.squared_errors
    if len(difference) < 2:
        return True
    se = float(difference.std(ddof=1) / np.sqrt(len(difference)))
    return bool(difference.mean() <= Z95 * se)


def listed(labels: Sequence[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


# --- the order of preference ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """One model's fit for the choice: its tier (None: not fitted) and why it failed."""

    name: str
    label: str
    tier: int | None
    error: str | None = None


def _tier_story(outcomes: Sequence[_Outcome], first: int, where: str) -> str:
    """Why the chosen model comes from tier ``first``, in words ("" when nothing needs saying)."""

    def failure(outcome: _Outcome) -> str:
        return _gist(outcome.error) if outcome.error else "could not be fitted"

    if first == 0:
        others = [o for o in outcomes if o.tier is not None and o.tier != 0]
        if not others:
            return ""
        if all(o.name == NO_DROPOUT_MODEL for o in others):
            return f"dropout is identified {where}, so the NBD (nobody leaves) is set aside"
        finding = [o.label for o in outcomes if o.tier == 0]
        verb = "finds" if len(finding) == 1 else "find"
        aside = [
            "the NBD (nobody leaves)" if o.tier == 1 else f"{o.label} (dropout not identified)"
            for o in others
        ]
        verb_aside = "is" if len(aside) == 1 else "are"
        return f"{listed(finding)} {verb} dropout {where}, so {listed(aside)} {verb_aside} set aside"
    details = "; ".join(
        f"{o.label}: {'dropout not identified' if o.tier is not None else failure(o)}"
        for o in outcomes
        if o.name in DROPOUT_MODELS
    )
    if first == 1:
        return (
            f"no model with dropout finds any {where} ({details}), so the NBD, where nobody leaves, is used"
        )
    nbd = next((o for o in outcomes if o.name == NO_DROPOUT_MODEL), None)
    if nbd is None:  # not among the models compared
        return f"no model finds dropout {where}"
    return f"no model finds dropout {where} and the NBD could not be fitted ({failure(nbd)})"


def _holdout_pick(scores: Sequence[HoldoutScore]):
    """(chosen, the tied models of its tier, every scored model) by the rule of the module."""
    fitted = [s for s in scores if s.fitted and np.isfinite(s.rmse)]
    if not fitted:
        return None, [], []
    first = min(s.tier for s in fitted)
    pool = [s for s in fitted if s.tier == first]
    best = min(pool, key=lambda s: s.rmse)
    tied = [s for s in pool if _as_good(best, s)]
    chosen = min(tied, key=lambda s: (abs(s.total_error), REPEAT_BUYING_MODELS.index(s.model)))
    return chosen, tied, fitted


def rank_by_holdout(scores: Sequence[HoldoutScore]) -> list[str]:
    """The scored models in order of preference: the choice of :func:`choose_by_holdout`, then
    the others by tier and per-customer error (the order in which to try them on all data)."""
    chosen, _, fitted = _holdout_pick(scores)
    if chosen is None:
        return []
    rest = sorted(
        (s for s in fitted if s is not chosen),
        key=lambda s: (s.tier, s.rmse, REPEAT_BUYING_MODELS.index(s.model)),
    )
    return [chosen.model, *(s.model for s in rest)]


def choose_by_holdout(
    scores: Sequence[HoldoutScore],
    calibration_end: dt.date,
    holdout_days: int | None = None,
    population: int | None = None,
) -> tuple[str, str] | None:
    """(chosen model name, the reason in words), or None when no model could be scored.
    ``population`` is the number of calibration customers when the scores are of a sample."""
    chosen, tied, fitted = _holdout_pick(scores)
    if chosen is None:
        return None
    length = f", {holdout_days}-day holdout" if holdout_days else ""
    customers = f"{chosen.customers:,}" + (f" of {population:,}" if population else "")
    check = f"a holdout check (calibration to {calibration_end}{length}, {customers} customers)"
    if len(tied) == 1:
        why = "the lowest error of per-customer holdout transactions"
    else:
        others = ", ".join(f"{s.label} {s.predicted:,.0f}" for s in tied if s is not chosen)
        why = (
            f"{listed([s.label for s in tied])} predict each customer's holdout transactions equally "
            f"well (the differences are within their 95% intervals), and {chosen.label} is the closest "
            f"on the holdout total ({others})"
        )
    outcomes = [_Outcome(s.model, s.label, s.tier if s in fitted else None, s.error) for s in scores]
    story = _tier_story(outcomes, chosen.tier, "on the calibration period")
    errors = ", ".join(f"{s.label} {s.rmse:.3f}" for s in sorted(fitted, key=lambda s: s.rmse))
    failed = [s.label for s in scores if not s.fitted]
    if failed:
        errors += f"; {listed(failed)} could not be fitted"
    total = (
        f"its holdout total: {chosen.predicted:,.0f} predicted vs {chosen.actual:,.0f} actual "
        f"({chosen.total_error:+.0%})"
    )
    if chosen.tier == 1:  # the rule chose the NBD; the check only scored it
        reason = f"{story}; scored by {check}: per-customer RMSE: {errors}; {total}"
    else:
        why = f"{story}; {why}" if story else why
        reason = f"chosen by {check}: {why}; per-customer RMSE: {errors}; {total}"
    return chosen.model, reason


def _likelihood_pick(
    fits: Sequence[tuple[str, RepeatBuyingModel | None]],
) -> list[tuple[str, RepeatBuyingModel]]:
    """The fitted models in order of preference: by tier, then by log-likelihood."""

    def key(fit):
        name, model = fit
        return (
            tier(name, dropout_evidence(model).identified),
            -model.log_likelihood_,
            REPEAT_BUYING_MODELS.index(name),
        )

    return sorted(((name, model) for name, model in fits if model is not None), key=key)


def rank_by_likelihood(fits: Sequence[tuple[str, RepeatBuyingModel | None]]) -> list[str]:
    """The fitted models of ``fits`` in order of preference (the first is the choice of
    :func:`choose_by_likelihood`)."""
    return [name for name, _ in _likelihood_pick(fits)]


def choose_by_likelihood(
    fits: Sequence[tuple[str, RepeatBuyingModel | None]],
    why_no_holdout: str,
    sample: int | None = None,
    errors: Mapping[str, str] | None = None,
) -> tuple[str, str] | None:
    """(chosen name, reason) among models fitted on the same customers (all, or a ``sample`` of
    that many): the first tier that has a fitted model, by log-likelihood within it; ``fits``
    holds (name, fitted model or None), ``errors`` why the models that are None failed. None
    when no model could be fitted."""
    fitted = _likelihood_pick(fits)
    if not fitted:
        return None
    by_likelihood = sorted(fitted, key=lambda nm: (-nm[1].log_likelihood_, REPEAT_BUYING_MODELS.index(nm[0])))
    likelihoods = ", ".join(f"{type(m).label} {m.log_likelihood_:,.1f}" for _, m in by_likelihood)
    failed = [_label(name) for name, model in fits if model is None]
    if failed:
        likelihoods += f"; {listed(failed)} could not be fitted"
    data = f"a sample of {sample:,} customers" if sample else "all data"
    tiers = {name: tier(name, dropout_evidence(model).identified) for name, model in fitted}
    errors = errors or {}
    outcomes = [_Outcome(name, _label(name), tiers.get(name), errors.get(name)) for name, _ in fits]
    chosen = fitted[0][0]
    story = _tier_story(outcomes, tiers[chosen], f"on {data}")
    if tiers[chosen] == 1:
        reason = f"no holdout check ({why_no_holdout}); {story} (log-likelihood: {likelihoods})"
    else:
        prefix = f"{story}; " if story else ""
        reason = (
            f"no holdout check ({why_no_holdout}); {prefix}chosen by likelihood on {data} "
            f"(log-likelihood: {likelihoods})"
        )
    return chosen, reason


def _label(name: str) -> str:
    return type(repeat_buying_model(name)).label


def label_of(class_name: str) -> str:
    """The label of a model by its class name as stored (``BGNBD`` -> ``BG/NBD``).

    >>> label_of("MBGNBD")
    'MBG/NBD'
    """
    for name in REPEAT_BUYING_MODELS:
        model = repeat_buying_model(name)
        if type(model).__name__ == class_name:
            return model.label
    return class_name

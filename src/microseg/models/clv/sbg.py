"""sBG: the shifted-beta-geometric model of contract renewal (Fader & Hardie 2007, "How to project
customer retention", *Journal of Interactive Marketing* 21(1); discounted lifetimes from Fader &
Hardie 2010, "Customer-base valuation in a contractual setting: the perils of ignoring
heterogeneity", *Marketing Science* 29(1)).

Every customer signs up at the start of period 1. At the end of each period an active customer
cancels with probability θ, fixed for the customer and Beta(α, β) across customers; the lifetime
(the number of periods the customer is active) is then geometric from 1. Heterogeneity makes the
aggregate retention rate rise with tenure even though no customer's does.

The per-customer data: ``recency`` = the last period the customer was active (1 ≤ recency ≤ T)
and ``T`` = the period in which observation ends. A customer with recency < T cancelled at the
end of period ``recency`` (lifetime = recency); recency = T means still active in the last
observed period (lifetime ≥ T, censored). So the number still active after t renewals is the
number with recency > t.

>>> model = ShiftedBetaGeometric().fit_survival([1000, 631, 468, 382, 326, 289, 262, 241])
>>> model.params_.round(3).to_dict()
{'alpha': 0.704, 'beta': 1.182}
>>> model.retention_rate([1, 2, 7]).round(3).tolist()
[0.627, 0.756, 0.911]
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, hyp2f1

from microseg.errors import InvalidInputError
from microseg.models.clv.base import (
    BTYDModel,
    as_array,
    positions,
)


def check_lifetimes(recency, T) -> tuple[np.ndarray, np.ndarray]:
    """Validate (last period active, period observation ends) per customer and return them as
    float arrays; a scalar ``T`` applies to every customer."""
    r, T = as_array(recency, "recency"), as_array(T, "T")
    if len(T) == 1 and len(r) > 1:
        T = np.full(len(r), T[0])
    if len(r) != len(T):
        raise InvalidInputError(f"recency and T must have the same length, got {len(r)}, {len(T)}")
    if len(r) == 0:
        raise InvalidInputError("no customers: recency and T are empty")
    for name, values in (("recency", r), ("T", T)):
        bad = (values < 1) | (values != np.round(values))
        if np.any(bad):
            raise InvalidInputError(
                f"{name} must be whole numbers >= 1 (periods count from 1): {positions(bad)}"
            )
    if np.any(r > T):
        raise InvalidInputError(
            "recency (the last period a customer was active) must be <= T (the last period "
            f"observed): {positions(r > T)}"
        )
    return r, T


def _periods(t, name: str, low: int) -> np.ndarray:
    values = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < low) or np.any(values != np.round(values)):
        raise InvalidInputError(f"{name} must be whole numbers >= {low}, got {t!r}")
    return values


def _discount_factor(discount_rate) -> float:
    if isinstance(discount_rate, bool) or not np.isscalar(discount_rate) or not discount_rate >= 0:
        raise InvalidInputError(f"discount_rate must be a number >= 0 (per period), got {discount_rate!r}")
    return 1.0 / (1.0 + float(discount_rate))


class ShiftedBetaGeometric(BTYDModel):
    """sBG model. ``fit(recency, T, weights=None)`` or ``fit_survival(alive)``; parameters alpha,
    beta of the Beta distribution of the per-period churn probability."""

    param_names = ("alpha", "beta")

    def fit(self, recency, T, weights=None) -> ShiftedBetaGeometric:
        """Maximum likelihood on (last period active, last period observed) per customer.

        recency < T: the customer cancelled at the end of period ``recency``; recency = T: still
        active. Identical customers are merged; ``weights`` counts customers per row.
        """
        return self._fit_likelihood((recency, T), weights)

    def _check_inputs(self, recency, T) -> tuple[np.ndarray, np.ndarray]:
        return check_lifetimes(recency, T)

    def _check_learnable(self, r, T, w) -> None:
        churned = (r < T) & (w > 0)
        if not np.any(churned):
            raise InvalidInputError(
                "no customer churned (recency equals T for every customer): the churn rate cannot "
                "be learned; the sBG needs some cancellations"
            )
        if not np.any((r > 1) & (w > 0)):
            raise InvalidInputError(
                "no customer renewed (recency is 1 for every customer): retention cannot be "
                "learned; the sBG needs some customers active beyond their first period"
            )

    def _starts(self, r, T, w) -> list[np.ndarray]:
        return [np.zeros(2), np.log([0.5, 2.0]), np.log([2.0, 0.5])]

    def fit_survival(self, alive) -> ShiftedBetaGeometric:
        """Fit on a cohort's survivor counts: ``alive[0]`` customers at the start, ``alive[t]``
        still active after t renewals (t = 1 .. k). Counts may be weights (non-integer)."""
        n = as_array(alive, "alive")
        if len(n) < 2:
            raise InvalidInputError("alive needs the cohort size and at least one later count")
        if n[0] <= 0 or np.any(n < 0) or np.any(np.diff(n) > 0):
            raise InvalidInputError(
                f"alive must start > 0 and never increase (customers only leave), got {n.tolist()}"
            )
        k = len(n) - 1
        recency = np.arange(1, k + 2, dtype=float)  # 1..k: cancelled then; k + 1: still active
        weights = np.append(-np.diff(n), n[-1])
        return self.fit(recency, np.full(k + 1, k + 1.0), weights=weights)

    @staticmethod
    def _log_likelihood_terms(params, r, T):
        alpha, beta = params
        churned = (r < T).astype(float)
        # cancelled at the end of period r: B(α + 1, β + r − 1)/B(α, β); active at T: B(α, β + T − 1)/B(α, β)
        return betaln(alpha + churned, beta + r - 1) - betaln(alpha, beta), churned

    @classmethod
    def _neg_log_likelihood(cls, log_params: np.ndarray, data) -> tuple[float, np.ndarray]:
        alpha, beta = np.exp(log_params)
        r, T, w = data
        ll, churned = cls._log_likelihood_terms((alpha, beta), r, T)
        a, b = alpha + churned, beta + r - 1
        psi_ab, psi_0 = digamma(a + b), digamma(alpha + beta)
        d_alpha = digamma(a) - psi_ab - digamma(alpha) + psi_0
        d_beta = digamma(b) - psi_ab - digamma(beta) + psi_0
        return -float(ll @ w), -np.array([d_alpha @ w * alpha, d_beta @ w * beta])

    # -- predictions ------------------------------------------------------------------------
    def survival(self, t) -> np.ndarray:
        """S(t) = P(still active after t renewals) = B(α, β + t)/B(α, β), t = 0, 1, 2, …"""
        t = _periods(t, "t", 0)
        alpha, beta = self._params()
        return np.exp(betaln(alpha, beta + t) - betaln(alpha, beta))

    def probability_churn_at(self, t) -> np.ndarray:
        """P(lifetime = t) = P(cancel at the end of period t) = B(α + 1, β + t − 1)/B(α, β), t ≥ 1."""
        t = _periods(t, "t", 1)
        alpha, beta = self._params()
        return np.exp(betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta))

    def retention_rate(self, t) -> np.ndarray:
        """r_t = S(t)/S(t − 1) = (β + t − 1)/(α + β + t − 1): the share of customers active in
        period t who renew for period t + 1, t ≥ 1. It rises with t (the sorting effect)."""
        t = _periods(t, "t", 1)
        alpha, beta = self._params()
        return (beta + t - 1) / (alpha + beta + t - 1)

    def expected_lifetime(self) -> float:
        """E[lifetime] in periods = (α + β − 1)/(α − 1); infinite when α ≤ 1 (a heavy tail of
        near-loyal customers), as for both published cohorts, which is why discounted lifetimes
        are the useful summary."""
        alpha, beta = self._params()
        return (alpha + beta - 1) / (alpha - 1) if alpha > 1 else float("inf")

    def discounted_expected_lifetime(self, discount_rate: float) -> float:
        """DEL: expected discounted number of periods a new customer pays for, with the payment
        for period t + 1 discounted by (1 + d)^-t (the first is undiscounted):
        Σ_{t≥0} S(t)/(1 + d)^t = ₂F₁(1, β; α + β; 1/(1 + d)). With d = 0 it is the expected
        lifetime (possibly infinite)."""
        z = _discount_factor(discount_rate)
        if z == 1.0:
            return self.expected_lifetime()
        alpha, beta = self._params()
        return float(hyp2f1(1.0, beta, alpha + beta, z))

    def discounted_expected_residual_lifetime(self, periods_alive, discount_rate: float) -> np.ndarray:
        """DERL: for a customer active in period n = ``periods_alive`` (n − 1 renewals so far),
        standing at the end of period n just before the n-th renewal decision, the expected
        discounted number of further periods paid for, the next one undiscounted:
        (β + n − 1)/(α + β + n − 1) · ₂F₁(1, β + n; α + β + n; 1/(1 + d)) (Fader & Hardie 2010).
        Multiply by the payment per period for the residual value. With d = 0 it is the expected
        number of further periods (infinite when α ≤ 1)."""
        n = _periods(periods_alive, "periods_alive", 1)
        z = _discount_factor(discount_rate)
        alpha, beta = self._params()
        if z == 1.0:
            # E[(1 − θ)/θ] under the posterior Beta(α, β + n − 1)
            value = (beta + n - 1) / (alpha - 1) if alpha > 1 else np.inf
            return np.broadcast_to(np.asarray(value, dtype=float), n.shape).copy()
        return (beta + n - 1) / (alpha + beta + n - 1) * hyp2f1(1.0, beta + n, alpha + beta + n, z)

    def log_likelihood_per_customer(self, recency, T) -> np.ndarray:
        """Each customer's log-likelihood under the fitted parameters."""
        r, T = check_lifetimes(recency, T)
        return self._log_likelihood_terms(self._params(), r, T)[0]

"""NBD: the negative-binomial model of repeat buying, where nobody leaves (Ehrenberg 1959, "The
pattern of consumer purchases", *Applied Statistics* 8(1)).

Every customer buys as a Poisson process with rate λ for as long as they are observed, and never
stops; λ ~ Gamma(r, α) across customers. Time is in the unit of the RFM summary (days or weeks).

**Likelihood.** Given λ, x repeat purchases at times t_1 < ... < t_x in (0, T] have the density
λ^x e^(-λT): the times add nothing beyond their count, so the recency t_x does not enter. Over
the gamma distribution of λ,

    L(r, α | x, T) = ∫_0^∞ λ^x e^(-λT) · α^r λ^(r-1) e^(-αλ) / Γ(r) dλ = Γ(r+x) / Γ(r) · α^r / (α+T)^(r+x)

**Predictions.** After (x, T) a customer's rate is Gamma(r+x, α+T), so the expected purchases in
(T, T+t] are (r+x)·t/(α+T), and a new customer's in (0, t] are r·t/α. P(alive) is 1 for
everyone: the model has no dropout to estimate.

It is the limit of every model with dropout when dropout goes to 0 (BG/NBD and MBG/NBD as a → 0,
Pareto/NBD as s/β → 0), the model those fail towards when the data show nobody leaving. Its
log-likelihood depends on the data only through sums by distinct x and by distinct T, so a fit
costs a few hundred special-function evaluations whatever the number of customers.

>>> x = [2, 1, 0, 0, 5, 3, 1, 0, 4, 2, 0, 1, 6, 2]
>>> t_x = [30.4, 1.7, 0, 0, 35.1, 20.0, 5.0, 0, 33.0, 12.5, 0, 25.0, 37.0, 8.0]
>>> T = [38.9, 38.9, 38.9, 30.0, 38.9, 36.0, 20.0, 10.0, 38.9, 30.0, 25.0, 38.9, 38.9, 15.0]
>>> model = NBD().fit(x, t_x, T)
>>> model.params_.round(3).to_dict()
{'r': 3.444, 'alpha': 56.663}
>>> model.probability_alive(2, 30.4, 38.9).tolist()
[1.0]
>>> round(float(model.predict_purchases(10, 2, 30.4, 38.9)[0]), 3)  # (r + 2)·10 / (α + 38.9)
0.57
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from microseg.errors import InvalidInputError
from microseg.models.clv.base import RepeatBuyingModel, as_array, check_rfm


@dataclass(frozen=True)
class _Sums:
    """The data as the likelihood reads it: weights by distinct x, and by distinct T the weight
    and the weighted purchases."""

    x_values: np.ndarray
    weight_by_x: np.ndarray
    T_values: np.ndarray
    weight_by_T: np.ndarray
    purchases_by_T: np.ndarray  # Σ w·x over the customers with that T
    n: float  # Σ w

    @classmethod
    def build(cls, x, T, w) -> _Sums:
        x_values, x_index = np.unique(x, return_inverse=True)
        T_values, T_index = np.unique(T, return_inverse=True)
        return cls(
            x_values,
            np.bincount(x_index, weights=w, minlength=len(x_values)),
            T_values,
            np.bincount(T_index, weights=w, minlength=len(T_values)),
            np.bincount(T_index, weights=w * x, minlength=len(T_values)),
            float(w.sum()),
        )


def _check_horizon(t) -> np.ndarray:
    horizon = as_array(t, "t") if np.ndim(t) else np.asarray(as_array(t, "t")[0])
    if np.any(horizon < 0):
        raise InvalidInputError("t (the prediction horizon) must be >= 0")
    return horizon


class NBD(RepeatBuyingModel):
    """NBD model (no dropout). ``fit(frequency, recency, T, weights=None)``; parameters r, alpha.

    ``recency`` is accepted (and checked) for the same inputs as the models with dropout, but the
    NBD does not use it.
    """

    param_names = ("r", "alpha")
    label = "NBD"
    has_dropout = False

    def _prepare(self, x, t_x, T, w) -> _Sums:
        sums = _Sums.build(x, T, w)
        # customers who differ only in recency are the same customer to this model
        distinct = max(len(sums.x_values), len(sums.T_values))
        if distinct < 3 * len(self.param_names):
            distinct = len(np.unique(np.column_stack([x, T]), axis=0))
        self._check_identifiable(distinct)
        return sums

    def _starts(self, x, t_x, T, w) -> list[np.ndarray]:
        scale = float(np.average(T, weights=w))
        return [np.log([1.0, scale / 4]), np.log([0.1, scale]), np.zeros(2)]

    @staticmethod
    def _derivatives(log_params: np.ndarray, d: _Sums, hessian: bool):
        """Log-likelihood, its gradient in (r, α) and, with ``hessian``, the Hessian in (r, α)."""
        r, alpha = np.exp(log_params)
        xu, W = d.x_values, d.weight_by_x
        per_T = r * d.weight_by_T + d.purchases_by_T  # Σ w·(r + x) by T
        log_T = np.log(alpha + d.T_values)
        inv_T = 1.0 / (alpha + d.T_values)
        ll = (gammaln(r + xu) - gammaln(r)) @ W + d.n * r * np.log(alpha) - per_T @ log_T
        grad = np.array(
            [
                (digamma(r + xu) - digamma(r)) @ W + d.n * np.log(alpha) - d.weight_by_T @ log_T,
                d.n * r / alpha - per_T @ inv_T,
            ]
        )
        if not hessian:
            return ll, grad, None
        h_rr = (polygamma(1, r + xu) - polygamma(1, r)) @ W
        h_ra = d.n / alpha - d.weight_by_T @ inv_T
        h_aa = -d.n * r / alpha**2 + per_T @ inv_T**2
        return ll, grad, np.array([[h_rr, h_ra], [h_ra, h_aa]])

    @classmethod
    def _neg_log_likelihood(cls, log_params: np.ndarray, data: _Sums) -> tuple[float, np.ndarray]:
        """Negative log-likelihood and its gradient in log-parameters."""
        ll, grad, _ = cls._derivatives(log_params, data, hessian=False)
        theta = np.exp(log_params)
        return -float(ll), -(theta * grad)

    @classmethod
    def _neg_log_likelihood_hessian(
        cls, log_params: np.ndarray, data: _Sums
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Negative log-likelihood with its gradient and Hessian in log-parameters (for the
        standard errors): d²/dφ_i dφ_j = θ_i θ_j H_ij + δ_ij θ_i g_i with θ = e^φ."""
        ll, grad, hess = cls._derivatives(log_params, data, hessian=True)
        theta = np.exp(log_params)
        h_log = np.outer(theta, theta) * hess + np.diag(theta * grad)
        return -float(ll), -(theta * grad), -h_log

    # -- predictions ------------------------------------------------------------------------
    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still a customer at T | x, t_x, T): 1 for everyone, since nobody leaves."""
        self._check_fitted()
        x, _, _ = check_rfm(frequency, recency, T)
        return np.ones(len(x))

    def predict_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in (T, T + t] for each customer: (r + x)·t / (α + T) (``t`` a
        number or one per customer)."""
        r, alpha = self._params()
        x, _, T = check_rfm(frequency, recency, T)
        expected = (r + x) * _check_horizon(t) / (alpha + T)
        return self._finite(np.broadcast_to(expected, x.shape).copy(), "the expected number of purchases")

    def predict_purchases_many(self, horizons, frequency, recency, T) -> np.ndarray:
        """Expected purchases for several horizons at once: shape (horizons, customers)."""
        r, alpha = self._params()
        x, _, T = check_rfm(frequency, recency, T)
        rate = (r + x) / (alpha + T)
        return self._finite(
            np.outer(as_array(horizons, "horizons"), rate), "the expected number of purchases"
        )

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected purchases by a new customer in (0, t]: r·t / α."""
        r, alpha = self._params()
        return self._finite(r * _check_horizon(t) / alpha, "the expected number of purchases")

    def probability_of_purchases(self, n, t) -> np.ndarray:
        """P(exactly n purchases in (0, t]) for a new customer: the negative binomial
        Γ(r+n) / (Γ(r) n!) · (α/(α+t))^r · (t/(α+t))^n."""
        r, alpha = self._params()
        n = as_array(n, "n")
        if np.any(n < 0) or np.any(n != np.round(n)):
            raise InvalidInputError("n must be whole numbers >= 0")
        t = _check_horizon(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            buying = np.where(n > 0, n * np.log(t / (alpha + t)), 0.0)  # 0 purchases: no such term
            log_p = gammaln(r + n) - gammaln(r) - gammaln(n + 1) + r * np.log(alpha / (alpha + t)) + buying
        return np.exp(log_p)

    def log_likelihood_per_customer(self, frequency, recency, T) -> np.ndarray:
        """Each customer's log-likelihood under the fitted parameters."""
        r, alpha = self._params()
        x, _, T = check_rfm(frequency, recency, T)
        return gammaln(r + x) - gammaln(r) + r * np.log(alpha) - (r + x) * np.log(alpha + T)

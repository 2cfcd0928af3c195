"""BG/NBD: the beta-geometric / negative-binomial model of repeat buying (Fader, Hardie & Lee 2005,
"Counting your customers the easy way", *Marketing Science* 24(2)).

While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after every purchase
they drop out with probability p ~ Beta(a, b). Time is in the unit of the RFM summary (days or
weeks).

>>> import numpy as np
>>> model = BGNBD().fit([2, 1, 0, 0], [30.43, 1.71, 0, 0], [38.86] * 4)
>>> sorted(model.params_.index)
['a', 'alpha', 'b', 'r']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from microseg.models.clv.base import BTYDModel, check_rfm, check_weights, compress, maximize_likelihood


@dataclass(frozen=True)
class _Data:
    """Compressed customers, with each column's distinct values and every row's index into them."""

    x: np.ndarray
    w: np.ndarray
    x_values: np.ndarray
    x_index: np.ndarray
    weight_by_x: np.ndarray
    t_values: np.ndarray
    t_index: np.ndarray
    T_values: np.ndarray
    T_index: np.ndarray

    @classmethod
    def build(cls, x, t_x, T, w) -> _Data:
        x_values, x_index = np.unique(x, return_inverse=True)
        t_values, t_index = np.unique(t_x, return_inverse=True)
        T_values, T_index = np.unique(T, return_inverse=True)
        weight_by_x = np.bincount(x_index, weights=w, minlength=len(x_values))
        return cls(x, w, x_values, x_index, weight_by_x, t_values, t_index, T_values, T_index)


class BGNBD(BTYDModel):
    """BG/NBD model. ``fit(frequency, recency, T, weights=None)``; parameters r, alpha, a, b."""

    param_names = ("r", "alpha", "a", "b")

    def fit(self, frequency, recency, T, weights=None) -> BGNBD:
        """Maximum likelihood on (repeat purchases, age at last purchase, age) per customer.

        Identical customers are merged before fitting; ``weights`` counts customers per row.
        """
        self._validate_params()
        x, t_x, T = check_rfm(frequency, recency, T)
        w = check_weights(weights, len(x))
        if not np.any(x > 0):
            raise ValueError(
                "every customer has frequency 0 (no repeat purchases): the buying rate cannot be "
                "learned; BG/NBD needs some repeat buyers"
            )
        (x, t_x, T), w, _ = compress(x, t_x, T, weights=w)
        self._check_identifiable(len(x))
        data = _Data.build(x, t_x, T, w)

        def objective(log_params):
            value, grad = self._neg_log_likelihood(log_params, data)
            pen, pen_grad = self._penalty(log_params)
            return value + pen, grad + pen_grad

        scale = float(np.average(T, weights=w))
        starts = [np.log([1.0, scale / 10, 1.0, 1.0]), np.log([0.1, scale, 0.5, 2.0]), np.zeros(4)]
        result = maximize_likelihood(objective, starts, n=w.sum(), max_iter=self.max_iter)
        self._store_fit(result, lambda log_params: self._neg_log_likelihood(log_params, data), w.sum())
        return self

    @staticmethod
    def _log_likelihood_terms(params, x, t_x, T):
        """Per-customer log-likelihood and the weights of its two branches (still alive at T,
        or dropped out after the last purchase)."""
        r, alpha, a, b = params
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = betaln(a, b + x) - betaln(a, b)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
        mix = np.logaddexp(a3, a4)
        return a1 + a2 + mix, np.exp(a3 - mix), np.exp(a4 - mix)

    @staticmethod
    def _neg_log_likelihood(log_params: np.ndarray, data: _Data) -> tuple[float, np.ndarray]:
        """Negative log-likelihood and its gradient in log-parameters.

        Every transcendental function of x, t_x or T alone is evaluated on that column's distinct
        values (a few hundred) and gathered; per row only the two-branch mixture is computed.
        """
        r, alpha, a, b = np.exp(log_params)
        d = data
        xu, W = d.x_values, d.weight_by_x
        log_aT = np.log(alpha + d.T_values)[d.T_index]
        log_at = np.log(alpha + d.t_values)[d.t_index]
        x = d.x
        a3 = -(r + x) * log_aT
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout_u = np.where(xu > 0, np.log(a) - np.log(b + xu - 1), -np.inf)
        a4 = dropout_u[d.x_index] - (r + x) * log_at
        mix = np.logaddexp(a3, a4)
        w3 = np.exp(a3 - mix) * d.w
        w4 = d.w - w3  # the branch weights sum to one
        # terms of x alone, summed with the weight of each distinct x
        a12 = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
        ll = float(a12 @ W + mix @ d.w)
        dig_rx = digamma(r + xu) - digamma(r)
        d_r = (dig_rx + np.log(alpha)) @ W - w3 @ log_aT - w4 @ log_at
        rx = r + x
        d_alpha = (
            r / alpha * W.sum()
            - (w3 * rx) @ (1 / (alpha + d.T_values))[d.T_index]
            - (w4 * rx) @ (1 / (alpha + d.t_values))[d.t_index]
        )
        w4_by_x = np.bincount(d.x_index, weights=w4, minlength=len(xu))
        d_a = (digamma(a + b) - digamma(a + b + xu)) @ W + w4.sum() / a
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_bx = np.where(xu > 0, 1 / (b + xu - 1), 0.0)
        d_b = (digamma(a + b) + digamma(b + xu) - digamma(b) - digamma(a + b + xu)) @ W - w4_by_x @ inv_bx
        grads = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
        return -ll, -grads

    # -- predictions ------------------------------------------------------------------------
    def _odds_dead(self, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = self._params()
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        return np.where(x > 0, odds, 0.0)

    def probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still a customer at T | x, t_x, T)."""
        x, t_x, T = check_rfm(frequency, recency, T)
        return 1.0 / (1.0 + self._odds_dead(x, t_x, T))

    def predict_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in (T, T + t] for each customer."""
        x, t_x, T = check_rfm(frequency, recency, T)
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + T + t)
        bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        with np.errstate(all="ignore"):
            expected = (a + b + x - 1) / (a - 1) * bracket / (1.0 + self._odds_dead(x, t_x, T))
        return self._finite(expected, "the expected number of purchases")

    def expected_purchases_new(self, t) -> np.ndarray:
        """Expected purchases by a new customer in (0, t]."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=float)
        with np.errstate(all="ignore"):
            expected = (
                (a + b - 1)
                / (a - 1)
                * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
            )
        return self._finite(expected, "the expected number of purchases")

    def log_likelihood_per_customer(self, frequency, recency, T) -> np.ndarray:
        """Each customer's log-likelihood under the fitted parameters."""
        x, t_x, T = check_rfm(frequency, recency, T)
        return self._log_likelihood_terms(self._params(), x, t_x, T)[0]

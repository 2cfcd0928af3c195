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

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1

from microseg.models.clv.base import BTYDModel, check_rfm, check_weights, compress, maximize_likelihood


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
        data = (x, t_x, T, w)

        def objective(log_params):
            value, grad = self._neg_log_likelihood(log_params, data)
            pen, pen_grad = self._penalty(log_params)
            return value + pen, grad + pen_grad

        scale = float(np.average(T, weights=w))
        starts = [np.log([1.0, scale / 10, 1.0, 1.0]), np.log([0.1, scale, 0.5, 2.0]), np.zeros(4)]
        result = maximize_likelihood(objective, starts, max_iter=self.max_iter)
        self._store_fit(result, lambda p: self._neg_log_likelihood(np.log(p), data)[0], w.sum())
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

    @classmethod
    def _neg_log_likelihood(cls, log_params: np.ndarray, data) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params = np.exp(log_params)
        x, t_x, T, w = data
        ll, w3, w4 = cls._log_likelihood_terms(params, x, t_x, T)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + t_x)
        d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + t_x))
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout = np.where(x > 0, w4 / (b + x - 1), 0.0)
        d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - dropout
        grads = np.array([d_r @ w * r, d_alpha @ w * alpha, d_a @ w * a, d_b @ w * b])
        return -float(ll @ w), -grads

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

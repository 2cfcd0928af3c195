"""Gamma-Gamma: the spend model that goes with the BTYD transaction models (Fader, Hardie & Lee
2005, "RFM and CLV: using iso-value curves for customer base analysis", *Journal of Marketing
Research* 42(4); Fader & Hardie, "The Gamma-Gamma model of monetary value", 2013 note).

A customer's transaction values are Gamma(p, ν) around their own mean spend p/ν; ν varies across
customers as Gamma(q, v). The paper and the note call the last parameter γ; here it is ``v``
(γ already names a BG/BB parameter). Only the mean spend per repeat transaction, m̄ₓ, and the
number of repeat transactions, x, enter the likelihood, so the model is fitted on repeat buyers
(x > 0) and assumes spend is independent of the transaction process.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.integers(1, 10, size=20_000)
>>> nu = rng.gamma(4.0, 1 / 15.0, size=20_000)  # q = 4, v = 15
>>> spend = rng.gamma(6.0 * x, 1 / (nu * x))  # mean of x Gamma(p = 6, nu) values
>>> model = GammaGamma().fit(x, spend)
>>> model.params_.round(1).to_dict()
{'p': 6.5, 'q': 3.9, 'v': 13.5}
>>> model.expected_spend([0, 2], [0.0, 35.5]).round(2).tolist()  # population mean; a repeat buyer
[29.99, 34.49]
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from microseg.models.clv.base import (
    BTYDModel,
    as_array,
    check_weights,
    compress,
    maximize_likelihood,
    positions,
)


def check_spend(frequency, monetary_value, *, fitting: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate (repeat transactions, mean spend per repeat transaction) and return them as arrays.

    When ``fitting``, every customer must be a repeat buyer with positive spend; for prediction,
    customers with frequency 0 are allowed (their spend is ignored and may be 0).
    """
    x, m = as_array(frequency, "frequency"), as_array(monetary_value, "monetary_value")
    if len(x) != len(m):
        raise ValueError(f"frequency and monetary_value must have the same length, got {len(x)}, {len(m)}")
    if len(x) == 0:
        raise ValueError("no customers: frequency and monetary_value are empty")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError(f"frequency must be whole numbers >= 0: {positions((x < 0) | (x != np.round(x)))}")
    if fitting and np.any(x == 0):
        raise ValueError(
            f"Gamma-Gamma is fitted on repeat buyers only: {positions(x == 0)} have frequency 0; "
            "pass only the customers with frequency > 0"
        )
    if np.any((x > 0) & (m <= 0)):
        raise ValueError(
            "monetary_value (mean spend per repeat transaction) must be > 0 for customers with "
            f"frequency > 0: {positions((x > 0) & (m <= 0))}"
        )
    if np.any(m < 0):
        raise ValueError(f"monetary_value must be >= 0: {positions(m < 0)}")
    return x, m


class GammaGamma(BTYDModel):
    """Gamma-Gamma spend model. ``fit(frequency, monetary_value, weights=None)``; parameters p, q, v
    (v is the paper's γ)."""

    param_names = ("p", "q", "v")

    def fit(self, frequency, monetary_value, weights=None) -> GammaGamma:
        """Maximum likelihood on (repeat transactions x > 0, mean spend per repeat transaction).

        Identical customers are merged before fitting; ``weights`` counts customers per row.
        """
        self._validate_params()
        x, m = check_spend(frequency, monetary_value, fitting=True)
        w = check_weights(weights, len(x))
        (x, m), w, _ = compress(x, m, weights=w)
        keep = w > 0
        data = (x[keep], m[keep], w[keep])

        def objective(log_params):
            value, grad = self._neg_log_likelihood(log_params, data)
            pen, pen_grad = self._penalty(log_params)
            return value + pen, grad + pen_grad

        mean = float(np.average(data[1], weights=data[2]))
        starts = [np.log([1.0, 2.0, mean]), np.log([5.0, 3.0, 2.0 * mean / 5.0]), np.log([0.5, 5.0, mean])]
        result = maximize_likelihood(objective, starts, max_iter=self.max_iter)
        self._store_fit(result, lambda p: self._neg_log_likelihood(np.log(p), data)[0], w.sum())
        return self

    @staticmethod
    def _log_likelihood_terms(params, x, m):
        """Per-customer log density of the mean spend m given x repeat transactions (the note's
        eq. 4, a scaled beta-prime density)."""
        p, q, v = params
        px = p * x
        return (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(v + x * m)
        )

    @classmethod
    def _neg_log_likelihood(cls, log_params: np.ndarray, data) -> tuple[float, np.ndarray]:
        p, q, v = params = np.exp(log_params)
        x, m, w = data
        ll = cls._log_likelihood_terms(params, x, m)
        log_vxm = np.log(v + x * m)
        psi = digamma(p * x + q)
        d_p = x * (psi - digamma(p * x) + np.log(m) + np.log(x) - log_vxm)
        d_q = psi - digamma(q) + np.log(v) - log_vxm
        d_v = q / v - (p * x + q) / (v + x * m)
        grads = np.array([d_p @ w * p, d_q @ w * q, d_v @ w * v])
        return -float(ll @ w), -grads

    # -- predictions ------------------------------------------------------------------------
    def _mean_params(self) -> tuple[float, float, float]:
        p, q, v = self._params()
        if q <= 1:
            raise ValueError(
                f"GammaGamma: expected spend needs q > 1 (the population mean spend p*v/(q-1) is "
                f"infinite otherwise); the fitted q is {q:.4g}"
            )
        return p, q, v

    def mean_spend(self) -> float:
        """The population mean spend per transaction, p·v/(q − 1) (needs q > 1)."""
        p, q, v = self._mean_params()
        return p * v / (q - 1)

    def expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[mean spend per transaction | x, m̄ₓ] = p·(v + x·m̄ₓ)/(p·x + q − 1) (needs q > 1).

        A weighted average of the population mean p·v/(q − 1) and the customer's own mean m̄ₓ,
        leaning on m̄ₓ as x grows. Customers with frequency 0 get the population mean (the same
        formula at x = 0); their monetary_value is ignored.
        """
        x, m = check_spend(frequency, monetary_value, fitting=False)
        p, q, v = self._mean_params()
        return p * (v + x * np.where(x > 0, m, 0.0)) / (p * x + q - 1)

    def log_likelihood_per_customer(self, frequency, monetary_value) -> np.ndarray:
        """Each repeat buyer's log-likelihood under the fitted parameters."""
        x, m = check_spend(frequency, monetary_value, fitting=True)
        return self._log_likelihood_terms(self._params(), x, m)

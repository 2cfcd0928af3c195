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

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from microseg.errors import InvalidInputError
from microseg.models.clv.base import (
    BTYDModel,
    as_array,
    positions,
)


def check_spend(frequency, monetary_value, *, fitting: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validate (repeat transactions, mean spend per repeat transaction) and return them as arrays.

    When ``fitting``, every customer must be a repeat buyer with positive spend; for prediction,
    customers with frequency 0 are allowed (their spend is ignored and may be 0).
    """
    x, m = as_array(frequency, "frequency"), as_array(monetary_value, "monetary_value")
    if len(x) != len(m):
        raise InvalidInputError(
            f"frequency and monetary_value must have the same length, got {len(x)}, {len(m)}"
        )
    if len(x) == 0:
        raise InvalidInputError("no customers: frequency and monetary_value are empty")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise InvalidInputError(
            f"frequency must be whole numbers >= 0: {positions((x < 0) | (x != np.round(x)))}"
        )
    if fitting and np.any(x == 0):
        raise InvalidInputError(
            f"Gamma-Gamma is fitted on repeat buyers only: {positions(x == 0)} have frequency 0; "
            "pass only the customers with frequency > 0"
        )
    if np.any((x > 0) & (m <= 0)):
        raise InvalidInputError(
            "monetary_value (mean spend per repeat transaction) must be > 0 for customers with "
            f"frequency > 0: {positions((x > 0) & (m <= 0))}"
        )
    if np.any(m < 0):
        raise InvalidInputError(f"monetary_value must be >= 0: {positions(m < 0)}")
    return x, m


@dataclass(frozen=True)
class _SpendData:
    """Compressed repeat buyers with the sums the likelihood needs that do not depend on the
    parameters, and the distinct values of x."""

    w: np.ndarray
    wx: np.ndarray  # w * x
    xm: np.ndarray  # x * m: total repeat spend
    m: np.ndarray
    x_values: np.ndarray
    weight_by_x: np.ndarray
    s_x_log_m: float
    s_x_log_x: float
    s_log_m: float

    @classmethod
    def build(cls, x, m, w) -> _SpendData:
        x_values, x_index = np.unique(x, return_inverse=True)
        log_m = np.log(m)
        return cls(
            w=w,
            wx=w * x,
            xm=x * m,
            m=m,
            x_values=x_values,
            weight_by_x=np.bincount(x_index, weights=w, minlength=len(x_values)),
            s_x_log_m=float((w * x) @ log_m),
            s_x_log_x=float((w * x) @ np.log(x)),
            s_log_m=float(w @ log_m),
        )


class GammaGamma(BTYDModel):
    """Gamma-Gamma spend model. ``fit(frequency, monetary_value, weights=None)``; parameters p, q, v
    (v is the paper's γ)."""

    param_names = ("p", "q", "v")

    def fit(self, frequency, monetary_value, weights=None) -> GammaGamma:
        """Maximum likelihood on (repeat transactions x > 0, mean spend per repeat transaction).

        Identical customers are merged before fitting; ``weights`` counts customers per row.
        """
        return self._fit_likelihood((frequency, monetary_value), weights)

    def _check_inputs(self, frequency, monetary_value) -> tuple[np.ndarray, np.ndarray]:
        return check_spend(frequency, monetary_value, fitting=True)

    def _prepare(self, x, m, w) -> _SpendData:
        return _SpendData.build(x, m, w)

    def _starts(self, x, m, w) -> list[np.ndarray]:
        mean = float(np.average(m, weights=w))
        return [np.log([1.0, 2.0, mean]), np.log([5.0, 3.0, 2.0 * mean / 5.0]), np.log([0.5, 5.0, mean])]

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

    @staticmethod
    def _neg_log_likelihood(log_params: np.ndarray, data: _SpendData) -> tuple[float, np.ndarray]:
        """Negative log-likelihood and gradient in log-parameters. Functions of x alone are
        evaluated on its distinct values; per customer only log(v + x·m̄) is computed."""
        p, q, v = np.exp(log_params)
        d = data
        xu, W = d.x_values, d.weight_by_x
        n = d.w.sum()
        log_vxm = np.log(v + d.xm)
        inv_vxm = 1.0 / (v + d.xm)
        sum_log, sum_x_log = d.w @ log_vxm, d.wx @ log_vxm
        g = gammaln(p * xu + q) - gammaln(p * xu)
        ll = g @ W + n * (q * np.log(v) - gammaln(q)) + p * (d.s_x_log_m + d.s_x_log_x) - d.s_log_m
        ll -= p * sum_x_log + q * sum_log
        psi = digamma(p * xu + q)
        d_p = (xu * (psi - digamma(p * xu))) @ W + d.s_x_log_m + d.s_x_log_x - sum_x_log
        d_q = psi @ W - n * digamma(q) + n * np.log(v) - sum_log
        d_v = n * q / v - p * (d.wx @ inv_vxm) - q * (d.w @ inv_vxm)
        return -float(ll), -np.array([d_p * p, d_q * q, d_v * v])

    # -- predictions ------------------------------------------------------------------------
    def _mean_params(self) -> tuple[float, float, float]:
        p, q, v = self._params()
        if q <= 1:
            raise InvalidInputError(
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

"""BG/NBD: the beta-geometric / negative-binomial model of repeat buying (Fader, Hardie & Lee 2005,
"Counting your customers the easy way", *Marketing Science* 24(2)).

While alive, a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after every purchase
they drop out with probability p ~ Beta(a, b). Time is in the unit of the RFM summary (days or
weeks).

>>> x = [2, 1, 0, 0, 5, 3, 1, 0, 4, 2, 0, 1, 6, 2]
>>> t_x = [30.4, 1.7, 0, 0, 35.1, 20.0, 5.0, 0, 33.0, 12.5, 0, 25.0, 37.0, 8.0]
>>> T = [38.9, 38.9, 38.9, 30.0, 38.9, 36.0, 20.0, 10.0, 38.9, 30.0, 25.0, 38.9, 38.9, 15.0]
>>> model = BGNBD(penalizer=0.01).fit(x, t_x, T)
>>> round(float(model.probability_alive(2, 30.4, 38.9)[0]), 2)
0.88
>>> sorted(model.params_.index)
['a', 'alpha', 'b', 'r']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, gammaln, hyp2f1, polygamma

from microseg.models.clv.base import (
    RepeatBuyingModel,
    check_rfm,
    unique_rows,
)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each row's index into them)."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques, dtype=float), codes


@dataclass(frozen=True)
class _Data:
    """Compressed customers, with each column's distinct values and every row's index into them,
    and the sums that do not depend on the parameters."""

    x: np.ndarray
    w: np.ndarray
    wx: np.ndarray  # w * x
    n: float  # sum of w
    x_values: np.ndarray
    x_index: np.ndarray
    weight_by_x: np.ndarray
    t_values: np.ndarray
    t_index: np.ndarray
    T_values: np.ndarray
    T_index: np.ndarray
    scratch: np.ndarray  # work space, 8 x rows: an evaluation allocates nothing per customer

    @classmethod
    def build(cls, x, t_x, T, w) -> _Data:
        x_values, x_index = _distinct(x)
        t_values, t_index = _distinct(t_x)
        T_values, T_index = _distinct(T)
        weight_by_x = np.bincount(x_index, weights=w, minlength=len(x_values))
        scratch = np.empty((8, len(x)))
        return cls(
            x,
            w,
            w * x,
            float(w.sum()),
            x_values,
            x_index,
            weight_by_x,
            t_values,
            t_index,
            T_values,
            T_index,
            scratch,
        )


class BGNBD(RepeatBuyingModel):
    """BG/NBD model. ``fit(frequency, recency, T, weights=None)``; parameters r, alpha, a, b."""

    param_names = ("r", "alpha", "a", "b")
    label = "BG/NBD"

    def _prepare(self, x, t_x, T, w) -> _Data:
        return _Data.build(x, t_x, T, w)

    def _no_dropout(self, params: np.ndarray, x, t_x, T) -> bool:
        return bool(params[2] / (params[2] + params[3]) < 1e-6)

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
        values (a few hundred) and gathered. Per customer the likelihood mixes two branches,
        alive at T (log weight -(r+x)·log(α+T)) or dropped out after the last purchase; with
        u = log-odds of dropping out, the mixture is softplus(u) - (r+x)·log(α+T) and the
        dropout branch's share is sigmoid(u), so one softplus and one exp per customer suffice.
        """
        r, alpha, a, b = np.exp(log_params)
        d = data
        xu, W = d.x_values, d.weight_by_x
        log_T, log_t, rx, diff, u, softplus, w4, tmp = d.scratch  # rows of the work space
        np.take(np.log(alpha + d.T_values), d.T_index, out=log_T)
        np.take(np.log(alpha + d.t_values), d.t_index, out=log_t)
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout = np.where(xu > 0, np.log(a) - np.log(b + xu - 1), -np.inf)
            inv_bx = np.where(xu > 0, 1 / (b + xu - 1), 0.0)
        np.add(d.x, r, out=rx)
        np.subtract(log_T, log_t, out=diff)  # >= 0
        np.take(dropout, d.x_index, out=u)
        u += np.multiply(rx, diff, out=tmp)  # log-odds of the dropout branch; -inf for one-time buyers
        np.logaddexp(0.0, u, out=softplus)
        np.subtract(u, softplus, out=w4)
        np.exp(w4, out=w4)
        w4 *= d.w  # weight of the dropout branch
        # terms of x alone, summed with the weight of each distinct x
        a12 = gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)
        w_log_T = d.w @ log_T
        ll = a12 @ W + d.w @ softplus - r * w_log_T - d.wx @ log_T
        d_r = (digamma(r + xu) - digamma(r) + np.log(alpha)) @ W - w_log_T + w4 @ diff
        inv_T, inv_t = log_T, log_t  # done with the logs: reuse their rows
        np.take(1 / (alpha + d.T_values), d.T_index, out=inv_T)
        np.take(1 / (alpha + d.t_values), d.t_index, out=inv_t)
        inv_t -= inv_T
        d_alpha = r / alpha * d.n - r * (d.w @ inv_T) - d.wx @ inv_T - np.multiply(w4, rx, out=tmp) @ inv_t
        d_a = (digamma(a + b) - digamma(a + b + xu)) @ W + w4.sum() / a
        w4_by_x = np.bincount(d.x_index, weights=w4, minlength=len(xu))
        d_b = (digamma(a + b) + digamma(b + xu) - digamma(b) - digamma(a + b + xu)) @ W - w4_by_x @ inv_bx
        return -float(ll), -np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])

    @staticmethod
    def _neg_log_likelihood_hessian(
        log_params: np.ndarray, data: _Data
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Negative log-likelihood with its gradient and Hessian in log-parameters (for the
        standard errors). With σ the dropout branch's share and s = σ(1 - σ), every second derivative is a
        weighted sum over customers of s·u_i·u_j + σ·u_ij plus terms of x alone (u is the
        log-odds of the dropout branch; see ``_neg_log_likelihood``)."""
        r, alpha, a, b = theta = np.exp(log_params)
        d = data
        xu, W = d.x_values, d.weight_by_x
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout = np.where(xu > 0, np.log(a) - np.log(b + xu - 1), -np.inf)
            inv_bx = np.where(xu > 0, 1 / (b + xu - 1), 0.0)
        log_T = np.log(alpha + d.T_values)[d.T_index]
        log_t = np.log(alpha + d.t_values)[d.t_index]
        inv_T = (1 / (alpha + d.T_values))[d.T_index]
        inv_t = (1 / (alpha + d.t_values))[d.t_index]
        rx = d.x + r
        D = log_T - log_t  # du/dr
        E = inv_T - inv_t  # du/dα = (r + x)·E
        u = dropout[d.x_index] + rx * D
        softplus = np.logaddexp(0.0, u)
        sigma = np.exp(u - softplus)
        ws = d.w * sigma * (1 - sigma)  # weight × s
        wsig = d.w * sigma
        rxE = rx * E
        # x-only terms
        ll_x = (gammaln(r + xu) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xu) - betaln(a, b)) @ W
        dig_ab, tri_ab = digamma(a + b), polygamma(1, a + b)
        g = np.array(
            [
                (digamma(r + xu) - digamma(r) + np.log(alpha)) @ W + wsig @ D - d.w @ log_T,
                r / alpha * d.n + wsig @ rxE - rx @ (d.w * inv_T),
                (dig_ab - digamma(a + b + xu)) @ W + wsig.sum() / a,
                (dig_ab + digamma(b + xu) - digamma(b) - digamma(a + b + xu)) @ W
                - np.bincount(d.x_index, weights=wsig, minlength=len(xu)) @ inv_bx,
            ]
        )
        ll = ll_x + d.w @ softplus - rx @ (d.w * log_T)
        by_x = lambda v: np.bincount(d.x_index, weights=v, minlength=len(xu))  # noqa: E731
        s_b, sig_b = by_x(ws), by_x(wsig)
        sD_b, sE_b = by_x(ws * D), by_x(ws * rxE)
        h = np.empty((4, 4))
        h[0, 0] = (polygamma(1, r + xu) - polygamma(1, r)) @ W + ws @ (D * D)
        h[0, 1] = d.n / alpha + ws @ (D * rxE) + wsig @ E - d.w @ inv_T
        h[0, 2] = sD_b.sum() / a
        h[0, 3] = -(sD_b @ inv_bx)
        F = inv_t * inv_t - inv_T * inv_T  # dE/dα
        h[1, 1] = -r / alpha**2 * d.n + ws @ (rxE * rxE) + wsig @ (rx * F) + (d.w * rx) @ (inv_T * inv_T)
        h[1, 2] = sE_b.sum() / a
        h[1, 3] = -(sE_b @ inv_bx)
        tri_abx = polygamma(1, a + b + xu)
        h[2, 2] = (tri_ab - tri_abx) @ W + (s_b.sum() - sig_b.sum()) / a**2
        h[2, 3] = (tri_ab - tri_abx) @ W - (s_b @ inv_bx) / a
        h[3, 3] = (tri_ab + polygamma(1, b + xu) - polygamma(1, b) - tri_abx) @ W + (s_b + sig_b) @ inv_bx**2
        h = np.triu(h) + np.triu(h, 1).T
        # to log-parameters: d²/dφ_i dφ_j = θ_i θ_j H_ij + δ_ij θ_i g_i
        h_log = np.outer(theta, theta) * h + np.diag(theta * g)
        return -float(ll), -(theta * g), -h_log

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

    def _bracket(self, t, x, T) -> np.ndarray:
        """1 − ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x−1; t/(α+T+t)), times (a+b+x−1)/(a−1):
        the expected purchases of a customer known to be alive."""
        r, alpha, a, b = self._params()
        with np.errstate(all="ignore"):
            z = t / (alpha + T + t)
            bracket = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
            return (a + b + x - 1) / (a - 1) * bracket

    def predict_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """Expected purchases in (T, T + t] for each customer (``t`` a number or one per customer)."""
        t = np.asarray(t, dtype=float)
        if t.ndim == 0:
            return self.predict_purchases_many([float(t)], frequency, recency, T)[0]
        x, t_x, T = check_rfm(frequency, recency, T)
        with np.errstate(all="ignore"):
            expected = self._bracket(t, x, T) / (1.0 + self._odds_dead(x, t_x, T))
        return self._finite(expected, "the expected number of purchases")

    def predict_purchases_many(self, horizons, frequency, recency, T) -> np.ndarray:
        """Expected purchases for several horizons at once: the hypergeometric term depends on
        (x, T) only, so it is computed once per distinct pair and horizon."""
        x, t_x, T = check_rfm(frequency, recency, T)
        (ux, uT), pair = unique_rows(x, T) if len(x) > 1_000 else ((x, T), np.arange(len(x)))
        alive = 1.0 / (1.0 + self._odds_dead(x, t_x, T))
        out = np.empty((len(horizons), len(x)))
        for i, t in enumerate(np.asarray(horizons, dtype=float)):
            out[i] = self._bracket(t, ux, uT)[pair] * alive
        return self._finite(out, "the expected number of purchases")

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

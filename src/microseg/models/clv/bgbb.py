"""BG/BB: the beta-geometric / beta-Bernoulli model of discrete-time repeat buying (Fader, Hardie &
Shang 2010, "Customer-base analysis in a discrete-time noncontractual setting", *Marketing
Science* 29(6)).

Time comes in transaction opportunities (a yearly donation drive, a weekly visit, an annual
event). While alive, a customer transacts at each opportunity with probability p ~ Beta(α, β);
at the start of each opportunity after the first purchase (the one at time 0, not counted) a
living customer drops out for good with probability θ ~ Beta(γ, δ). A customer is summarised by
``frequency`` x (repeat transactions in the first n opportunities), ``recency`` tₓ (the
opportunity of the last one, 0 if none) and ``n_periods`` n.

>>> frequency = [0, 1, 1, 2, 1, 2, 3, 1, 2, 3, 4]  # every (x, tₓ) possible in 4 opportunities
>>> recency = [0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4]
>>> count = [331, 112, 38, 60, 25, 44, 54, 21, 50, 92, 172]
>>> model = BGBB().fit(frequency, recency, 4, weights=count)
>>> model.params_.round(2).to_dict()
{'alpha': 1.21, 'beta': 0.75, 'gamma': 0.65, 'delta': 2.72}
>>> model.probability_alive([0, 4], [0, 4], 4).round(3).tolist()  # silent vs. buying every time
[0.178, 0.912]
>>> model.predict_purchases(3, [0, 4], [0, 4], 4).round(3).tolist()
[0.1, 2.218]
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln

from microseg.errors import InvalidInputError
from microseg.models.clv.base import (
    BTYDModel,
    as_array,
    positions,
)


def _whole(array: np.ndarray) -> np.ndarray:
    return array == np.round(array)


def check_discrete(frequency, recency, n_periods) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate discrete-time inputs (repeat transactions, opportunity of the last one, number of
    opportunities observed) and return them as float arrays; a scalar ``n_periods`` applies to
    every customer."""
    x, t_x = as_array(frequency, "frequency"), as_array(recency, "recency")
    n = as_array(n_periods, "n_periods")
    if len(n) == 1 and len(x) > 1:
        n = np.full(len(x), n[0])
    if not (len(x) == len(t_x) == len(n)):
        raise InvalidInputError(
            f"frequency, recency and n_periods must have the same length, got {len(x)}, {len(t_x)}, {len(n)}"
        )
    if len(x) == 0:
        raise InvalidInputError("no customers: frequency, recency and n_periods are empty")
    for name, values, low in (("frequency", x, 0), ("recency", t_x, 0), ("n_periods", n, 1)):
        bad = (values < low) | ~_whole(values)
        if np.any(bad):
            raise InvalidInputError(f"{name} must be whole numbers >= {low}: {positions(bad)}")
    if np.any(t_x > n):
        raise InvalidInputError(
            f"recency (the period of the last transaction) must be <= n_periods: {positions(t_x > n)}"
        )
    if np.any(x > t_x):
        raise InvalidInputError(
            "frequency must be <= recency (at most one transaction per period, the last in period "
            f"recency): {positions(x > t_x)}"
        )
    if np.any((x == 0) & (t_x != 0)):
        raise InvalidInputError(f"recency must be 0 where frequency is 0: {positions((x == 0) & (t_x != 0))}")
    return x, t_x, n


def _survival_sum(gamma: float, delta: float, start, stop) -> np.ndarray:
    """Σ_{t=start+1}^{stop} E[(1 − θ)^t] for θ ~ Beta(γ, δ): the expected number of opportunities
    in (start, stop] a customer is alive for, before conditioning on data.

    Telescoped in closed form, f(t) = Γ(δ + t + 1)/Γ(γ + δ + t) giving
    Γ(γ + δ)/Γ(δ) · (f(start) − f(stop))/(γ − 1); a real ``stop`` interpolates smoothly. At γ = 1
    the limit is δ·(ψ(δ + stop + 1) − ψ(δ + start + 1)).
    """
    start, stop = np.asarray(start, dtype=float), np.asarray(stop, dtype=float)
    scale = np.exp(gammaln(gamma + delta) - gammaln(delta))
    if abs(gamma - 1) < 1e-7:
        return delta * (digamma(delta + stop + 1) - digamma(delta + start + 1))
    log_f_start = gammaln(delta + start + 1) - gammaln(gamma + delta + start)
    log_f_stop = gammaln(delta + stop + 1) - gammaln(gamma + delta + stop)
    return scale * np.exp(log_f_start) * -np.expm1(log_f_stop - log_f_start) / (gamma - 1)


class BGBB(BTYDModel):
    """BG/BB model. ``fit(frequency, recency, n_periods, weights=None)``; parameters alpha, beta
    (transaction probability), gamma, delta (dropout probability)."""

    param_names = ("alpha", "beta", "gamma", "delta")

    def fit(self, frequency, recency, n_periods, weights=None) -> BGBB:
        """Maximum likelihood on (repeat transactions, period of the last one, periods observed).

        Identical customers are merged before fitting; ``weights`` counts customers per row (the
        usual form of discrete-time data: one row per (x, tₓ, n) with its count).
        """
        return self._fit_likelihood((frequency, recency, n_periods), weights)

    def _check_inputs(self, frequency, recency, n_periods) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return check_discrete(frequency, recency, n_periods)

    def _check_learnable(self, x, t_x, n, w) -> None:
        counted = w > 0
        if not np.any(x[counted] > 0):
            raise InvalidInputError(
                "every customer has frequency 0 (no repeat transactions): the transaction "
                "probability cannot be learned; BG/BB needs some repeat buyers"
            )
        if np.all(x[counted] == n[counted]):
            raise InvalidInputError(
                "every customer transacted at every opportunity (frequency = n_periods): nobody "
                "is seen to skip or drop out, so the model cannot be learned"
            )

    def _starts(self, x, t_x, n, w) -> list[np.ndarray]:
        return [np.zeros(4), np.log([0.5, 0.5, 0.5, 2.0]), np.log([2.0, 1.0, 1.0, 5.0])]

    @staticmethod
    def _terms(x, t_x, n):
        """The likelihood's branches, one column each: alive through all n opportunities, or
        dropped out at the start of opportunity tₓ + i + 1 for i = 0 .. n − tₓ − 1. Each branch is
        B(α + x, β + b)/B(α, β) · B(γ + g, δ + d)/B(γ, δ); returned are (b, g, d, valid)."""
        width = int(np.max(n - t_x)) + 1
        i = np.arange(width - 1)[None, :]
        x, t_x, n = x[:, None], t_x[:, None], n[:, None]
        b = np.concatenate([n - x, t_x - x + i], axis=1)
        g = np.ones_like(b)
        g[:, 0] = 0.0
        d = np.concatenate([n, t_x + i], axis=1)
        valid = np.concatenate([np.ones_like(x, dtype=bool), i < n - t_x], axis=1)
        return b, g, d, valid

    @classmethod
    def _branch_logs(cls, params, x, t_x, n):
        alpha, beta, gamma, delta = params
        b, g, d, valid = cls._terms(x, t_x, n)
        a1 = alpha + x[:, None]
        with np.errstate(invalid="ignore"):
            logs = (
                betaln(a1, beta + b)
                - betaln(alpha, beta)
                + betaln(gamma + g, delta + d)
                - betaln(gamma, delta)
            )
        return np.where(valid, logs, -np.inf), (a1, b, g, d, valid)

    @classmethod
    def _log_likelihood(cls, params, x, t_x, n) -> np.ndarray:
        logs, _ = cls._branch_logs(params, x, t_x, n)
        return np.logaddexp.reduce(logs, axis=1)

    @classmethod
    def _neg_log_likelihood(cls, log_params: np.ndarray, data) -> tuple[float, np.ndarray]:
        alpha, beta, gamma, delta = params = np.exp(log_params)
        x, t_x, n, w = data
        logs, (a1, b, g, d, valid) = cls._branch_logs(params, x, t_x, n)
        ll = np.logaddexp.reduce(logs, axis=1)
        share = np.exp(logs - ll[:, None])  # each branch's share of the likelihood; 0 where invalid
        b1, g1, d1 = beta + b, gamma + g, delta + d
        psi_ab, psi_gd = digamma(a1 + b1), digamma(g1 + d1)
        parts = (
            digamma(a1) - psi_ab - digamma(alpha) + digamma(alpha + beta),
            digamma(b1) - psi_ab - digamma(beta) + digamma(alpha + beta),
            digamma(g1) - psi_gd - digamma(gamma) + digamma(gamma + delta),
            digamma(d1) - psi_gd - digamma(delta) + digamma(gamma + delta),
        )
        grads = np.array([np.where(valid, share * part, 0.0).sum(axis=1) @ w for part in parts]) * np.asarray(
            params
        )
        return -float(ll @ w), -grads

    # -- predictions ------------------------------------------------------------------------
    def probability_alive(self, frequency, recency, n_periods) -> np.ndarray:
        """P(alive at the next opportunity, n + 1 | x, tₓ, n), as in Fader, Hardie & Shang (2010)."""
        x, t_x, n = check_discrete(frequency, recency, n_periods)
        alpha, beta, gamma, delta = params = self._params()
        log_alive = (
            betaln(alpha + x, beta + n - x)
            - betaln(alpha, beta)
            + betaln(gamma, delta + n + 1)
            - betaln(gamma, delta)
        )
        return np.exp(log_alive - self._log_likelihood(params, x, t_x, n))

    def predict_purchases(self, n_future, frequency, recency, n_periods) -> np.ndarray:
        """Expected transactions in the next ``n_future`` opportunities, (n, n + n_future], for each
        customer. A non-integer ``n_future`` interpolates the closed form smoothly."""
        x, t_x, n = check_discrete(frequency, recency, n_periods)
        n_future = self._check_horizon(n_future, "n_future")
        alpha, beta, gamma, delta = params = self._params()
        log_front = betaln(alpha + x + 1, beta + n - x) - betaln(alpha, beta)
        front = np.exp(log_front - self._log_likelihood(params, x, t_x, n))
        return front * _survival_sum(gamma, delta, n, n + n_future)

    def expected_purchases_new(self, n) -> np.ndarray:
        """Expected transactions of a new customer in the first ``n`` opportunities."""
        n = self._check_horizon(n, "n")
        alpha, beta, gamma, delta = self._params()
        return alpha / (alpha + beta) * _survival_sum(gamma, delta, 0.0, n)

    def log_likelihood_per_customer(self, frequency, recency, n_periods) -> np.ndarray:
        """Each customer's log-likelihood under the fitted parameters."""
        x, t_x, n = check_discrete(frequency, recency, n_periods)
        return self._log_likelihood(self._params(), x, t_x, n)

    @staticmethod
    def _check_horizon(value, name: str) -> np.ndarray:
        horizon = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(horizon)) or np.any(horizon < 0):
            raise InvalidInputError(
                f"{name} (a number of future periods) must be finite and >= 0, got {value!r}"
            )
        return horizon

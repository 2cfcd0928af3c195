"""What every BTYD ("buy till you die") model shares: input checks, compression of identical
customers, maximum likelihood with standard errors, and the summary table.

A model subclasses :class:`BTYDModel`, names its parameters in ``param_names`` and implements
``_neg_log_likelihood(log_params, data)`` returning the negative log-likelihood summed over
(weighted) customers and its gradient with respect to the *log* of the parameters. Fitting
optimises in log space (every parameter is positive), from several starting points when the
first does not converge, and reports standard errors from the Hessian of the log-likelihood in
the natural parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import optimize
from threadpoolctl import threadpool_limits

from microseg.errors import InvalidInputError, MicrosegError
from microseg.models.base import Estimator, Interval


class ConvergenceError(MicrosegError, RuntimeError):
    """Maximum likelihood did not converge to finite parameters."""

    http_status = 422


# --- input checks ---------------------------------------------------------------------------------


def as_array(values, name: str) -> np.ndarray:
    """A 1-D float array of finite values; the error names the input."""
    array = (
        np.asarray(values, dtype=float).reshape(-1) if not np.isscalar(values) else np.array([float(values)])
    )
    if not np.all(np.isfinite(array)):
        bad = np.flatnonzero(~np.isfinite(array))
        raise InvalidInputError(
            f"{name}: {len(bad)} value(s) are missing or infinite (first at position {bad[0]})"
        )
    return array


def positions(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:5])
    return f"{len(idx)} customer(s), first at position(s) {shown}"


def check_rfm(frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate continuous-time RFM inputs (frequency = repeat purchases, recency = age at the
    last purchase, T = age at the end of the observation) and return them as arrays."""
    x, t_x, T = as_array(frequency, "frequency"), as_array(recency, "recency"), as_array(T, "T")
    if not (len(x) == len(t_x) == len(T)):
        raise InvalidInputError(
            f"frequency, recency and T must have the same length, got {len(x)}, {len(t_x)}, {len(T)}"
        )
    if len(x) == 0:
        raise InvalidInputError("no customers: frequency, recency and T are empty")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise InvalidInputError(
            f"frequency must be whole numbers >= 0: {positions((x < 0) | (x != np.round(x)))}"
        )
    if np.any(t_x < 0):
        raise InvalidInputError(f"recency must be >= 0: {positions(t_x < 0)}")
    if np.any(T < 0):  # T = 0: first purchase on the last day; no information yet, but valid
        raise InvalidInputError(f"T must be >= 0: {positions(T < 0)}")
    if np.any(t_x > T * (1 + 1e-9)):
        raise InvalidInputError(
            f"Some values in recency vector are larger than T vector: {positions(t_x > T * (1 + 1e-9))}"
        )
    if np.any((x == 0) & (t_x != 0)):
        raise InvalidInputError(f"recency must be 0 where frequency is 0: {positions((x == 0) & (t_x != 0))}")
    return x, t_x, T


def check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = as_array(weights, "weights")
    if len(w) != n:
        raise InvalidInputError(f"weights must have one value per customer ({n}), got {len(w)}")
    if np.any(w < 0):
        raise InvalidInputError(f"weights must be >= 0: {positions(w < 0)}")
    if w.sum() <= 0:
        raise InvalidInputError("weights sum to 0: there is nothing to fit")
    return w


def _sorted_codes(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code of each value, distinct values sorted). Whole numbers in a modest range (counts,
    days) are their own codes, with no hashing; anything else is factorised."""
    column = np.asarray(column)
    if len(column) and column.dtype.kind in "iuf":
        low, high = column.min(), column.max()
        if high - low <= 4 * len(column) + 1024 and np.array_equal(column, np.round(column)):
            offsets = (column - low).astype(np.int64)
            present = np.bincount(offsets, minlength=int(high - low) + 1) > 0
            values = np.flatnonzero(present)
            codes = np.cumsum(present) - 1
            return codes[offsets], (values + low).astype(column.dtype)
    return pd.factorize(column, sort=True)


def unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(distinct rows as columns, index of each row's distinct row), distinct rows sorted.

    One sorted hash factorisation per column, combined into a single integer key: fast on
    millions of rows. Sorted output makes everything computed from it independent of the order
    the engine returned the customers in (sums of floating-point numbers depend on order).
    """
    n = len(columns[0])
    key = np.zeros(n, dtype=np.int64)
    size = 1
    for column in columns:
        codes, uniques = _sorted_codes(column)
        if size * max(len(uniques), 1) >= 2**62:  # keep the combined key inside int64
            key, distinct = pd.factorize(key, sort=True)
            size = len(distinct)
        key = key * len(uniques) + codes
        size *= max(len(uniques), 1)
    codes, distinct = pd.factorize(key, sort=True)
    first = np.empty(len(distinct), dtype=np.int64)
    first[codes[::-1]] = np.arange(n - 1, -1, -1)
    return [np.asarray(column, dtype=float)[first] for column in columns], codes


def compress(
    *columns: np.ndarray, weights: np.ndarray | None = None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Identical rows merged: (unique columns, summed weights, index of each row's unique row).

    Likelihoods are sums over customers, so customers with identical inputs contribute once,
    weighted; real data has many (every one-time buyer with the same T, for instance).
    """
    unique, codes = unique_rows(*columns)
    w = np.ones(len(codes)) if weights is None else weights
    return unique, np.bincount(codes, weights=w, minlength=len(unique[0])), codes


# --- maximum likelihood ---------------------------------------------------------------------------


#: Parameters are searched in log space within e^-LOG_BOUND .. e^LOG_BOUND; a parameter that
#: ends on the bound means the data cannot pin the model down.
LOG_BOUND = 15.0


#: Above four times this many distinct customers, a fit on a sample of them comes first.
WARM_START_ROWS = 25_000


def warm_start_rows(n_rows: int) -> slice | None:
    """Every k-th of ``n_rows`` sorted distinct rows, or None when the data is small: the
    sample a large fit starts from (deterministic, because compressed rows are sorted)."""
    if n_rows <= 4 * WARM_START_ROWS:
        return None
    return slice(None, None, n_rows // WARM_START_ROWS)


@dataclass
class MLEResult:
    params: np.ndarray
    neg_log_likelihood: float
    converged: bool
    n_iter: int
    message: str


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _flat(res) -> bool:
    """Converged: scipy says so, or the gradient of the per-customer objective is flat. (With
    tolerances this tight the line search may give up at the optimum, where the function no
    longer changes in floating point.)"""
    return bool(res.success) or bool(np.max(np.abs(res.jac)) < 1e-6)


def maximize_likelihood(
    objective: Objective,
    starts: Sequence[np.ndarray],
    *,
    n: float = 1.0,
    max_iter: int = 1000,
    sample: tuple[Objective, float] | None = None,
) -> MLEResult:
    """Minimise ``objective(log_params) -> (value, gradient)`` with L-BFGS-B from each start in
    turn, stopping at the first that converges; the best finite result wins otherwise.

    The objective is divided by ``n`` (the number of customers) so that the tolerances mean the
    same for ten customers or ten million: the likelihood surface of BTYD models is very flat in
    some directions, and a loose stop leaves parameters off in the third digit.

    With ``sample`` = (objective, number of customers) of a subsample, that is fitted first; its
    curvature seeds a quasi-Newton refinement on the full data, which then needs a handful of
    full evaluations instead of dozens.
    """

    def per_customer(fun: Objective, size: float) -> Objective:
        def scaled(log_params):
            value, grad = fun(log_params)
            return value / size, grad / size

        return scaled

    # a problem of a few parameters is far too small for threaded BLAS: the thread hand-offs
    # inside the optimisers cost ten times more than the optimisation itself
    with threadpool_limits(limits=1, user_api="blas"), np.errstate(all="ignore"):
        if sample is not None:
            warm = _lbfgsb(per_customer(*sample), starts, max_iter, sample[1])
            refined = _refine(per_customer(objective, n), per_customer(*sample), warm, max_iter, n)
            if refined is not None:
                return refined
            starts = [np.log(warm.params), *starts]
        return _lbfgsb(per_customer(objective, n), starts, max_iter, n)


def _lbfgsb(scaled: Objective, starts: Sequence[np.ndarray], max_iter: int, n: float) -> MLEResult:
    best: MLEResult | None = None
    for start in starts:
        res = optimize.minimize(
            scaled,
            np.asarray(start, dtype=float),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * len(start),
            options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-9},
        )
        if not np.isfinite(res.fun) or not np.all(np.isfinite(res.x)):
            continue
        candidate = MLEResult(np.exp(res.x), float(res.fun) * n, _flat(res), int(res.nit), str(res.message))
        if best is None or candidate.neg_log_likelihood < best.neg_log_likelihood - 1e-9:
            best = candidate
        if candidate.converged:
            break
    if best is None:
        raise ConvergenceError(
            "the likelihood could not be evaluated at any starting point (non-finite values)"
        )
    return best


def _refine(
    scaled: Objective, scaled_sample: Objective, warm: MLEResult, max_iter: int, n: float
) -> MLEResult | None:
    """BFGS on the full data from the sample's optimum, with the sample's inverse Hessian as
    the first curvature estimate; None when that does not apply or does not converge."""
    start = np.log(warm.params)
    if not warm.converged or np.any(np.abs(start) > LOG_BOUND - 0.5):
        return None
    hess = hessian_from_gradient(lambda p: scaled_sample(p)[1], start, central=True)
    try:
        hess_inv = np.linalg.inv(hess)
        hess_inv = (hess_inv + hess_inv.T) / 2
        np.linalg.cholesky(hess_inv)  # positive definite, as BFGS needs
    except np.linalg.LinAlgError:
        return None
    res = optimize.minimize(
        scaled,
        start,
        jac=True,
        method="BFGS",
        options={"maxiter": max_iter, "gtol": 1e-9, "hess_inv0": hess_inv},
    )
    if not np.isfinite(res.fun) or not np.all(np.isfinite(res.x)) or not _flat(res):
        return None
    return MLEResult(np.exp(res.x), float(res.fun) * n, True, int(res.nit), str(res.message))


def hessian_from_gradient(
    gradient: Callable[[np.ndarray], np.ndarray], x: np.ndarray, rel_step: float = 1e-5, central: bool = False
) -> np.ndarray:
    """Finite differences of an analytic gradient, symmetrised: forward differences take n + 1
    gradient evaluations for n parameters (accurate to about ``rel_step``, plenty for standard
    errors); central differences take 2n and are accurate to about ``rel_step`` squared."""
    n = len(x)
    hess = np.empty((n, n))
    at_x = None if central else gradient(x)
    for i in range(n):
        h = rel_step * max(abs(x[i]), 1e-8)
        up = x.copy()
        up[i] += h
        if central:
            down = x.copy()
            down[i] -= h
            hess[:, i] = (gradient(up) - gradient(down)) / (2 * h)
        else:
            hess[:, i] = (gradient(up) - at_x) / h
    return (hess + hess.T) / 2


def standard_errors(
    objective: Callable[[np.ndarray], tuple], params: np.ndarray, analytic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(standard errors, covariance) from the observed information in natural parameters.

    ``objective(log_params)`` returns the negative log-likelihood and its gradient in log space
    (the gradient in natural parameters is that divided by the parameters), and with
    ``analytic`` also its Hessian in log space, which is then converted instead of differenced.
    """
    if analytic:
        _, grad_log, hess_log = objective(np.log(params))
        hess = (hess_log - np.diag(grad_log)) / np.outer(params, params)
    else:
        hess = hessian_from_gradient(lambda p: objective(np.log(p))[1] / p, params)
    try:
        cov = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov = np.full_like(hess, np.nan)
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    return se, cov


# --- the model base -----------------------------------------------------------------------------


class BTYDModel(Estimator):
    """Base of the BTYD models: the maximum-likelihood fit, fitted state and the summary table.

    Every model fits the same way (:meth:`_fit_likelihood`): check the inputs, check that the
    data can teach the model anything, merge identical customers, fit a sample first on large
    data, maximise the likelihood from the model's starts and keep the result with its standard
    errors. A model gives only what is its own:

    * ``_check_inputs(*columns)``: the validated columns (its input contract);
    * ``_check_learnable(*columns, w)``: refuse data that cannot identify it (optional);
    * ``_check_distinct(*columns, w)``: the same on the merged rows (optional);
    * ``_prepare(*columns, w)``: the merged data in the form its likelihood reads (optional);
    * ``_starts(*columns, w)``: starting points in log-parameters;
    * ``_neg_log_likelihood(log_params, data)``: the value and its log-space gradient, and
      optionally ``_neg_log_likelihood_hessian`` (analytic standard errors);
    * ``_no_dropout(params, *columns)``: whether a failed fit ended where nobody leaves
      (optional; the error then says so).

    Learned attributes after ``fit``: ``params_`` (a Series by parameter name),
    ``standard_errors_``, ``covariance_``, ``log_likelihood_``, ``n_customers_`` (the sum of
    weights), ``converged_`` and ``n_iter_``.
    """

    param_names: ClassVar[tuple[str, ...]] = ()
    _constraints = {
        "penalizer": Interval(0, None),
        "max_iter": Interval(1, None, integer=True),
    }

    def __init__(self, penalizer: float = 0.0, max_iter: int = 1000) -> None:
        self.penalizer = penalizer
        self.max_iter = max_iter

    def _fit_likelihood(self, columns: Sequence, weights=None, *, distinct: bool = False):
        """The fit every model shares: maximum likelihood on ``columns`` (one value per customer
        each), ``weights`` counting customers per row. ``distinct=True`` says the rows are
        already merged and sorted, as ``compress`` returns them."""
        self._validate_params()
        columns = self._check_inputs(*columns)
        w = check_weights(weights, len(columns[0]))
        self._check_learnable(*columns, w)
        if not distinct:
            columns, w, _ = compress(*columns, weights=w)
        # customers of weight 0 add nothing to the likelihood (and 0 * -inf would be NaN)
        keep = w > 0
        columns, w = [np.asarray(c)[keep] for c in columns], w[keep]
        self._check_distinct(*columns, w)
        data = self._prepare(*columns, w)
        sample = None
        if (rows := warm_start_rows(len(w))) is not None:
            subset = self._prepare(*(c[rows] for c in columns), w[rows])
            sample = (lambda p: self._neg_log_likelihood(p, subset), w[rows].sum())
        objective = self._penalized(lambda p: self._neg_log_likelihood(p, data))
        result = maximize_likelihood(
            objective, self._starts(*columns, w), n=w.sum(), max_iter=self.max_iter, sample=sample
        )
        hessian = getattr(self, "_neg_log_likelihood_hessian", None)
        try:
            self._store_fit(
                result,
                lambda p: self._neg_log_likelihood(p, data),
                w.sum(),
                hessian=(lambda p: hessian(p, data)) if hessian else None,
            )
        except ConvergenceError as error:
            if self._no_dropout(result.params, *columns):
                raise ConvergenceError(
                    f"{type(self).__name__}: the data show no dropout: the likelihood keeps rising as "
                    "dropout goes to 0 (the NBD model, where nobody leaves); observe the customers "
                    "longer, use a penalizer > 0, or fit a model without dropout"
                ) from error
            raise
        return self

    def _check_inputs(self, *columns) -> tuple[np.ndarray, ...]:  # pragma: no cover - interface
        raise NotImplementedError

    def _check_learnable(self, *columns_and_weights: np.ndarray) -> None:
        """Refuse data from which the model cannot be learned; nothing to refuse by default."""

    def _check_distinct(self, *columns_and_weights: np.ndarray) -> None:
        """Refuse merged rows too few to identify the model; nothing to refuse by default."""

    def _prepare(self, *columns_and_weights: np.ndarray):
        """The data the likelihood reads: by default the columns and the weights, as a tuple."""
        return columns_and_weights

    def _starts(self, *columns_and_weights: np.ndarray) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _neg_log_likelihood(
        self, log_params: np.ndarray, data
    ) -> tuple[float, np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def _no_dropout(self, params: np.ndarray, *columns: np.ndarray) -> bool:
        """Whether a failed fit ended where nobody drops out."""
        return False

    def _penalized(self, neg_log_likelihood: Objective) -> Objective:
        """The objective the optimiser minimises: the likelihood's plus the penalty."""

        def objective(log_params):
            value, grad = neg_log_likelihood(log_params)
            pen, pen_grad = self._penalty(log_params)
            return value + pen, grad + pen_grad

        return objective

    def _penalty(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        """L2 penalty on the parameters (as lifetimes' ``penalizer_coef``) and its log-space gradient."""
        if not self.penalizer:
            return 0.0, np.zeros_like(log_params)
        p = np.exp(log_params)
        return self.penalizer * float(np.sum(p**2)), 2 * self.penalizer * p**2

    def _store_fit(
        self,
        result: MLEResult,
        objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
        n: float,
        hessian: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """Keep a converged fit; ``objective(log_params)`` is the unpenalised negative
        log-likelihood with its log-space gradient, ``hessian`` the same with the Hessian (for
        the standard errors) when the model has it."""
        names = list(self.param_names)
        if not result.converged and np.any(result.params > 1e4):
            growing = [f"{n} = {v:.3g}" for n, v in zip(names, result.params, strict=True) if v > 1e4]
            raise ConvergenceError(
                f"{type(self).__name__}: maximum likelihood does not settle: {', '.join(growing)} keep "
                "growing, the data sit at the edge of the model's family (for BTYD models usually: "
                "no visible dropout, or everybody alike); use a penalizer > 0 or observe customers longer"
            )
        if not result.converged:
            raise ConvergenceError(
                f"{type(self).__name__}: maximum likelihood did not converge ({result.message}); "
                "try a penalizer > 0 or check the input"
            )
        names = list(self.param_names)
        at_bound = [n for n, v in zip(names, result.params, strict=True) if abs(np.log(v)) > LOG_BOUND - 0.01]
        if at_bound:
            raise ConvergenceError(
                f"{type(self).__name__}: parameter(s) {', '.join(at_bound)} ran off to their bound "
                f"({', '.join(f'{v:.3g}' for v in result.params)}): the data cannot identify the model "
                "(too few customers or too little variation); fit more customers or use a penalizer > 0"
            )
        se, cov = standard_errors(hessian or objective, result.params, analytic=hessian is not None)
        if not self.penalizer and not np.all(np.isfinite(se)):
            raise ConvergenceError(
                f"{type(self).__name__}: the likelihood is flat at the estimate "
                f"({', '.join(f'{v:.3g}' for v in result.params)}): the data cannot identify the model "
                "(too few customers or too little variation); fit more customers or use a penalizer > 0"
            )
        self.params_ = pd.Series(result.params, index=names, name="estimate")
        self.standard_errors_ = pd.Series(se, index=names, name="se")
        self.covariance_ = pd.DataFrame(cov, index=names, columns=names)
        self.log_likelihood_ = -float(objective(np.log(result.params))[0])
        self.n_customers_ = float(n)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter

    def summary(self) -> pd.DataFrame:
        """Estimates with standard errors and 95% intervals; the log-likelihood, the number of
        customers and the AIC are in ``.attrs``."""
        self._check_fitted()
        out = pd.DataFrame({"estimate": self.params_, "se": self.standard_errors_})
        out["lower 95%"] = out["estimate"] - 1.96 * out["se"]
        out["upper 95%"] = out["estimate"] + 1.96 * out["se"]
        out.attrs.update(
            log_likelihood=self.log_likelihood_,
            n_customers=self.n_customers_,
            aic=2 * len(self.param_names) - 2 * self.log_likelihood_,
        )
        return out

    def _check_identifiable(self, distinct_rows: int) -> None:
        """A handful of distinct customers cannot pin the parameters down: the optimum runs off
        to extreme values that happen to fit them. Ask for three per parameter at least."""
        needed = 3 * len(self.param_names)
        if distinct_rows < needed:
            raise InvalidInputError(
                f"{type(self).__name__} has {len(self.param_names)} parameters and needs customers with at "
                f"least {needed} different inputs; got {distinct_rows}"
            )

    def _finite(self, values: np.ndarray, what: str) -> np.ndarray:
        """Predictions, or a clear error instead of a silent NaN or infinity."""
        if not np.all(np.isfinite(values)):
            bad = np.flatnonzero(~np.isfinite(np.atleast_1d(values)))
            params = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            raise ConvergenceError(
                f"{type(self).__name__}: {what} is not finite for {len(bad)} input(s) (first at position "
                f"{bad[0]}) with the fitted parameters ({params}); the fit is degenerate: fit more "
                "customers or use a penalizer > 0"
            )
        return values

    def predict_purchases_many(self, horizons, frequency, recency, T) -> np.ndarray:
        """Expected purchases in (T, T + t] for each horizon t: shape (horizons, customers).
        Models override it when the horizons can share work."""
        return np.stack(
            [self.predict_purchases(t, frequency, recency, T) for t in np.asarray(horizons, float)]
        )

    def _params(self) -> tuple[float, ...]:
        self._check_fitted()
        return tuple(float(v) for v in self.params_)


class RepeatBuyingModel(BTYDModel):
    """The continuous-time models of repeat buying (BG/NBD, Pareto/NBD, MBG/NBD, NBD): one ``fit``
    on (repeat purchases, age at last purchase, age) per customer.

    Subclasses give ``label`` and the likelihood's parts (see :class:`BTYDModel`).
    """

    label: ClassVar[str] = ""
    #: Whether customers can leave in this model (False for the NBD, whose P(alive) is always 1).
    has_dropout: ClassVar[bool] = True

    def fit(self, frequency, recency, T, weights=None, *, distinct: bool = False):
        """Maximum likelihood on (repeat purchases, age at last purchase, age) per customer.

        Identical customers are merged before fitting (``distinct=True`` says the rows are
        already merged and sorted, as ``compress`` returns them); ``weights`` counts customers
        per row. Large data is fitted on a sample of its distinct rows first.
        """
        return self._fit_likelihood((frequency, recency, T), weights, distinct=distinct)

    def _check_inputs(self, frequency, recency, T) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return check_rfm(frequency, recency, T)

    def _check_learnable(self, x, t_x, T, w) -> None:
        if not np.any(x[w > 0] > 0):
            raise InvalidInputError(
                "every customer has frequency 0 (no repeat purchases): the buying rate cannot be "
                f"learned; {self.label} needs some repeat buyers"
            )

    def _check_distinct(self, x, t_x, T, w) -> None:
        self._check_identifiable(len(w))

    def _starts(self, x, t_x, T, w) -> list[np.ndarray]:
        scale = float(np.average(T, weights=w))
        return [np.log([1.0, scale / 10, 1.0, 1.0]), np.log([0.1, scale, 0.5, 2.0]), np.zeros(4)]

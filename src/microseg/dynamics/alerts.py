"""Alerts on segment transitions whose rate in the latest period departs from their history.

The input counts, for each period (``as_of``, its end date) and each group of customers
(``'all'``, a CLV tier such as ``'top_1'``, ...), how many of the ``base`` customers who were in
segment ``source`` at the start of the period were in segment ``target`` at its end
(``moved``). The period tested is ``as_of`` (the latest by default); its history is every
earlier period. A ``(group, source, target)`` whose ``(group, source)`` is absent from a period
(no row for it) has no base there; a target missing while other targets of the same
``(group, source)`` are present moved nobody (0).

**The test.** For each transition, ``p1 = moved / base`` in the tested period is compared with
the pooled historical rate ``p0 = sum(moved) / sum(base)`` over the history periods by a
two-proportion z-statistic::

    z = (p1 - p0) / sqrt(phi * p * (1 - p) * (1 / base1 + 1 / base_hist))

with ``p`` the rate pooled over the tested period and its history together,
``(moved1 + moved_hist) / (base1 + base_hist)``. The pooled rate is the estimate of the common
rate under the null hypothesis (the score test), and it keeps the variance positive when the
history never saw the transition (``p0 = 0``, ``p > 0`` as soon as anyone moves now) or always
saw it (``p0 = 1``), so a transition that never happened before and now moves many customers
can alert, with no ad-hoc continuity correction. When ``p1 = p0`` (including both 0 or both 1)
``z = 0``.

**Dispersion.** Transition rates wobble from period to period (seasonality, campaigns) more
than binomial sampling alone explains; a plain binomial test would flag that wobble as change.
The variance is therefore inflated by a quasi-binomial dispersion factor estimated from the
history of the same transition: the Pearson chi-square of the history periods' counts against
``p0``, ``sum((moved_t - base_t * p0)**2 / (base_t * p0 * (1 - p0)))``, divided by its degrees
of freedom ``df = history periods - 1``, floored at 1 (never *less* variance than binomial).
With ``p0`` at 0 or 1 every history period equals its expectation and ``phi = 1``.

**Reference distribution.** ``phi`` is estimated from only ``df`` degrees of freedom (11 for
twelve history periods), so — as usual for quasi-likelihood tests with an estimated dispersion —
the two-sided p-value comes from Student's t with ``df`` degrees of freedom, not the normal
distribution. This matters: in simulations of twelve weekly periods with beta-distributed rate
wobble, normal p-values gave a false alert in 20-40% of the periods despite Holm, while t
p-values kept it near ``alpha``. The price is power with short histories: with three history
periods (t on 2 degrees of freedom) only very large changes can alert; longer histories
approach the normal test.

**Multiple testing.** Every transition of every group tested for the period forms one family;
the Holm-Bonferroni step-down method controls the chance of any false alert in the family at
``alpha``: with ``m`` tests and raw p-values sorted ascending, the k-th is adjusted to
``max over j <= k of min(1, (m - j + 1) * p_(j))``. Both ``p_value`` (raw) and ``p_adjusted``
are reported.

**Effect size.** A significant change must also be large enough to act on. An increase alerts
when ``p1 / p0 >= min_ratio`` and at least ``min_moved`` customers moved this period. A decrease
alerts when ``p1 / p0 <= 1 / min_ratio`` and at least ``min_moved`` customers were *expected*
to move under the historical rate (``base1 * p0 >= min_moved``), since the observed count of a
fall can be zero. A transition new this period has ``ratio = inf``.

Assumptions: customers move independently given the period's rate (the dispersion factor
absorbs shared shocks); the extra variation scales like binomial variance, which holds when
bases are of similar size across periods; the history is one regime (a step change long ago
inflates ``phi`` and makes the test conservative); the base of a ``(period, group, source)`` is
the same for all its targets. At least two history periods are needed to estimate ``phi``.

**Libraries.** The t reference distribution is SciPy's (``scipy.stats.t``). The rest is written
here on purpose: SciPy has neither a two-proportion z-test with a dispersion factor nor a Holm
adjustment (``scipy.stats.false_discovery_control`` offers Benjamini-Hochberg and -Yekutieli,
which bound the false discovery rate, not the chance of any false alert). statsmodels has both
pieces without the dispersion (``proportions_ztest``, ``multipletests(method="holm")``) and
gives the same numbers (checked: identical Holm values on random p-values with ties, identical
z with ``phi = 1``), but it is a 65 MB install that takes over a second to import, for some
fifteen lines of arithmetic. Without dispersion, ``z**2`` is the Pearson chi-square of the 2x2
table of this period against the pooled history, which the tests check against
``scipy.stats.chi2_contingency``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
from scipy import stats

from microseg.errors import InvalidInputError

#: Columns the counts must have.
COUNT_COLUMNS = ("as_of", "group", "source", "target", "moved", "base")
_KEY = ["group", "source", "target"]
TEST_COLUMNS = [
    "as_of",
    "group",
    "source",
    "target",
    "moved",
    "base",
    "rate",
    "historical_moved",
    "historical_base",
    "historical_rate",
    "history_periods",
    "dispersion",
    "ratio",
    "expected",
    "z",
    "p_value",
    "p_adjusted",
    "direction",
    "test",
]
ALERT_COLUMNS = [
    "as_of",
    "group",
    "source",
    "target",
    "moved",
    "base",
    "rate",
    "historical_rate",
    "ratio",
    "z",
    "p_value",
    "p_adjusted",
    "test",
    "direction",
    "message",
]


def transition_tests(
    counts: pd.DataFrame,
    *,
    as_of=None,
    min_history: int = 3,
    include_stays: bool = False,
) -> pd.DataFrame:
    """Every transition of the period ``as_of`` tested against its history, most significant first.

    One row per tested ``(group, source, target)``: the counts of the period, the pooled
    history (``historical_moved``, ``historical_base``, ``historical_rate``, ``history_periods``),
    the dispersion factor, ``ratio = rate / historical_rate``, ``expected`` moves under the
    historical rate, ``z``, raw and Holm-adjusted p-values, ``direction`` (``'up'``,
    ``'down'`` or ``'flat'``) and a ``test`` description. Transitions with fewer than
    ``min_history`` history periods, or no customers in ``source`` this period, are not tested.

    >>> counts = pd.DataFrame({
    ...     "as_of": pd.date_range("2024-01-07", periods=9, freq="W").date,
    ...     "group": "all", "source": "active", "target": "lapsed",
    ...     "moved": [50, 55, 45, 52, 48, 60, 41, 49, 100], "base": 1000,
    ... })
    >>> row = transition_tests(counts).iloc[0]
    >>> float(row.historical_rate), float(row.rate), float(row.ratio), int(row.history_periods)
    (0.05, 0.1, 2.0, 8)
    >>> round(float(row.z), 2), round(float(row.p_value), 5)
    (6.51, 0.00033)
    """
    if isinstance(min_history, bool) or not isinstance(min_history, numbers.Integral) or min_history < 2:
        # one history period leaves no degree of freedom to estimate the dispersion from
        raise InvalidInputError(f"min_history must be an integer >= 2, got {min_history!r}")
    data = _validated(counts)
    periods = sorted(data["as_of"].unique())
    current = _chosen_period(as_of, periods)
    data = data[data["as_of"] <= current]
    history = [p for p in periods if p < current]

    keys, moves, bases = _matrices(data, [*history, current])
    if not include_stays:
        changes = keys.get_level_values("source") != keys.get_level_values("target")
        keys, moves, bases = keys[changes], moves[changes], bases[changes]

    n1, m1 = bases[:, -1], moves[:, -1]
    hist_n = np.where(bases[:, :-1] > 0, bases[:, :-1], np.nan)
    hist_m = np.where(bases[:, :-1] > 0, moves[:, :-1], np.nan)
    n_history = np.sum(~np.isnan(hist_n), axis=1)
    tested = (n1 > 0) & (n_history >= min_history)
    keys = keys[tested]
    n1, m1, hist_n, hist_m, n_history = (a[tested] for a in (n1, m1, hist_n, hist_m, n_history))

    n0 = np.nansum(hist_n, axis=1)
    m0 = np.nansum(hist_m, axis=1)
    p0 = m0 / n0
    p1 = m1 / n1
    phi = _dispersion(hist_m, hist_n, p0, n_history)
    z = _z_statistic(m1, n1, m0, n0, phi)
    p_value = 2 * stats.t.sf(np.abs(z), df=n_history - 1)
    p_adjusted = holm(p_value)

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(p1 == p0, 1.0, p1 / p0)
    direction = np.where(p1 > p0, "up", np.where(p1 < p0, "down", "flat"))
    n_tests = len(keys)
    description = [
        f"two-proportion z-test, quasi-binomial dispersion {f:.2f}, Student t on {d - 1} df, "
        f"Holm-adjusted over {n_tests} test{'s' if n_tests != 1 else ''}"
        for f, d in zip(phi, n_history, strict=True)
    ]
    table = pd.DataFrame(
        {
            "as_of": pd.Timestamp(current).date(),
            "group": keys.get_level_values("group").astype(object),
            "source": keys.get_level_values("source").astype(object),
            "target": keys.get_level_values("target").astype(object),
            "moved": m1.astype(np.int64),
            "base": n1.astype(np.int64),
            "rate": p1,
            "historical_moved": m0.astype(np.int64),
            "historical_base": n0.astype(np.int64),
            "historical_rate": p0,
            "history_periods": n_history.astype(np.int64),
            "dispersion": phi,
            "ratio": ratio,
            "expected": n1 * p0,
            "z": z,
            "p_value": p_value,
            "p_adjusted": p_adjusted,
            "direction": direction,
            "test": description,
        },
        columns=TEST_COLUMNS,
    )
    return table.sort_values(["p_value", *_KEY], kind="stable", ignore_index=True)


def transition_alerts(
    counts: pd.DataFrame,
    *,
    as_of=None,
    alpha: float = 0.01,
    min_ratio: float = 1.5,
    min_moved: int = 10,
    min_history: int = 3,
    include_stays: bool = False,
) -> pd.DataFrame:
    """Transitions whose rate in the period ``as_of`` changed significantly and materially.

    An alert needs a Holm-adjusted p-value below ``alpha`` and a practical effect: for a rise
    ``rate / historical_rate >= min_ratio`` and ``moved >= min_moved``; for a fall
    ``rate / historical_rate <= 1 / min_ratio`` and ``expected >= min_moved`` (customers expected
    to move at the historical rate). One row per alert, most significant first, with a readable
    ``message``; :func:`transition_tests` gives every test.

    >>> counts = pd.DataFrame({
    ...     "as_of": pd.date_range("2024-01-07", periods=9, freq="W").date,
    ...     "group": "top_1", "source": "at_risk", "target": "churned",
    ...     "moved": [120, 131, 112, 118, 127, 109, 122, 121, 240], "base": 2000,
    ... })
    >>> print(transition_alerts(counts).message[0])
    at_risk -> churned among top_1: 12.0% of 2,000 customers this period vs 6.0% before (2.0x), p = 1.9e-05 (Holm-adjusted p = 1.9e-05)
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")
    if isinstance(min_ratio, bool) or not isinstance(min_ratio, numbers.Real) or not min_ratio >= 1:
        raise InvalidInputError(f"min_ratio must be a number >= 1, got {min_ratio!r}")
    if isinstance(min_moved, bool) or not isinstance(min_moved, numbers.Integral) or min_moved < 0:
        raise InvalidInputError(f"min_moved must be an integer >= 0, got {min_moved!r}")
    tests = transition_tests(counts, as_of=as_of, min_history=min_history, include_stays=include_stays)
    rise = (tests["ratio"] >= min_ratio) & (tests["moved"] >= min_moved)
    fall = (tests["ratio"] <= 1 / min_ratio) & (tests["expected"] >= min_moved)
    alerts = tests[(tests["p_adjusted"] < alpha) & (rise | fall)].copy()
    alerts["message"] = [_message(row) for row in alerts.itertuples()]
    return alerts.reindex(columns=ALERT_COLUMNS).reset_index(drop=True)


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values, in the order given.

    >>> holm([0.01, 0.04, 0.03]).round(2).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(stepped)
    return adjusted


def _dispersion(hist_m: np.ndarray, hist_n: np.ndarray, p0: np.ndarray, n_history: np.ndarray) -> np.ndarray:
    """Pearson chi-square / degrees of freedom of the history periods against p0, floored at 1."""
    variance = hist_n * p0[:, None] * (1 - p0[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        residuals = np.where(variance > 0, (hist_m - hist_n * p0[:, None]) ** 2 / variance, 0.0)
    chi_square = np.nansum(residuals, axis=1)
    return np.maximum(1.0, chi_square / np.maximum(n_history - 1, 1))


def _z_statistic(m1, n1, m0, n0, phi) -> np.ndarray:
    pooled = (m1 + m0) / (n1 + n0)
    variance = phi * pooled * (1 - pooled) * (1 / n1 + 1 / n0)
    difference = m1 / n1 - m0 / n0
    with np.errstate(divide="ignore", invalid="ignore"):
        # variance is 0 only when both rates sit at the same boundary (0 or 1): no difference
        return np.where(variance > 0, difference / np.sqrt(variance), 0.0)


def _message(row) -> str:
    change = "new" if math.isinf(row.ratio) else f"{row.ratio:.1f}x"
    return (
        f"{row.source} -> {row.target} among {row.group}: {_percent(row.rate)} of {row.base:,} "
        f"customers this period vs {_percent(row.historical_rate)} before ({change}), "
        f"p {_p_text(row.p_value)} (Holm-adjusted p {_p_text(row.p_adjusted)})"
    )


def _percent(rate: float) -> str:
    if rate == 0 or rate >= 0.01:
        return f"{rate:.1%}"
    return f"{100 * rate:.2g}%"


def _p_text(p: float) -> str:
    """'= 0.0003', '= 1.9e-05' or '< 1e-15' (below that a float p-value is noise)."""
    if p < 1e-15:
        return "< 1e-15"
    if p < 1e-4:
        return f"= {p:.1e}"
    return f"= {p:.2g}"


def _chosen_period(as_of, periods: list) -> pd.Timestamp:
    if not periods:
        raise InvalidInputError("counts is empty: there is no period to test")
    if as_of is None:
        return periods[-1]
    try:
        wanted = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"as_of must be a date, got {as_of!r}") from exc
    if wanted not in periods:
        available = ", ".join(pd.Timestamp(p).date().isoformat() for p in periods)
        raise InvalidInputError(
            f"as_of {wanted.date().isoformat()} is not a period of the counts; available: {available}"
        )
    return wanted


def _validated(counts: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(counts, pd.DataFrame):
        raise InvalidInputError(f"counts must be a pandas DataFrame, got {type(counts).__name__}")
    for column in COUNT_COLUMNS:
        if column not in counts.columns:
            raise InvalidInputError(
                f"counts is missing the column {column!r} (needs {', '.join(COUNT_COLUMNS)})"
            )
    data = counts.loc[:, list(COUNT_COLUMNS)].copy()
    try:
        data["as_of"] = pd.to_datetime(data["as_of"]).dt.as_unit("ns").dt.normalize()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"counts column 'as_of' must hold dates: {exc}") from exc
    for column in ("as_of", "group", "source", "target", "moved", "base"):
        missing = data[column].isna()
        if missing.any():
            raise InvalidInputError(f"counts column {column!r} has a missing value in {_row(data, missing)}")
    for column in ("group", "source", "target"):
        data[column] = data[column].astype(str)
    for column in ("moved", "base"):
        values = pd.to_numeric(data[column], errors="coerce")
        not_whole = values.isna() | (values != np.floor(values))
        if not_whole.any():
            raise InvalidInputError(
                f"counts column {column!r} must hold whole numbers; {_row(data, not_whole)}"
            )
        data[column] = values.astype(np.int64)
        negative = data[column] < 0
        if negative.any():
            raise InvalidInputError(f"counts column {column!r} is negative in {_row(data, negative)}")
    too_many = data["moved"] > data["base"]
    if too_many.any():
        raise InvalidInputError(f"moved is larger than base in {_row(data, too_many)}")
    return data


def _matrices(data: pd.DataFrame, periods: list) -> tuple[pd.MultiIndex, np.ndarray, np.ndarray]:
    """Transitions (group, source, target) by periods: customers moved and bases (NaN: no base).

    A transition without a row in a period where its (group, source) has a base moved nobody.
    """
    period = np.searchsorted(np.asarray(periods, dtype="datetime64[ns]"), data["as_of"].to_numpy())
    # one integer per (group, source, target), ordered like the sorted triples
    codes, labels = zip(*(pd.factorize(data[column], sort=True) for column in _KEY), strict=True)
    n_sources, n_targets = len(labels[1]), len(labels[2])
    combined = (codes[0] * n_sources + codes[1]) * n_targets + codes[2]
    unique, transition = np.unique(combined, return_inverse=True)
    group_of, rest = np.divmod(unique, n_sources * n_targets)
    source_of, target_of = np.divmod(rest, n_targets)
    keys = pd.MultiIndex.from_arrays(
        [labels[0][group_of], labels[1][source_of], labels[2][target_of]], names=_KEY
    )
    n_keys, n_periods = len(keys), len(periods)
    cell = transition * n_periods + period
    duplicated = np.bincount(cell, minlength=n_keys * n_periods)[cell] > 1
    if duplicated.any():
        raise InvalidInputError(f"counts has more than one row for {_row(data, duplicated)}")
    origins, origin_of_key = np.unique(unique // n_targets, return_inverse=True)  # (group, source)
    origin = origin_of_key[transition]
    base = np.full((len(origins), n_periods), np.nan)
    base[origin, period] = data["base"].to_numpy()
    inconsistent = base[origin, period] != data["base"].to_numpy()
    if inconsistent.any():
        raise InvalidInputError(
            f"base differs between the targets of one (as_of, group, source), e.g. "
            f"{_row(data, inconsistent)}: it must be the customers in source at the start of the period"
        )
    bases = base[origin_of_key]
    moves = np.where(np.isnan(bases), np.nan, 0.0)
    moves[transition, period] = data["moved"].to_numpy()
    return keys, moves, bases


def _row(data: pd.DataFrame, mask) -> str:
    """The first flagged row, named by its keys."""
    row = data[np.asarray(mask)].iloc[0]
    when = row["as_of"].date().isoformat() if isinstance(row["as_of"], pd.Timestamp) else row["as_of"]
    return (
        f"the row as_of={when}, group={row['group']!r}, source={row['source']!r}, "
        f"target={row['target']!r} (moved={row['moved']}, base={row['base']})"
    )


__all__ = ["transition_alerts", "transition_tests", "holm"]

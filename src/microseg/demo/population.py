"""The simulated population of a block: history window, latent state, orders and campaigns.

Everything here works in float days since the window start (see :class:`_Window`); the table
builders of :mod:`microseg.demo.tables` and :mod:`microseg.demo.events` turn it into rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy import special

from microseg.demo.columns import _fixed_width
from microseg.demo.groups import (
    _CAMPAIGN_EVERY_DAYS,
    _CRM_SHARE,
    _DAY_MARGIN,
    _EXTRA_TENURE_DAYS,
    _GAP_RANGE,
    _GAP_SCALE,
    _GROUP_SHARES,
    _JOIN_GROWTH,
    _LOYAL_CORE_SHARE,
    _REACTIVATED_MAX_RECENT,
    _REACTIVATION_GAP_SPREAD,
    _SECONDS_PER_DAY,
    _STAGE_SHARES,
    ACTIVE_MIN_TENURE_DAYS,
    ACTIVE_MIN_TENURE_RHYTHMS,
    AT_RISK_MIN_EARLIER,
    AT_RISK_RHYTHMS,
    AT_RISK_SLOWDOWN,
    CHANNELS,
    CHURN_MIN_DAYS,
    CHURN_MIN_RHYTHMS,
    GAP_SHAPE,
    GROUPS,
    NEW_MAX_ORDERS,
    PROSPECT_SHARE,
    REACTIVATED_MIN_BEFORE,
    REACTIVATION_GAP_DAYS,
    RECENT_DAYS,
    RHYTHM_MAX_DAYS,
    RHYTHM_MIN_DAYS,
    SLEEPING_DOG_SHARE,
    STAGES,
    _category_alpha,
    _per_group,
)

# --- time ----------------------------------------------------------------------------------------

# Hour-of-day weights of purchases per channel (pos, web, app): shops open 8-20, online peaks in
# the evening, the app also at commuting times.
_HOURS = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 6, 8, 8, 6, 6, 6, 7, 5, 3, 1, 0, 0, 0],
        [1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 2, 3, 4, 4, 4, 5, 5, 4, 4, 4, 5, 6, 8, 9, 8, 5, 2],
        [1, 0.5, 0.2, 0.1, 0.1, 0.3, 1, 4, 5, 3, 3, 3, 5, 5, 3, 3, 3, 4, 6, 7, 8, 8, 5, 2],
    ]
)
_HOUR_CDF = np.cumsum(_HOURS / _HOURS.sum(axis=1, keepdims=True), axis=1)
_HOUR_CDF[:, -1] = 1.0

# Seasonal profiles: (day of the year of the peak, counted from 0 = 1 January; pull). Purchases
# between a customer's first and last move towards the peak by up to ``pull`` times the shorter
# of their two gaps (see _seasonal_pull), so the seasons show without blurring the rhythm.
_SEASON_PEAKS = {"retail": (334.0, 0.1), "gifting": (345.0, 0.3), "garden": (114.0, 0.3)}
_DAYS_PER_YEAR = 365.25
# Gaps stay below this after the seasonal pull, so only reactivated customers have a gap of a
# year (REACTIVATION_GAP_DAYS) or more, even after purchases move within their day.
_MAX_REGULAR_GAP = REACTIVATION_GAP_DAYS - 3 * _DAY_MARGIN


@dataclass(frozen=True)
class _Window:
    """The history window: whole days ending at the end of ``as_of``.

    Simulated times are float days since ``start``.
    """

    start: np.datetime64  # first second of the window
    days: int

    @classmethod
    def build(cls, as_of: dt.date, years: float) -> _Window:
        days = int(round(years * 365.25))
        end = np.datetime64(as_of, "D") + np.timedelta64(1, "D")
        start = end - np.timedelta64(days, "D")
        return cls(start.astype("datetime64[s]"), days)

    @property
    def start_s(self) -> int:
        return int(self.start.astype(np.int64))

    @property
    def end_s(self) -> int:
        """First second after the window (midnight after as_of)."""
        return self.start_s + self.days * _SECONDS_PER_DAY

    @property
    def start_day_of_year(self) -> int:
        """Days from 1 January of the start's year to the start."""
        day = self.start.astype("datetime64[D]")
        return int((day - day.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64))

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Float days since start -> int64 epoch seconds, clipped into the window."""
        secs = self.start_s + np.floor(t * _SECONDS_PER_DAY).astype(np.int64)
        return np.clip(secs, self.start_s, self.end_s - 1)


def _seasonal_pull(window: _Window, owner: np.ndarray, t: np.ndarray, season: np.ndarray) -> np.ndarray:
    """Move purchases towards their seasonal peak without changing what the stage shows.

    ``owner`` and ``t`` are sorted by customer, then time; ``season[i]`` is purchase i's profile
    (index into _SEASON_PEAKS). A customer's first and last purchases stay where they are, and so
    does every purchase next to a gap of a year or more (reactivated customers' long gap); the
    others move by at most ``pull`` times the shorter adjacent gap and at most half of what keeps
    both gaps below _MAX_REGULAR_GAP. Purchases keep their order, and recency, tenure, number of
    purchases and hence the average gap (the observable rhythm) are unchanged.
    """
    if len(t) < 3:
        return t
    same = owner[1:] == owner[:-1]
    gap = np.diff(t)
    g_prev = np.concatenate(([np.inf], np.where(same, gap, np.inf)))
    g_next = np.concatenate((np.where(same, gap, np.inf), [np.inf]))
    peak, pull = (np.array(v)[season] for v in zip(*_SEASON_PEAKS.values(), strict=True))
    bound = np.minimum(pull * np.minimum(g_prev, g_next), (_MAX_REGULAR_GAP - np.maximum(g_prev, g_next)) / 2)
    bound = np.clip(np.nan_to_num(bound, nan=0.0, neginf=0.0, posinf=0.0), 0.0, None)
    day_of_year = np.mod(window.start_day_of_year + t, _DAYS_PER_YEAR)
    to_peak = np.mod(peak - day_of_year + _DAYS_PER_YEAR / 2, _DAYS_PER_YEAR) - _DAYS_PER_YEAR / 2
    return t + np.clip(to_peak, -bound, bound)


def _join_times(rng: np.random.Generator, limit: np.ndarray) -> np.ndarray:
    """Join times in [0, limit) whose density grows linearly (later joiners more common)."""
    u = rng.random(len(limit))
    g = _JOIN_GROWTH
    # Inverse of F(x) = (x + g x^2 / 2) / (1 + g / 2) on [0, 1].
    x = (np.sqrt(1.0 + 2.0 * g * u * (1.0 + g / 2.0)) - 1.0) / g
    return x * limit


def _poisson_times(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A homogeneous Poisson process per row on (lo, hi): returns (row index, time) per event."""
    length = np.maximum(hi - lo, 0.0)
    counts = rng.poisson(rate * length)
    owner = np.repeat(np.arange(len(lo)), counts)
    t = lo[owner] + rng.random(len(owner)) * length[owner]
    return owner, t


def _seconds_in_day(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """A time of day (seconds) per row, following the hour profile of its channel."""
    # The channels' hour CDFs laid end to end (channel c spans (c, c + 1]): one searchsorted.
    flat = (_HOUR_CDF + np.arange(len(_HOUR_CDF))[:, None]).ravel()
    position = np.searchsorted(flat, channel + rng.random(len(channel)), side="right")
    hour = np.minimum(position - channel * 24, 23)
    return hour * 3600 + rng.integers(0, 3600, len(channel))


# --- the simulated population of a block ---------------------------------------------------------

_PROSPECT, _NEW, _ACTIVE, _AT_RISK, _CHURNED, _REACTIVATED = range(len(STAGES))
_ALIVE_STAGES = (_NEW, _ACTIVE, _AT_RISK, _REACTIVATED)
# Simulated purchase ages (days before the end of the window) stay below the window length by this.
_EPS = 0.01


@dataclass
class _Population:
    """Latent state and orders of the customers of one block (times in float days).

    Per-customer arrays have one entry per customer of the block; ``order_*`` arrays one entry per
    order, sorted by customer then time (``order_owner`` is the customer's index in the block).
    """

    block: int
    offset: int
    group: np.ndarray
    stage: np.ndarray
    rhythm: np.ndarray  # mean days between purchases; NaN for prospects
    lam: np.ndarray  # 1 / rhythm (purchases per day); 0 for prospects
    p_drop: np.ndarray
    spend_mean: np.ndarray
    theta: np.ndarray  # category preferences (n x categories)
    signup: np.ndarray
    alive: np.ndarray
    engaged_until: np.ndarray  # web / app / social activity ends here (days)
    dormant_from: np.ndarray  # reactivated: no activity in (dormant_from, dormant_until)
    dormant_until: np.ndarray
    slow_from: np.ndarray  # at risk: activity slows down after this (days)
    email_subscribed: np.ndarray
    app_user: np.ndarray
    iot_owner: np.ndarray
    crm_tracked: np.ndarray
    sleeping_dog: np.ndarray
    base_response: np.ndarray
    uplift_email: np.ndarray
    uplift_email_xmas: np.ndarray
    uplift_discount: np.ndarray
    order_owner: np.ndarray
    order_ts: np.ndarray  # int64 epoch seconds
    order_channel: np.ndarray  # index into CHANNELS
    order_value: np.ndarray  # drawn order value in pounds
    n_orders: np.ndarray
    first_purchase: np.ndarray  # int64 epoch seconds, -1 for prospects
    last_purchase: np.ndarray

    @property
    def size(self) -> int:
        return len(self.group)

    @property
    def buyer(self) -> np.ndarray:
        return self.stage != _PROSPECT

    def activity(self, owner: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Relative activity of customers ``owner`` at times ``t``: used to thin their events."""
        factor = np.ones(len(owner))
        dormant = (t > self.dormant_from[owner]) & (t < self.dormant_until[owner])
        factor[dormant] = 0.05
        factor[t > self.slow_from[owner]] *= 1.0 / AT_RISK_SLOWDOWN
        return factor


def _rhythm_caps(days: float) -> np.ndarray:
    """The longest rhythm (days) whose stage construction fits a window of ``days``, per stage.

    A stage whose cap is below :data:`RHYTHM_MIN_DAYS` cannot be built in the window (see
    :func:`_stage_shares_for`). ``hi`` is the longest gap in rhythms, ``m`` the day margin.
    """
    hi, m = _GAP_RANGE[1], _DAY_MARGIN
    room = days - _EPS
    caps = np.full(len(STAGES), RHYTHM_MAX_DAYS)
    tenure_days = (room - ACTIVE_MIN_TENURE_DAYS - m) / hi
    # Active: the minimum tenure plus at most one gap (the purchase that reaches it).
    caps[_ACTIVE] = min((room - m) / (ACTIVE_MIN_TENURE_RHYTHMS + hi), tenure_days)
    # At risk: the last purchase up to AT_RISK_RHYTHMS[1] rhythms ago and the required earlier
    # purchases, with room for gaps longer than average (rare misfits are compressed); the tenure.
    caps[_AT_RISK] = min(room / (AT_RISK_RHYTHMS[1] + AT_RISK_MIN_EARLIER + 1.5), tenure_days)
    # Churned: the last purchase at least max(5 rhythms, 200 days) ago.
    caps[_CHURNED] = (room - m) / CHURN_MIN_RHYTHMS if room - m > CHURN_MIN_DAYS else 0.0
    # Reactivated: a return within RECENT_DAYS, the long gap, then one gap between two purchases.
    caps[_REACTIVATED] = (room - RECENT_DAYS - REACTIVATION_GAP_DAYS - m) / hi
    return np.minimum(caps, RHYTHM_MAX_DAYS)


def _stage_shares_for(days: float) -> np.ndarray:
    """The planted stage shares for a window of ``days``.

    Stages that do not fit the window get no customers; the buyer stages that fit share their
    customers in proportion to their shares (prospects keep :data:`PROSPECT_SHARE`). New customers
    always fit, so there always are buyers.
    """
    feasible = _rhythm_caps(days) >= RHYTHM_MIN_DAYS
    feasible[_NEW] = True
    shares = np.where(feasible, _STAGE_SHARES, 0.0)
    shares[_PROSPECT] = 0.0
    shares *= (1.0 - PROSPECT_SHARE) / shares.sum()
    shares[_PROSPECT] = PROSPECT_SHARE
    return shares


def _draw_rhythms(rng: np.random.Generator, group: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Rhythms from each group's Gamma, truncated to [RHYTHM_MIN_DAYS, cap] (inverse CDF)."""
    shape = _per_group(lambda g: g.buying.rhythm_shape)[group]
    scale = _per_group(lambda g: g.buying.rhythm_mean)[group] / shape
    p_lo = special.gammainc(shape, RHYTHM_MIN_DAYS / scale)
    p_hi = special.gammainc(shape, cap / scale)
    u = p_lo + rng.random(len(group)) * (p_hi - p_lo)
    return np.clip(special.gammaincinv(shape, u) * scale, RHYTHM_MIN_DAYS, cap)


def _gap_ratios(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaps in rhythms: Gamma(GAP_SHAPE) truncated to _GAP_RANGE (by redrawing), mean 1."""
    lo, hi = _GAP_RANGE
    x = rng.gamma(GAP_SHAPE, _GAP_SCALE, n)
    for _ in range(4):  # each round leaves about 6% of the previous misfits
        bad = np.flatnonzero((x < lo) | (x > hi))
        if not len(bad):
            break
        x[bad] = rng.gamma(GAP_SHAPE, _GAP_SCALE, len(bad))
    return np.clip(x, lo, hi)


def _segments(rng: np.random.Generator, rhythm: np.ndarray, counts: np.ndarray):
    """``counts[i]`` rhythm-spaced steps per row: (row, step index, gap, cumulated gaps).

    Step 0 of each row has gap 0; step k lies ``gap_1 + ... + gap_k`` days from step 0.
    """
    row = np.repeat(np.arange(len(counts)), counts)
    start = np.cumsum(counts) - counts
    step = np.arange(len(row)) - start[row]
    gap = _gap_ratios(rng, len(row)) * rhythm[row]
    gap[step == 0] = 0.0
    since = np.cumsum(gap)
    since -= since[start][row]
    return row, step, gap, since


def _backward(
    rng: np.random.Generator,
    days: float,
    anchor: np.ndarray,
    rhythm: np.ndarray,
    required: np.ndarray,
    most: np.ndarray,
    tenure: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Purchase ages (days before the end of the window) going back from an anchor purchase.

    Row i buys at age ``anchor[i]`` and, going back in time, one gap (see :func:`_gap_ratios`)
    earlier each time. Purchase k (0 = the anchor) is kept if ``k < required[i]``, or if
    ``k < most[i]``, the purchase after it is younger than ``tenure[i]`` (so the first purchase is
    at least ``tenure[i]`` old) and it lies inside the window. Rows whose required purchases do not
    fit in the window get their gaps compressed until they do (rare: the rhythm caps leave room).

    Returns (row, age) of the kept purchases, by row and then going back in time.
    """
    reach = np.clip(np.minimum(tenure, days) - anchor, 0.0, None)
    bound = np.floor(reach / (_GAP_RANGE[0] * rhythm)) + 2.0  # enough steps to reach the tenure
    counts = np.maximum(required, np.minimum(most, bound)).astype(np.int64)
    row, step, gap, since = _segments(rng, rhythm, counts)
    start = np.cumsum(counts) - counts
    span = since[start + required - 1]
    room = days - _EPS - anchor
    shrink = np.where(span > room, room / np.maximum(span, _EPS), 1.0)[row]
    age = anchor[row] + since * shrink
    younger = age - gap * shrink  # age of the purchase after this one
    keep = (step < required[row]) | ((step < most[row]) & (younger < tenure[row]) & (age < days - _EPS))
    return row[keep], age[keep]


def _forward(
    rng: np.random.Generator, first: np.ndarray, rhythm: np.ndarray, most: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``most[i]`` rhythm-spaced purchase ages from age ``first[i]`` towards the window end."""
    row, step, _, since = _segments(rng, rhythm, most.astype(np.int64))
    age = first[row] - since
    keep = (step == 0) | (age > _EPS)
    return row[keep], age[keep]


def _purchase_ages(
    rng: np.random.Generator, days: float, stage: np.ndarray, rhythm: np.ndarray, p_drop: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every buyer's purchase history, built backwards from the end of the window by stage.

    Returns (owner, age) per purchase (age: days before the end of the window, unsorted) and, per
    customer, the ages of the last purchase before the long gap of reactivated customers and of
    their return (NaN for the others).
    """
    n, m, hi = len(stage), _DAY_MARGIN, _GAP_RANGE[1]
    u = rng.random(n)  # where the stage's last purchase falls in its allowed range
    core = rng.random(n) < _LOYAL_CORE_SHARE
    recently = rng.exponential(_EXTRA_TENURE_DAYS, n)
    anywhen = rng.random(n)
    geometric = rng.geometric(np.clip(p_drop, 1e-6, 1.0)).astype(float)
    later = rng.random(n)
    anchor = np.full(n, np.nan)
    required = np.ones(n, dtype=np.int64)
    most = np.full(n, np.inf)
    tenure = np.zeros(n)

    # Active: the last purchase less than one rhythm ago; tenure >= max(2.5 rhythms, 120 days).
    a = stage == _ACTIVE
    anchor[a] = u[a] * (rhythm[a] - m)
    min_tenure = np.maximum(ACTIVE_MIN_TENURE_RHYTHMS * rhythm, ACTIVE_MIN_TENURE_DAYS) + m
    # Most joined recently; a loyal core (_LOYAL_CORE_SHARE) any time the window allows.
    spare = np.clip(days - _EPS - hi * rhythm - min_tenure, 0.0, None)
    extra = np.where(core, anywhen * spare, np.minimum(recently, spare))
    tenure[a] = min_tenure[a] + extra[a]

    # At risk: the last purchase 2.2-3.2 rhythms ago, at least 3 purchases before it, tenure >= 120.
    r = stage == _AT_RISK
    low, high = AT_RISK_RHYTHMS[0] * rhythm + m, AT_RISK_RHYTHMS[1] * rhythm - m
    anchor[r] = low[r] + u[r] * (high[r] - low[r])
    required[r] = AT_RISK_MIN_EARLIER + 1
    tenure[r] = ACTIVE_MIN_TENURE_DAYS + m

    # Churned: the last purchase at least max(5 rhythms, 200 days) ago, any time before that in the
    # window; Geometric(p_drop) purchases, fewer if the window starts before the earliest ones.
    c = stage == _CHURNED
    low = np.maximum(CHURN_MIN_RHYTHMS * rhythm, CHURN_MIN_DAYS) + m
    anchor[c] = low[c] + u[c] * (days - _EPS - low[c])
    most[c] = geometric[c]
    tenure[c] = np.inf

    # Reactivated: a return within RECENT_DAYS after a gap of at least REACTIVATION_GAP_DAYS, with
    # at least 2 purchases before the gap (more with probability 1 - p_drop each).
    x = stage == _REACTIVATED
    back = np.full(n, np.nan)
    back[x] = m + u[x] * (RECENT_DAYS - 2 * m)
    gap_low = back + REACTIVATION_GAP_DAYS + m
    spread = np.clip(days - _EPS - hi * rhythm - gap_low, 0.0, _REACTIVATION_GAP_SPREAD)
    anchor[x] = gap_low[x] + later[x] * spread[x]
    required[x] = REACTIVATED_MIN_BEFORE
    most[x] = np.maximum(geometric[x], REACTIVATED_MIN_BEFORE)
    tenure[x] = np.inf

    past = np.flatnonzero(a | r | c | x)
    row, age = _backward(rng, days, anchor[past], rhythm[past], required[past], most[past], tenure[past])
    owner = past[row]

    # New: the first purchase within RECENT_DAYS, then up to NEW_MAX_ORDERS - 1 more. Reactivated
    # customers buy the same way after their return.
    first = np.where(stage == _NEW, u * min(RECENT_DAYS - m, days - 2 * _EPS), back)
    recent = np.flatnonzero((stage == _NEW) | x)
    most_recent = np.where(x, _REACTIVATED_MAX_RECENT, NEW_MAX_ORDERS)[recent]
    row, recent_age = _forward(rng, first[recent], rhythm[recent], most_recent)
    owner = np.concatenate((owner, recent[row]))
    age = np.concatenate((age, recent_age))
    return owner, age, np.where(x, anchor, np.nan), back


def _simulate_population(
    rng: np.random.Generator, window: _Window, offset: int, n: int, block: int
) -> _Population:
    """Draw the latent state (group, stage, rhythm, Gamma-Gamma) and the orders of a block."""
    days = float(window.days)
    group = rng.choice(len(GROUPS), size=n, p=_GROUP_SHARES)

    # -- the planted stage first, then a rhythm that lets the stage's history fit the window ------
    shares = _stage_shares_for(days)
    stage = np.minimum(np.searchsorted(np.cumsum(shares), rng.random(n), side="right"), len(STAGES) - 1)
    prospect = stage == _PROSPECT
    rhythm = _draw_rhythms(rng, group, _rhythm_caps(days)[stage])
    p_drop = rng.beta(
        _per_group(lambda g: g.buying.dropout_a)[group], _per_group(lambda g: g.buying.dropout_b)[group]
    )
    owner, age, gap_from_age, return_age = _purchase_ages(rng, days, stage, rhythm, p_drop)
    order = np.lexsort((-age, owner))
    order_owner, order_t = owner[order], days - age[order]
    profile = np.array([list(_SEASON_PEAKS).index(g.buying.season) for g in GROUPS])[group]
    order_t = _seasonal_pull(window, order_owner, order_t, profile[order_owner])

    # -- order channel, time of day and value -----------------------------------------------------
    mix_mean = np.array([g.buying.channels for g in GROUPS])[group]
    channel_mix = rng.gamma(15.0 * mix_mean)
    channel_mix /= channel_mix.sum(axis=1, keepdims=True)
    channel_cdf = np.cumsum(channel_mix, axis=1)
    order_channel = (channel_cdf[order_owner] < rng.random(len(order_owner))[:, None]).sum(axis=1)
    order_channel = np.minimum(order_channel, len(CHANNELS) - 1)
    # Orders keep their day; the time within the day follows the channel's hour profile.
    order_day = np.minimum(np.floor(order_t).astype(np.int64), window.days - 1)
    order_ts = window.start_s + order_day * _SECONDS_PER_DAY + _seconds_in_day(rng, order_channel)
    order = np.lexsort((order_ts, order_owner))
    order_owner, order_ts, order_channel = order_owner[order], order_ts[order], order_channel[order]

    spend_p = _per_group(lambda g: g.buying.spend_p)[group]
    nu = rng.gamma(
        _per_group(lambda g: g.buying.spend_q)[group], 1.0 / _per_group(lambda g: g.buying.spend_gamma)[group]
    )
    spend_mean = spend_p / nu
    order_value = rng.gamma(spend_p[order_owner], 1.0 / nu[order_owner])
    order_value = np.maximum(order_value, 1.0)

    n_orders = np.bincount(order_owner, minlength=n)
    first_purchase = np.full(n, -1, dtype=np.int64)
    last_purchase = np.full(n, -1, dtype=np.int64)
    if len(order_owner):
        first_idx = np.concatenate(([0], np.cumsum(n_orders)))[:-1]
        has = n_orders > 0
        first_purchase[has] = order_ts[first_idx[has]]
        last_purchase[has] = order_ts[first_idx[has] + n_orders[has] - 1]
    first_day = (first_purchase - window.start_s) / _SECONDS_PER_DAY
    last_day = (last_purchase - window.start_s) / _SECONDS_PER_DAY
    alive = np.isin(stage, _ALIVE_STAGES)
    churned = stage == _CHURNED
    at_risk = stage == _AT_RISK
    reactivated = stage == _REACTIVATED

    # -- when the customer signed up and stopped being engaged ------------------------------------
    # Buyers join with their first purchase; prospects sign up any time (later ones more often).
    join = np.where(prospect, _join_times(rng, np.full(n, days)), first_day)
    # Half the buyers register a while before their first purchase, the rest when buying.
    early = rng.random(n) < 0.5
    # Capping the lead time at a random share of the join time keeps early joiners from all
    # signing up on the window's first day.
    lead_time = np.where(early, np.minimum(rng.exponential(20.0, n), join * rng.random(n)), 0.0)
    signup = np.where(prospect, join, join - lead_time)
    engaged_until = np.full(n, days)
    engaged_until[churned] = np.minimum(last_day[churned] + rng.exponential(60.0, n)[churned], days)
    engaged_until[prospect] = np.minimum(signup[prospect] + rng.exponential(240.0, n)[prospect], days)
    # At risk: activity slows down once the next purchase was due. Reactivated: dormant during
    # the long gap (from a few weeks after the last purchase before it until the return).
    slow_from = np.where(at_risk, last_day + rhythm, np.inf)
    dormant_from = np.where(reactivated, days - gap_from_age + rng.exponential(30.0, n), np.inf)
    dormant_until = np.where(reactivated, days - return_age, -np.inf)

    engagement = [g.engagement for g in GROUPS]
    email_subscribed = rng.random(n) < np.array([e.email_subscribed for e in engagement])[group]
    app_user = rng.random(n) < np.array([e.app_user for e in engagement])[group]
    iot_owner = rng.random(n) < np.array([e.iot_owner for e in engagement])[group]
    crm_tracked = rng.random(n) < _CRM_SHARE

    # -- planted campaign response ----------------------------------------------------------------
    # The rate the customer buys at now: 1 / rhythm while alive, slowed for at risk, 0 once gone.
    lam = np.where(prospect, 0.0, 1.0 / rhythm)
    current_rate = np.where(alive, lam, 0.0)
    current_rate[at_risk] /= AT_RISK_SLOWDOWN
    base_response = 1.0 - np.exp(-14.0 * current_rate)
    base_response[prospect] = 0.01
    base_response[churned] = 0.002
    noise = rng.gamma(4.0, 0.25, n)  # mean 1, sd 0.5: customers differ within a group
    response = [g.response for g in GROUPS]
    # Churned customers are hard to win back; prospects respond half as much as buyers.
    reach = np.where(churned, 0.3, np.where(prospect, 0.5, 1.0))
    uplift_email = np.array([r.uplift_email for r in response])[group] * noise * reach
    uplift_xmas = np.array([r.uplift_email_xmas for r in response])[group] * noise * reach
    uplift_discount = np.array([r.uplift_discount for r in response])[group] * rng.gamma(4.0, 0.25, n) * reach
    sleeping_dog = ~prospect & (rng.random(n) < SLEEPING_DOG_SHARE / (1.0 - PROSPECT_SHARE))
    annoyed = -rng.uniform(0.02, 0.08, n)
    uplift_email = np.where(sleeping_dog, annoyed, uplift_email)
    uplift_xmas = np.where(sleeping_dog, annoyed, uplift_xmas)
    # Probabilities stay probabilities: base + uplift within [0, 0.95].
    room_up, room_down = 0.95 - base_response, -base_response
    uplift_email = np.clip(uplift_email, room_down, room_up)
    uplift_xmas = np.clip(uplift_xmas, room_down, room_up)
    uplift_discount = np.clip(uplift_discount, 0.0, room_up)

    theta = rng.gamma(_category_alpha()[group])
    theta /= theta.sum(axis=1, keepdims=True)

    return _Population(
        block=block,
        offset=offset,
        group=group,
        stage=stage,
        rhythm=np.where(prospect, np.nan, rhythm),
        lam=lam,
        p_drop=p_drop,
        spend_mean=spend_mean,
        theta=theta,
        signup=signup,
        alive=alive,
        engaged_until=engaged_until,
        dormant_from=dormant_from,
        dormant_until=dormant_until,
        slow_from=slow_from,
        email_subscribed=email_subscribed,
        app_user=app_user,
        iot_owner=iot_owner,
        crm_tracked=crm_tracked,
        sleeping_dog=sleeping_dog,
        base_response=base_response,
        uplift_email=uplift_email,
        uplift_email_xmas=uplift_xmas,
        uplift_discount=uplift_discount,
        order_owner=order_owner,
        order_ts=order_ts,
        order_channel=order_channel,
        order_value=order_value,
        n_orders=n_orders,
        first_purchase=first_purchase,
        last_purchase=last_purchase,
    )


# --- campaigns -----------------------------------------------------------------------------------

_CAMPAIGN_TYPES = ("newsletter", "promo", "christmas")


@dataclass(frozen=True)
class _Campaigns:
    """The email campaign calendar: one campaign every few days, more before Christmas."""

    t: np.ndarray  # send time, float days since window start
    kind: np.ndarray  # index into _CAMPAIGN_TYPES
    campaign_id: pa.Array

    @classmethod
    def build(cls, rng: np.random.Generator, window: _Window) -> _Campaigns:
        regular = np.arange(2, window.days, _CAMPAIGN_EVERY_DAYS, dtype=float)
        dates = window.start.astype("datetime64[D]") + np.arange(window.days)
        month = dates.astype("datetime64[M]").astype(np.int64) % 12
        day_of_month = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
        # Extra Christmas campaigns on Mondays and Thursdays from mid November to 20 December.
        weekday = (dates.astype(np.int64) + 3) % 7  # 0 = Monday
        xmas_season = ((month == 10) & (day_of_month >= 15)) | ((month == 11) & (day_of_month <= 20))
        xmas = np.flatnonzero(xmas_season & np.isin(weekday, (0, 3))).astype(float)
        day = np.concatenate((regular, xmas))
        kind = np.concatenate((rng.choice(2, size=len(regular), p=[0.65, 0.35]), np.full(len(xmas), 2)))
        order = np.argsort(day, kind="stable")
        day, kind = day[order], kind[order]
        # Sent in the morning, at a fixed time per campaign.
        t = day + (8.0 + rng.integers(0, 4, len(day)) + rng.random(len(day))) / 24.0
        ids = _fixed_width("CMP", np.arange(1, len(day) + 1), 4)
        return cls(t, kind, ids)

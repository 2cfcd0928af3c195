"""The simulated population of a block: history window, latent state, orders and campaigns.

Everything here works in float days since the window start (see :class:`_Window`); the table
builders of :mod:`microseg.demo.tables` and :mod:`microseg.demo.events` turn it into rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from microseg.demo.columns import _fixed_width
from microseg.demo.groups import (
    _AT_RISK_PROBABILITY,
    _CAMPAIGN_EVERY_DAYS,
    _CRM_SHARE,
    _GROUP_SHARES,
    _JOIN_GROWTH,
    _MAX_RATE,
    _REACTIVATION_GAP_SIMULATED,
    _SECONDS_PER_DAY,
    AT_RISK_DAYS,
    AT_RISK_SLOWDOWN,
    CHANNELS,
    GROUPS,
    PROSPECT_SHARE,
    REACTIVATED_SHARE,
    RECENT_DAYS,
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

# Monthly purchase intensity of each seasonal profile, Jan..Dec (normalised to mean 1 later).
_SEASON_MONTHS = {
    "retail": (0.85, 0.85, 0.95, 1.0, 1.0, 0.95, 1.0, 1.0, 0.95, 1.0, 1.25, 1.45),
    "gifting": (0.5, 0.9, 0.9, 0.5, 0.6, 0.6, 0.5, 0.5, 0.5, 0.7, 2.6, 4.5),
    "garden": (0.5, 0.6, 1.1, 1.8, 1.9, 1.6, 1.2, 1.0, 0.8, 0.7, 0.6, 0.8),
}


@dataclass(frozen=True)
class _Window:
    """The history window: whole days ending at the end of ``as_of``.

    Simulated times are float days since ``start``; ``cum_intensity[profile]`` is the cumulative
    seasonal purchase intensity at the day boundaries 0..days, used to draw purchase times.
    """

    start: np.datetime64  # first second of the window
    days: int
    cum_intensity: dict[str, np.ndarray]

    @classmethod
    def build(cls, as_of: dt.date, years: float) -> _Window:
        days = int(round(years * 365.25))
        end = np.datetime64(as_of, "D") + np.timedelta64(1, "D")
        start = end - np.timedelta64(days, "D")
        dates = start + np.arange(days)
        cum = {
            name: np.concatenate(([0.0], np.cumsum(_season_intensity(name, dates))))
            for name in _SEASON_MONTHS
        }
        return cls(start.astype("datetime64[s]"), days, cum)

    @property
    def start_s(self) -> int:
        return int(self.start.astype(np.int64))

    @property
    def end_s(self) -> int:
        """First second after the window (midnight after as_of)."""
        return self.start_s + self.days * _SECONDS_PER_DAY

    def seconds(self, t: np.ndarray) -> np.ndarray:
        """Float days since start -> int64 epoch seconds, clipped into the window."""
        secs = self.start_s + np.floor(t * _SECONDS_PER_DAY).astype(np.int64)
        return np.clip(secs, self.start_s, self.end_s - 1)


def _season_intensity(profile: str, dates: np.ndarray) -> np.ndarray:
    """Daily purchase intensity of a seasonal profile, averaging 1 over a calendar year."""

    def raw(days: np.ndarray) -> np.ndarray:
        month = days.astype("datetime64[M]").astype(np.int64) % 12
        day_of_month = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
        weight = np.asarray(_SEASON_MONTHS[profile])[month]
        if profile == "gifting":
            # Gifts are bought before Christmas, not after it.
            weight = np.where((month == 11) & (day_of_month > 24), 0.8, weight)
        return weight

    reference_year = np.arange("2023-01-01", "2024-01-01", dtype="datetime64[D]")
    return raw(dates) / raw(reference_year).mean()


def _draw_seasonal_times(
    rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Draw one time per row in (lo, hi) with density proportional to the seasonal intensity.

    Inverse-CDF sampling on the piecewise-linear cumulative intensity: exact for an intensity that
    is constant within each day.
    """
    grid = np.arange(len(cum), dtype=float)
    c_lo, c_hi = np.interp(lo, grid, cum), np.interp(hi, grid, cum)
    return np.interp(c_lo + rng.random(len(lo)) * (c_hi - c_lo), cum, grid)


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
    lam: np.ndarray
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


def _simulate_population(
    rng: np.random.Generator, window: _Window, offset: int, n: int, block: int
) -> _Population:
    """Draw the latent state (group, BG/NBD, Gamma-Gamma, cohorts) and the orders of a block."""
    days = float(window.days)
    group = rng.choice(len(GROUPS), size=n, p=_GROUP_SHARES)

    # -- lifecycle cohorts: prospects, then the planted reactivated and at-risk cohorts ----------
    u_cohort = rng.random(n)
    prospect = u_cohort < PROSPECT_SHARE
    # Reactivation needs: some buying, a gap, and a return within the last RECENT_DAYS.
    reactivation_room = days - RECENT_DAYS - _REACTIVATION_GAP_SIMULATED - 30.0
    reactivated = ~prospect & (u_cohort < PROSPECT_SHARE + REACTIVATED_SHARE) & (reactivation_room > 0)

    lam = rng.gamma(
        _per_group(lambda g: g.buying.rate_shape)[group],
        1.0 / _per_group(lambda g: g.buying.rate_rate)[group],
    )
    lam = np.minimum(lam, _MAX_RATE)
    p_drop = rng.beta(
        _per_group(lambda g: g.buying.dropout_a)[group], _per_group(lambda g: g.buying.dropout_b)[group]
    )
    at_risk_room = days - AT_RISK_DAYS - RECENT_DAYS
    eligible = ~prospect & ~reactivated & (lam * AT_RISK_DAYS >= 2.0) & (at_risk_room > 0)
    at_risk = eligible & (rng.random(n) < _AT_RISK_PROBABILITY)
    cohort = reactivated | at_risk

    # -- join (first purchase, or signup of a prospect) -------------------------------------------
    limit = np.full(n, days)
    limit[reactivated] = max(reactivation_room, 0.0)
    limit[at_risk] = max(at_risk_room, 0.0)
    join = _join_times(rng, limit)

    # -- BG/NBD purchases -------------------------------------------------------------------------
    # K = the purchase after which the customer drops out (geometric); cohorts are kept alive.
    dropout_after = rng.geometric(p_drop)
    dropout_after[cohort] = np.iinfo(np.int64).max
    season = np.array([g.buying.season for g in GROUPS])[group]
    # Repeat purchases if the customer never dropped out: a seasonal Poisson process on (join, end).
    expected = np.zeros(n)
    for profile, cum in window.cum_intensity.items():
        mask = (season == profile) & ~prospect
        expected[mask] = lam[mask] * (cum[-1] - np.interp(join[mask], np.arange(len(cum)), cum))
    repeats = rng.poisson(expected)
    rep_owner = np.repeat(np.arange(n), repeats)
    rep_t = np.empty(len(rep_owner))
    for profile, cum in window.cum_intensity.items():
        mask = season[rep_owner] == profile
        owners = rep_owner[mask]
        rep_t[mask] = _draw_seasonal_times(rng, cum, join[owners], np.full(len(owners), days))
    order = np.lexsort((rep_t, rep_owner))
    rep_owner, rep_t = rep_owner[order], rep_t[order]
    starts = np.concatenate(([0], np.cumsum(repeats)))[:-1]
    rank = np.arange(len(rep_owner)) - starts[rep_owner]  # 0 for the second purchase
    # Purchase number rank + 2 happens only if the customer has not dropped out before it.
    keep = rank + 2 <= dropout_after[rep_owner]
    alive = ~prospect & (repeats + 1 < dropout_after)

    # At-risk: the rate falls to 1/AT_RISK_SLOWDOWN in the last AT_RISK_DAYS (thinning).
    slow_from = np.full(n, np.inf)
    slow_from[at_risk] = days - AT_RISK_DAYS
    slowed = rep_t > slow_from[rep_owner]
    keep &= ~slowed | (rng.random(len(rep_owner)) < 1.0 / AT_RISK_SLOWDOWN)

    # Reactivated: no purchase in (gap_from, returns_at), a purchase at returns_at, alive after.
    returns_at = np.full(n, np.inf)
    gap_from = np.full(n, np.inf)
    n_react = int(reactivated.sum())
    returns_at[reactivated] = days - rng.uniform(0.5, RECENT_DAYS - 1.0, n_react)
    latest_gap = returns_at[reactivated] - _REACTIVATION_GAP_SIMULATED
    gap_from[reactivated] = join[reactivated] + rng.random(n_react) * (latest_gap - join[reactivated])
    keep &= ~((rep_t > gap_from[rep_owner]) & (rep_t < returns_at[rep_owner]))

    buyers = np.flatnonzero(~prospect)
    react_idx = np.flatnonzero(reactivated)
    order_owner = np.concatenate((buyers, rep_owner[keep], react_idx))
    order_t = np.concatenate((join[buyers], rep_t[keep], returns_at[react_idx]))

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

    stage = np.full(n, _ACTIVE, dtype=np.int64)
    recent = first_purchase >= window.end_s - RECENT_DAYS * _SECONDS_PER_DAY
    stage[alive & recent] = _NEW
    stage[~alive] = _CHURNED
    stage[at_risk] = _AT_RISK
    stage[reactivated] = _REACTIVATED
    stage[prospect] = _PROSPECT

    # -- when the customer signed up and stopped being engaged ------------------------------------
    # Half the buyers register a while before their first purchase, the rest when buying.
    early = rng.random(n) < 0.5
    # Capping the lead time at a random share of the join time keeps early joiners from all
    # signing up on the window's first day.
    lead_time = np.where(early, np.minimum(rng.exponential(20.0, n), join * rng.random(n)), 0.0)
    signup = np.where(prospect, join, join - lead_time)
    last_day = (last_purchase - window.start_s) / _SECONDS_PER_DAY
    engaged_until = np.full(n, days)
    churned = stage == _CHURNED
    engaged_until[churned] = np.minimum(last_day[churned] + rng.exponential(60.0, n)[churned], days)
    engaged_until[prospect] = np.minimum(signup[prospect] + rng.exponential(240.0, n)[prospect], days)

    engagement = [g.engagement for g in GROUPS]
    email_subscribed = rng.random(n) < np.array([e.email_subscribed for e in engagement])[group]
    app_user = rng.random(n) < np.array([e.app_user for e in engagement])[group]
    iot_owner = rng.random(n) < np.array([e.iot_owner for e in engagement])[group]
    crm_tracked = rng.random(n) < _CRM_SHARE

    # -- planted campaign response ----------------------------------------------------------------
    # The rate the customer buys at now: lam while alive, slowed for at risk, zero once dropped out.
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

    dormant_from = np.where(reactivated, gap_from, np.inf)
    return _Population(
        block=block,
        offset=offset,
        group=group,
        stage=stage,
        lam=np.where(prospect, 0.0, lam),
        p_drop=p_drop,
        spend_mean=spend_mean,
        theta=theta,
        signup=signup,
        alive=alive,
        engaged_until=engaged_until,
        dormant_from=dormant_from,
        dormant_until=np.where(reactivated, returns_at, -np.inf),
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

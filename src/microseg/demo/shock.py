"""A planted movement ("shock"): a cohort of frequent buyers who stop buying from a given day on.

Tests of migration tracking and alerts need a known event to detect. With ``shock=`` the demo
generator picks a cohort of customers who were buying regularly just before ``start`` and removes
every purchase event of theirs (purchase lines, refunds, cancellations) from ``start`` on; their
browsing sessions from ``start`` on are thinned to :data:`SHOCK_WEB_SHARE` and the cart and
checkout page views of the orders they no longer place go. Their email, social, CRM and app / IoT
events are unchanged, and nothing changes for anybody else: the cohort and the thinning draw from
random streams of their own, and the removed rows keep the event ids they had, so every other row
-- event id included -- is the one the generator writes without a shock.

The truth keeps describing the customers as planted (their group, rhythm, stage, number of orders
and so on, as if there were no shock); its ``shocked`` column marks the cohort.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from microseg.demo.groups import _SECONDS_PER_DAY
from microseg.demo.population import _Population, _Window
from microseg.errors import InvalidInputError

#: Share of a cohort member's web browsing sessions that survive from the shock's start on.
SHOCK_WEB_SHARE = 0.25


@dataclass(frozen=True)
class Shock:
    """A cohort of customers who stop buying from ``start`` on (a planted churn wave).

    Eligible are the *frequent buyers who are buying at* ``start``: customers whose planted buying
    rate (truth column ``lam``, one over the rhythm) is at least ``min_orders_per_month`` orders per
    30 days and whose planted history has them active just before ``start`` -- their last purchase
    before it less than one rhythm earlier, the generator's own definition of an active customer --
    and buying again on or after it (so the shock removes something). ``share`` of them, chosen
    at random per block of customers, form the cohort.

    Rhythms are 14 to 180 days, so the rate is at most about 2.1 orders a month; the default 0.4
    (a rhythm of 75 days or less, the more frequent third of the buyers) gives a cohort of about
    300 in the default demo (10,000 customers, three years to 31 December 2025) with ``start`` on
    1 July 2025, nearly all of whom bought in the 60 days before it.

    >>> import datetime as dt
    >>> Shock(dt.date(2025, 7, 1)).max_rhythm_days
    75.0
    """

    start: dt.date
    share: float = 0.3
    min_orders_per_month: float = 0.4

    def __post_init__(self) -> None:
        start = self.start
        if isinstance(start, dt.datetime):
            start = start.date()
            object.__setattr__(self, "start", start)
        if not isinstance(start, dt.date):
            raise InvalidInputError(f"shock start must be a datetime.date, got {self.start!r}")
        if not _is_number(self.share) or not 0.0 <= self.share <= 1.0:
            raise InvalidInputError(f"shock share must be a number between 0 and 1, got {self.share!r}")
        if not _is_number(self.min_orders_per_month) or not self.min_orders_per_month > 0:
            raise InvalidInputError(
                f"shock min_orders_per_month must be a positive number, got {self.min_orders_per_month!r}"
            )

    @property
    def max_rhythm_days(self) -> float:
        """The longest planted rhythm (mean days between purchases) of an eligible customer."""
        return 30.0 / self.min_orders_per_month

    def to_dict(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "share": self.share,
            "min_orders_per_month": self.min_orders_per_month,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Shock:
        return cls(dt.date.fromisoformat(data["start"]), data["share"], data["min_orders_per_month"])


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float | np.integer | np.floating)
        and math.isfinite(value)
    )


def _check_shock_fits(shock: Shock | None, window: _Window, as_of: dt.date) -> None:
    """Raise InvalidInputError unless the shock starts after the window's first day and by ``as_of``."""
    if shock is None:
        return
    if not isinstance(shock, Shock):
        raise InvalidInputError(f"shock must be a Shock or None, got {shock!r}")
    first_day = window.start.astype("datetime64[D]").astype(dt.date)
    if not first_day < shock.start <= as_of:
        raise InvalidInputError(
            f"shock start must lie after the first day of the history ({first_day}) and on or "
            f"before as_of ({as_of}), got {shock.start}"
        )


@dataclass(frozen=True)
class _Cohort:
    """The shock as applied to one block: who is in the cohort and when they stop."""

    member: np.ndarray  # per customer of the block
    start_s: int  # epoch seconds of the first moment without purchases

    @classmethod
    def choose(cls, shock: Shock, rng: np.random.Generator, pop: _Population) -> _Cohort:
        """The cohort of a block: ``round(share * eligible)`` eligible customers, drawn by ``rng``.

        Every customer gets a random key, eligible or not, and the eligible ones with the smallest
        keys are chosen, so a larger share keeps the cohort of a smaller one.
        """
        start_s = int(np.datetime64(shock.start, "s").astype(np.int64))
        n, owner, ts = pop.size, pop.order_owner, pop.order_ts
        before = ts < start_s
        last_before = np.full(n, -np.inf)
        np.maximum.at(last_before, owner[before], ts[before].astype(float))
        with np.errstate(invalid="ignore"):  # prospects have no rhythm (NaN): never eligible
            frequent = pop.buyer & (30.0 * pop.lam >= shock.min_orders_per_month)
            active = (start_s - last_before) < pop.rhythm * _SECONDS_PER_DAY
        buys_again = np.bincount(owner[~before], minlength=n) > 0
        eligible = np.flatnonzero(frequent & active & buys_again)

        key = rng.random(n)
        chosen = eligible[np.argsort(key[eligible], kind="stable")[: round(shock.share * len(eligible))]]
        member = np.zeros(n, dtype=bool)
        member[chosen] = True
        return cls(member, start_s)

    def keeps(self, owner: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """False for the rows of cohort members from the start on (``owner`` < block size)."""
        return ~(self.member[owner] & (ts >= self.start_s))

    def keeps_sessions(
        self, rng: np.random.Generator, owner: np.ndarray, ts: np.ndarray, browsing: np.ndarray
    ) -> np.ndarray:
        """False for the web sessions the shock removes.

        ``owner`` is the session's customer (the block size and above: anonymous visitors, never
        affected); ``ts`` the session's start or, for a checkout session, the time of the order it
        leads to. Browsing sessions of members from the start on survive with probability
        :data:`SHOCK_WEB_SHARE`; checkout sessions of orders that are gone all go.
        """
        member = np.zeros(len(owner), dtype=bool)
        customer = owner < len(self.member)
        member[customer] = self.member[owner[customer]]
        thinned_out = rng.random(len(owner)) >= SHOCK_WEB_SHARE
        return ~(member & (ts >= self.start_s) & (~browsing | thinned_out))

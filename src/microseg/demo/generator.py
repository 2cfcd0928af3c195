"""Seeded, realistic, scalable demo data with planted truth.

:func:`generate_demo` writes a small retailer's data (customers, products and six event sources)
plus the *truth* that generated it, so that every analysis microseg runs on the demo data can be
checked against what was planted.

Scale and determinism
---------------------
Customers are simulated in fixed blocks of :data:`BLOCK_SIZE`. Block ``b`` draws its random
numbers from ``SeedSequence(seed, spawn_key=(b + 1, stream))`` -- the ``stream``-th child of the
``(b + 1)``-th child of ``SeedSequence(seed)`` -- with one stream for the simulated population
(latent state and orders), one for the customers file and one for each event kind. Hence:

* the same seed gives byte-identical files (with the same numpy and pyarrow versions);
* leaving a kind out (``kinds=``) does not change the other files;
* memory stays bounded (one block in memory at a time) and every block is written as its own
  part file (``purchases-00000.parquet``, ...), so 10M customers work like 10k;
* all simulation is vectorised numpy over the customers and events of a block.

The product catalogue and the email campaign calendar come from child 0 (``spawn_key=(0, i)``)
and do not depend on the number of customers.

The generative model
--------------------
Each customer belongs to one behavioural group of :data:`GROUPS`. Groups differ in purchase
frequency, spend per order, category preferences (a Dirichlet concentrated on the group's 2-3
planted categories), channel mix, seasonality and email / web / app / social engagement;
demographics (age, gender, region, acquisition channel) correlate with the group, but weakly.

*Buying* follows BG/NBD. A buyer's first purchase falls in the history window, later joiners being
more common (a growing business). While alive the customer buys as a Poisson process with rate
``lam ~ Gamma(r, alpha)`` per day, modulated by the group's seasonal profile (which averages 1 over
a year, so ``lam`` stays "purchases per day"). After every purchase the customer drops out with
probability ``p_drop ~ Beta(a, b)``; the dropout time is the time of that last purchase.

*Spend* follows the Gamma-Gamma model of Fader & Hardie: ``nu ~ Gamma(q, rate=gamma)`` per customer
and each order's value ``~ Gamma(p, rate=nu)``, so the customer's expected order value is
``spend_mean = p / nu`` (the truth column). The drawn value becomes 1-5 line items: the value is
split at random across the lines, each line picks a category from the customer's preferences and
then one of the two products whose prices bracket the line's budget (with the probabilities that
make the expected price equal the budget), and the quantity is ``round(budget / price)``. The line items therefore add up to the drawn value up to
the price granularity of the catalogue. Planted *companion products* are then added: when an anchor
product is bought, each of its 1-2 companions joins the same order with the pair's ``strength``
probability (``truth_pairs``); lines of the same product in one order are merged. So a customer's
realised mean order value tracks ``spend_mean`` (log correlation about 0.9 across customers,
median ratio about 1.03), a little above it because companions come on top of the drawn value and
budgets below a category's cheapest product still buy one unit of it. A
few lines are later refunded or cancelled (rows with negative quantity that reference the order
and product of the line).

Planted lifecycle (truth column ``stage``, as of the end of ``as_of``)
----------------------------------------------------------------------
* ``prospect``: signed up (customers file, maybe web / email / app events) but never bought;
  :data:`PROSPECT_SHARE` of customers.
* ``reactivated``: a planted cohort (:data:`REACTIVATED_SHARE` of customers) that bought, stayed
  away for at least :data:`REACTIVATION_GAP_DAYS` days and came back with a purchase within the
  last :data:`RECENT_DAYS` days. They are alive. Needs a window of at least about 1.4 years.
* ``at_risk``: a planted cohort (:data:`AT_RISK_SHARE` of customers) of alive customers whose
  purchase rate fell to 1/:data:`AT_RISK_SLOWDOWN` of their usual rate during the last
  :data:`AT_RISK_DAYS` days. They are drawn among customers who would normally buy at least twice in
  that period, so the slowdown is visible. Their web / app activity slows down too.
* ``churned``: dropped out (BG/NBD) before the end of ``as_of``; no purchase after ``dropout_at``
  (the time of the last purchase). This includes one-time buyers who dropped out right after their
  first purchase, however recent it was: the truth is the latent state, not what the data shows.
* ``new``: alive, first purchase within the last :data:`RECENT_DAYS` days.
* ``active``: alive, first purchase older than that.

Planted campaign response (truth columns)
-----------------------------------------
``base_response`` is the probability of buying in a 14-day window without any contact; it follows
from the purchase model (``1 - exp(-14 * rate)`` with the current rate; near 0 for churned
customers). ``uplift_email`` / ``uplift_email_xmas`` / ``uplift_discount`` are the extra
probabilities when sent an email (outside / inside the pre-Christmas season, 15 Nov - 24 Dec) or a
discount. They vary by group (bargain hunters respond to discounts, loyal big spenders barely need
them, occasional gifters respond to email before Christmas) with customer-level noise; a share of
:data:`SLEEPING_DOG_SHARE` of buyers are "sleeping dogs" whose email uplift is negative.

Files
-----
See :func:`generate_demo`. Column names are the canonical ones of :mod:`microseg.schema`, so
every file imports with an identity mapping. Timestamps are UTC; in CSV and JSON they are written
as ``YYYY-MM-DD HH:MM:SS``. Money has two decimals (decimal128 in parquet).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from scipy import special

from microseg.demo import catalog as cat

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AT_RISK_SHARE",
    "BLOCK_SIZE",
    "FORMATS",
    "GROUPS",
    "KINDS",
    "PROSPECT_SHARE",
    "REACTIVATED_SHARE",
    "STAGES",
    "DemoManifest",
    "Group",
    "generate_demo",
]

# --- constants -----------------------------------------------------------------------------------

#: Customers per block. A module constant, not a parameter: the random streams are derived per
#: block, so changing it changes the data. Tests may monkeypatch it.
BLOCK_SIZE = 100_000
#: Event kinds that can be generated, each written as ``<kind>-NNNNN.<ext>`` part files.
KINDS: tuple[str, ...] = ("purchases", "web", "email", "social", "crm", "app")
#: Output formats and their file extensions.
FORMATS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
#: Lifecycle stages of the truth file.
STAGES: tuple[str, ...] = ("prospect", "new", "active", "at_risk", "churned", "reactivated")

PROSPECT_SHARE = 0.05
REACTIVATED_SHARE = 0.03
AT_RISK_SHARE = 0.05
SLEEPING_DOG_SHARE = 0.03
RECENT_DAYS = 90
REACTIVATION_GAP_DAYS = 365
AT_RISK_DAYS = 180
AT_RISK_SLOWDOWN = 5.0
CURRENCY = "GBP"
COUNTRY = "GB"
MAX_CUSTOMERS = 99_999_999  # customer ids have 8 digits
MAX_YEARS = 30.0

# Reactivated customers return at least this long after their last pre-gap purchase. A few days
# more than REACTIVATION_GAP_DAYS so that moving purchases within their day cannot break the gap.
_REACTIVATION_GAP_SIMULATED = REACTIVATION_GAP_DAYS + 5
# Joiners in the last year are this much more common than in the first (growing business).
_JOIN_GROWTH = 1.0
# A Poisson rate above this (purchases per day) is not a plausible retail customer.
_MAX_RATE = 0.5
# Days of browsing before signing up (anonymous sessions with the customer's cookie).
_PRE_SIGNUP_DAYS = 30.0
# Anonymous visitors who never identify, per customer of the block.
_ANONYMOUS_VISITORS_PER_CUSTOMER = 0.2
# Cookie numbers reserved for each block's anonymous visitors.
_VISITOR_NUMBERS_PER_BLOCK = 10**6
# Email: a campaign every this many days, each sent to a random share of subscribers.
_CAMPAIGN_EVERY_DAYS = 7
_CAMPAIGN_REACH = {"newsletter": 0.12, "promo": 0.12, "christmas": 0.35}
# IoT devices report every this many days.
_HEARTBEAT_DAYS = 14.0
# Share of CRM-tracked customers (they have a crm_id and lead events).
_CRM_SHARE = 0.3
_REFUND_DELAY_DAYS = (2.0, 30.0)
_CANCEL_DELAY_HOURS = (0.1, 24.0)
_CANCEL_RATE = 0.01

_SECONDS_PER_DAY = 86_400
_ID_BLOCK_DIGITS = 5  # block number inside event and order ids: up to 99,999 blocks
_EVENT_SEQ_DIGITS = 9
_ORDER_SEQ_DIGITS = 8

#: Event-id letter of each kind: ids look like ``EP000030000012345`` (kind, block, sequence).
_KIND_LETTER = {"purchases": "P", "web": "W", "email": "M", "social": "S", "crm": "C", "app": "A"}
#: Random stream number of each part of a block (see the module docstring).
_STREAM = {"population": 0, "customers": 1, **{k: 2 + i for i, k in enumerate(KINDS)}}
_CATALOG_STREAM, _CAMPAIGN_STREAM = 0, 1

CHANNELS: tuple[str, ...] = ("pos", "web", "app")

# --- behavioural groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class Buying:
    """How a group buys. Time unit: days; money: pounds.

    ``lam ~ Gamma(rate_shape, rate=rate_rate)`` purchases per day; ``p_drop ~ Beta(dropout_a,
    dropout_b)``; Gamma-Gamma spend with ``nu ~ Gamma(spend_q, rate=spend_gamma)`` and order value
    ``~ Gamma(spend_p, rate=nu)`` (mean order value ``spend_p * spend_gamma / (spend_q - 1)``).
    """

    rate_shape: float
    rate_rate: float
    dropout_a: float
    dropout_b: float
    spend_p: float
    spend_q: float
    spend_gamma: float
    extra_lines: float  # lines per order = 1 + Binomial(4, extra_lines)
    categories: tuple[tuple[str, float], ...]  # planted categories with relative weights
    channels: tuple[float, float, float]  # order channel mix: pos, web, app
    season: str  # "retail", "gifting" or "garden"
    discount_share: float  # share of lines bought at a discount
    refund_rate: float  # share of lines refunded later

    @property
    def mean_rate(self) -> float:
        return self.rate_shape / self.rate_rate

    @property
    def mean_order_value(self) -> float:
        return self.spend_p * self.spend_gamma / (self.spend_q - 1.0)


@dataclass(frozen=True)
class Engagement:
    """How a group uses the other channels (rates per year while engaged)."""

    web_sessions_per_year: float
    pages_per_session: float
    email_subscribed: float
    email_open: float
    click_newsletter: float  # P(click | open)
    click_promo: float
    click_christmas: float
    app_user: float
    app_opens_per_year: float
    add_to_cart: float  # P(add_to_cart in an app session)
    wishlist_add: float
    social_follow: float  # expected number of networks followed
    networks: tuple[float, float, float, float]  # instagram, facebook, tiktok, x
    iot_owner: float
    crm_opportunity: float  # P(a sales opportunity | CRM-tracked buyer)


@dataclass(frozen=True)
class Demographics:
    """Mild demographic tilts of a group."""

    birth_year_mean: float
    female_share: float
    regions: tuple[str, ...]  # over-represented regions
    acquisition: tuple[float, ...]  # weights over catalog.ACQUISITION_CHANNELS


@dataclass(frozen=True)
class Response:
    """Mean campaign uplifts of a group (extra probability of buying within 14 days)."""

    uplift_email: float
    uplift_email_xmas: float
    uplift_discount: float


@dataclass(frozen=True)
class Group:
    """A planted behavioural group: its name, share of customers and generative parameters."""

    name: str
    share: float
    description: str
    buying: Buying
    engagement: Engagement
    demographics: Demographics
    response: Response

    @property
    def planted_categories(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.buying.categories)


# The rates below are calibrated so that the population (prospects included) averages about 2.9
# orders per customer over a 3-year window, matching the benchmark references (1M customers ~
# 2.9M orders); see tests/test_demo_generator.py.
GROUPS: tuple[Group, ...] = (
    Group(
        "loyal_big_spenders",
        0.15,
        "frequent, high spend, electronics and home; little need for discounts",
        Buying(
            rate_shape=3.0, rate_rate=290.0, dropout_a=1.0, dropout_b=14.0,
            spend_p=6.0, spend_q=4.0, spend_gamma=75.0, extra_lines=0.3,
            categories=(("electronics", 3.0), ("home", 2.0), ("sports", 1.0)),
            channels=(0.45, 0.40, 0.15), season="retail", discount_share=0.05, refund_rate=0.03,
        ),
        Engagement(
            web_sessions_per_year=4.0, pages_per_session=2.2, email_subscribed=0.8,
            email_open=0.45, click_newsletter=0.15, click_promo=0.10, click_christmas=0.15,
            app_user=0.4, app_opens_per_year=6.0, add_to_cart=0.25, wishlist_add=0.1,
            social_follow=0.2, networks=(0.3, 0.4, 0.05, 0.25), iot_owner=0.06,
            crm_opportunity=0.35,
        ),
        Demographics(1974, 0.42, ("London", "South East"), (2, 1, 1, 2, 3, 3, 1)),
        Response(uplift_email=0.01, uplift_email_xmas=0.015, uplift_discount=0.01),
    ),
    Group(
        "bargain_hunters",
        0.25,
        "frequent small baskets of grocery and household goods; click on promotions",
        Buying(
            rate_shape=2.5, rate_rate=255.0, dropout_a=2.0, dropout_b=12.0,
            spend_p=8.0, spend_q=5.0, spend_gamma=12.5, extra_lines=0.55,
            categories=(("grocery", 3.0), ("household", 2.0)),
            channels=(0.60, 0.25, 0.15), season="retail", discount_share=0.35, refund_rate=0.01,
        ),
        Engagement(
            web_sessions_per_year=3.0, pages_per_session=1.8, email_subscribed=0.85,
            email_open=0.35, click_newsletter=0.08, click_promo=0.45, click_christmas=0.2,
            app_user=0.35, app_opens_per_year=5.0, add_to_cart=0.3, wishlist_add=0.05,
            social_follow=0.15, networks=(0.2, 0.6, 0.1, 0.1), iot_owner=0.01,
            crm_opportunity=0.02,
        ),
        Demographics(1982, 0.55, ("North West", "North East", "West Midlands"),
                     (2, 3, 1, 2, 1, 2, 4)),
        Response(uplift_email=0.02, uplift_email_xmas=0.02, uplift_discount=0.12),
    ),
    Group(
        "occasional_gifters",
        0.25,
        "rare purchases of toys, books and gifts with a strong November-December peak",
        Buying(
            rate_shape=2.0, rate_rate=1300.0, dropout_a=2.0, dropout_b=4.0,
            spend_p=5.0, spend_q=4.0, spend_gamma=36.0, extra_lines=0.2,
            categories=(("toys", 3.0), ("books", 2.0), ("beauty", 0.7)),
            channels=(0.30, 0.60, 0.10), season="gifting", discount_share=0.10, refund_rate=0.04,
        ),
        Engagement(
            web_sessions_per_year=2.0, pages_per_session=2.5, email_subscribed=0.6,
            email_open=0.2, click_newsletter=0.05, click_promo=0.06, click_christmas=0.3,
            app_user=0.1, app_opens_per_year=2.0, add_to_cart=0.3, wishlist_add=0.2,
            social_follow=0.1, networks=(0.2, 0.6, 0.05, 0.15), iot_owner=0.01,
            crm_opportunity=0.02,
        ),
        Demographics(1966, 0.6, ("South West", "East of England", "Scotland"),
                     (2, 4, 1, 2, 1, 2, 1)),
        Response(uplift_email=0.01, uplift_email_xmas=0.08, uplift_discount=0.03),
    ),
    Group(
        "fashion_fans",
        0.20,
        "fashion and beauty, app and social heavy, many returns",
        Buying(
            rate_shape=2.0, rate_rate=380.0, dropout_a=2.0, dropout_b=7.0,
            spend_p=6.0, spend_q=4.0, spend_gamma=35.0, extra_lines=0.35,
            categories=(("fashion", 3.0), ("beauty", 2.0)),
            channels=(0.20, 0.30, 0.50), season="retail", discount_share=0.12, refund_rate=0.09,
        ),
        Engagement(
            web_sessions_per_year=4.0, pages_per_session=2.5, email_subscribed=0.75,
            email_open=0.3, click_newsletter=0.2, click_promo=0.25, click_christmas=0.15,
            app_user=0.75, app_opens_per_year=18.0, add_to_cart=0.35, wishlist_add=0.35,
            social_follow=1.4, networks=(0.5, 0.1, 0.35, 0.05), iot_owner=0.01,
            crm_opportunity=0.02,
        ),
        Demographics(1996, 0.75, ("London", "North West", "Scotland"), (1, 2, 5, 1, 2, 1, 2)),
        Response(uplift_email=0.04, uplift_email_xmas=0.05, uplift_discount=0.06),
    ),
    Group(
        "home_gardeners",
        0.15,
        "home and garden, heavy web browsing, spring peak",
        Buying(
            rate_shape=2.0, rate_rate=340.0, dropout_a=2.0, dropout_b=9.0,
            spend_p=5.0, spend_q=4.0, spend_gamma=54.0, extra_lines=0.3,
            categories=(("garden", 3.0), ("home", 2.0)),
            channels=(0.35, 0.55, 0.10), season="garden", discount_share=0.08, refund_rate=0.03,
        ),
        Engagement(
            web_sessions_per_year=9.0, pages_per_session=3.0, email_subscribed=0.7,
            email_open=0.4, click_newsletter=0.2, click_promo=0.12, click_christmas=0.08,
            app_user=0.2, app_opens_per_year=4.0, add_to_cart=0.25, wishlist_add=0.15,
            social_follow=0.15, networks=(0.3, 0.5, 0.05, 0.15), iot_owner=0.08,
            crm_opportunity=0.05,
        ),
        Demographics(1968, 0.45, ("South West", "South East", "Wales"), (5, 2, 1, 2, 2, 2, 1)),
        Response(uplift_email=0.03, uplift_email_xmas=0.03, uplift_discount=0.04),
    ),
)  # fmt: skip

_GROUP_NAMES = tuple(g.name for g in GROUPS)
_GROUP_SHARES = np.array([g.share for g in GROUPS])
if not math.isclose(_GROUP_SHARES.sum(), 1.0):  # pragma: no cover - guards edits of GROUPS
    raise AssertionError("group shares must add up to 1")


def _per_group(getter: Callable[[Group], float]) -> np.ndarray:
    """One parameter of every group as an array indexed by group number."""
    return np.array([getter(g) for g in GROUPS], dtype=float)


def _category_alpha() -> np.ndarray:
    """Dirichlet parameters of each group's category preferences (groups x categories).

    The planted categories share a concentration of 30 and every other category gets 0.15, so a
    typical customer spends over 90% in the planted categories but still buys something else now
    and then (which keeps the data realistic and the clustering honest).
    """
    alpha = np.full((len(GROUPS), len(cat.CATEGORIES)), 0.15)
    for g, group in enumerate(GROUPS):
        total = sum(w for _, w in group.buying.categories)
        for name, weight in group.buying.categories:
            alpha[g, cat.CATEGORY_NAMES.index(name)] += 30.0 * weight / total
    return alpha


def _at_risk_probability() -> float:
    """P(at-risk | eligible) that makes the at-risk cohort AT_RISK_SHARE of all customers.

    Eligible are buyers outside the reactivated cohort whose rate gives at least two purchases in
    AT_RISK_DAYS; P(lam >= c) of a Gamma(r, rate a) is the regularised upper incomplete gamma
    function Q(r, a c).
    """
    threshold = 2.0 / AT_RISK_DAYS
    p_rate = sum(
        g.share * special.gammaincc(g.buying.rate_shape, g.buying.rate_rate * threshold) for g in GROUPS
    )
    eligible = (1.0 - PROSPECT_SHARE - REACTIVATED_SHARE) * p_rate
    return min(1.0, AT_RISK_SHARE / eligible)


_AT_RISK_PROBABILITY = _at_risk_probability()

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

# --- the manifest --------------------------------------------------------------------------------


@dataclass
class DemoManifest:
    """What :func:`generate_demo` wrote: where, with which settings, which files and how many rows.

    ``files`` and ``counts`` are keyed by kind: ``customers``, ``products``, the event kinds that
    were generated, ``truth`` and ``truth_pairs``.
    """

    out_dir: Path
    as_of: dt.date
    seed: int
    customers: int
    fmt: str
    years: float = 3.0
    kinds: tuple[str, ...] = KINDS
    files: dict[str, list[Path]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    MANIFEST_FILE: ClassVar[str] = "manifest.json"

    @property
    def ext(self) -> str:
        return FORMATS[self.fmt]

    def sources(self) -> dict[str, dict]:
        """Source definitions for a microseg project, with glob patterns relative to ``out_dir``.

        Truth files are not sources. The caller prefixes the paths with wherever ``out_dir`` is.
        """
        sources: dict[str, dict] = {
            "customers": {"path": f"customers*.{self.ext}", "kind": "customers"},
            "products": {"path": f"products.{self.ext}", "kind": "products"},
        }
        for kind in self.kinds:
            sources[kind] = {"path": f"{kind}-*.{self.ext}", "kind": "events"}
        return sources

    def truth(self) -> pd.DataFrame:
        """The planted truth, one row per customer, as a pandas DataFrame."""
        return _read_files(self.files["truth"], self.fmt).to_pandas()

    def truth_pairs(self) -> pd.DataFrame:
        """The planted co-purchase pairs (product_a, product_b, strength) as a DataFrame."""
        return _read_files(self.files["truth_pairs"], self.fmt).to_pandas()

    def to_json(self) -> str:
        return json.dumps(
            {
                "as_of": self.as_of.isoformat(),
                "seed": self.seed,
                "customers": self.customers,
                "fmt": self.fmt,
                "years": self.years,
                "kinds": list(self.kinds),
                "files": {k: [p.name for p in v] for k, v in self.files.items()},
                "counts": self.counts,
            },
            indent=2,
        )

    @classmethod
    def load(cls, out_dir: str | Path) -> DemoManifest:
        """Read the manifest that :func:`generate_demo` left in ``out_dir``."""
        out = Path(out_dir)
        data = json.loads((out / cls.MANIFEST_FILE).read_text())
        return cls(
            out_dir=out,
            as_of=dt.date.fromisoformat(data["as_of"]),
            seed=data["seed"],
            customers=data["customers"],
            fmt=data["fmt"],
            years=data["years"],
            kinds=tuple(data["kinds"]),
            files={k: [out / name for name in v] for k, v in data["files"].items()},
            counts=data["counts"],
        )


# --- the public entry point ----------------------------------------------------------------------


def generate_demo(
    out_dir: str | Path,
    customers: int = 10_000,
    *,
    seed: int = 42,
    as_of: dt.date = dt.date(2025, 12, 31),
    years: float = 3.0,
    fmt: str = "parquet",
    kinds: Sequence[str] = KINDS,
    progress: Callable[[int, int], None] | None = None,
) -> DemoManifest:
    """Generate a seeded demo data set with planted truth into ``out_dir``.

    Writes, with ``<ext>`` the format's extension:

    * ``customers.<ext>``: one row per customer (ids ``C00000001`` ...), traits and demographics;
    * ``products.<ext>``: the product catalogue;
    * ``<kind>-NNNNN.<ext>`` for each of ``kinds``, one part per block of customers:
      ``purchases`` (line items, refunds, cancellations), ``web`` (page views, some anonymous),
      ``email`` (sent / open / click), ``social`` (follows), ``crm`` (lead and opportunity
      updates), ``app`` (app and IoT events);
    * ``truth.<ext>``: the planted truth per customer (group, stage, BG/NBD and Gamma-Gamma
      parameters, campaign response) and ``truth_pairs.<ext>``: the planted co-purchase pairs;
    * ``manifest.json``: the returned manifest, readable with :meth:`DemoManifest.load`.

    Files of an earlier run with the same names (and stale part files) are replaced. Every event
    has a unique ``event_id`` and a timestamp in ``[as_of + 1 day - years, as_of + 1 day)``.

    Args:
        out_dir: folder to write to; created if missing.
        customers: number of customers, 1 to 99,999,999.
        seed: non-negative integer; the same seed gives identical files.
        as_of: last day of the history.
        years: length of the history window in years (365.25 days each).
        fmt: ``"parquet"``, ``"csv"`` (with a header row) or ``"jsonl"`` (one JSON object a line).
        kinds: event kinds to generate, a subset of :data:`KINDS`.
        progress: called with ``(customers_done, customers_total)`` after each block.

    Returns:
        A :class:`DemoManifest` describing what was written.
    """
    customers, seed, as_of, years, fmt, kinds = _validate(customers, seed, as_of, years, fmt, kinds)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir must be a folder, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous_output(out)

    ext = FORMATS[fmt]
    window = _Window.build(as_of, years)
    products = cat.build_catalog(_rng(seed, 0, _CATALOG_STREAM))
    campaigns = _Campaigns.build(_rng(seed, 0, _CAMPAIGN_STREAM), window)
    manifest = DemoManifest(out, as_of, seed, customers, fmt, years, kinds)

    def record(kind: str, path: Path, rows: int) -> None:
        manifest.files.setdefault(kind, []).append(path)
        manifest.counts[kind] = manifest.counts.get(kind, 0) + rows

    for kind, table in (("products", _products_table(products)), ("truth_pairs", _pairs_table(products))):
        path = out / f"{kind}.{ext}"
        _write_table(table, path, fmt)
        record(kind, path, table.num_rows)

    n_blocks = -(-customers // BLOCK_SIZE)
    with (
        _StreamWriter(out / f"customers.{ext}", fmt) as customers_out,
        _StreamWriter(out / f"truth.{ext}", fmt) as truth_out,
    ):
        for block in range(n_blocks):
            offset = block * BLOCK_SIZE
            size = min(BLOCK_SIZE, customers - offset)
            pop = _simulate_population(
                _rng(seed, block + 1, _STREAM["population"]), window, offset, size, block
            )
            ctx = _BlockContext(seed, block, pop, window, products, campaigns)
            customers_out.write(_customers_table(ctx))
            truth_out.write(_truth_table(ctx))
            for kind in kinds:
                table = _EVENT_BUILDERS[kind](ctx)
                path = out / f"{kind}-{block:05d}.{ext}"
                _write_table(table, path, fmt)
                record(kind, path, table.num_rows)
            if progress is not None:
                progress(offset + size, customers)
    record("customers", customers_out.path, customers)
    record("truth", truth_out.path, customers)
    (out / DemoManifest.MANIFEST_FILE).write_text(manifest.to_json())
    return manifest


def _validate(customers, seed, as_of, years, fmt, kinds):
    """Check and normalise the arguments of generate_demo; raise ValueError naming the culprit."""
    if isinstance(customers, bool) or not isinstance(customers, int | np.integer):
        raise ValueError(f"customers must be an integer, got {customers!r}")
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS:,}, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    if not isinstance(as_of, dt.date):
        raise ValueError(f"as_of must be a datetime.date, got {as_of!r}")
    if isinstance(years, bool) or not isinstance(years, int | float | np.number):
        raise ValueError(f"years must be a number, got {years!r}")
    if not (0 < years <= MAX_YEARS) or not math.isfinite(years):
        raise ValueError(f"years must be > 0 and <= {MAX_YEARS:g}, got {years!r}")
    if round(years * 365.25) < 1:
        raise ValueError(f"years must cover at least one day, got {years!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
    if isinstance(kinds, str):
        raise ValueError(f"kinds must be a sequence of kind names, not the string {kinds!r}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kinds has unknown kind(s) {unknown!r}; choose from {list(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds lists a kind twice: {list(kinds)!r}")
    # Generate in the canonical order whatever order was given, so files never depend on it.
    kinds = tuple(k for k in KINDS if k in kinds)
    return int(customers), int(seed), as_of, float(years), fmt, kinds


def _rng(seed: int, block: int, stream: int) -> np.random.Generator:
    """The random generator of one stream of one block (block 0 holds catalogue-level streams).

    ``SeedSequence(seed, spawn_key=(b, s))`` is exactly ``SeedSequence(seed).spawn(...)[b]
    .spawn(...)[s]``, without having to know how many blocks there are.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block, stream))))


_OUTPUT_NAME = re.compile(
    r"^(?:(?:customers|products|truth|truth_pairs)"
    rf"|(?:{'|'.join(KINDS)}|customers)-\d{{5}})\.(?:{'|'.join(FORMATS.values())})$"
)


def _remove_previous_output(out: Path) -> None:
    """Delete files an earlier run left in ``out``, so glob patterns never pick up stale parts.

    Only names this generator writes are touched (``purchases-00003.csv``, ``truth.parquet``,
    ``manifest.json`` ...), never anything else in the folder.
    """
    for path in out.iterdir():
        if path.is_file() and (_OUTPUT_NAME.match(path.name) or path.name == DemoManifest.MANIFEST_FILE):
            path.unlink()


# --- time ----------------------------------------------------------------------------------------


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


# --- building the output tables ------------------------------------------------------------------


@dataclass
class _BlockContext:
    """Everything the table builders of one block need, with per-customer ids built once."""

    seed: int
    block: int
    pop: _Population
    window: _Window
    products: cat.Catalog
    campaigns: _Campaigns

    def rng(self, stream: str) -> np.random.Generator:
        return _rng(self.seed, self.block + 1, _STREAM[stream])

    @cached_property
    def numbers(self) -> np.ndarray:
        """1-based global customer numbers of the block."""
        return self.pop.offset + np.arange(self.pop.size, dtype=np.int64) + 1

    @cached_property
    def customer_ids(self) -> pa.Array:
        return _fixed_width("C", self.numbers, 8)

    @cached_property
    def cookie_ids(self) -> pa.Array:
        """The web cookie (anonymous_id) of each customer."""
        return _fixed_width("A", _scramble(self.numbers, 0), 10)

    @cached_property
    def app_device_ids(self) -> pa.Array:
        return _fixed_width("D", _scramble(self.numbers, 1), 10)

    @cached_property
    def iot_device_ids(self) -> pa.Array:
        return _fixed_width("H", _scramble(self.numbers, 2), 10)

    @cached_property
    def crm_ids(self) -> pa.Array:
        return _fixed_width("CRM", _scramble(self.numbers, 3), 10)

    def event_ids(self, kind: str, n: int) -> pa.Array:
        """Globally unique event ids: kind letter, block number, sequence within the block."""
        if n >= 10**_EVENT_SEQ_DIGITS:  # pragma: no cover - would need ~10^4 events a customer
            raise OverflowError(f"too many {kind} events in block {self.block}")
        numbers = self.block * 10**_EVENT_SEQ_DIGITS + np.arange(n, dtype=np.int64)
        return _fixed_width("E" + _KIND_LETTER[kind], numbers, _ID_BLOCK_DIGITS + _EVENT_SEQ_DIGITS)


def _fixed_width(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """Strings ``prefix`` + ``numbers`` zero-padded to ``digits``, built by Arrow kernels."""
    text = pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, digits, "0"), "")


def _strings(values: Sequence[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values[index]`` as an Arrow string array; rows where ``mask`` is True are null."""
    taken = pa.array(list(values), pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))
    if mask is not None and mask.any():
        taken = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), taken)
    return taken


def _timestamps(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds as an Arrow timestamp array (second resolution); masked rows are null."""
    return pa.array(np.asarray(seconds, dtype="datetime64[s]"), pa.timestamp("s"), mask=mask)


def _money(cents: np.ndarray) -> pa.Array:
    """Amounts in pence as exact decimal128(12, 2) pounds, built straight from the buffer."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension of the 128-bit little-endian integer
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def _constant(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _pick_by_category(rng: np.random.Generator, products: cat.Catalog, category: np.ndarray) -> np.ndarray:
    """A product per row from the given categories, weighted by the products' popularity."""
    cum = np.cumsum(products.popularity)
    start = products.category_start
    # Popularity sums to 1 within each category, so category c spans cum values (c, c + 1].
    target = category + rng.random(len(category))
    product = np.searchsorted(cum, target, side="right")
    return np.clip(product, start[category], start[category + 1] - 1)


def _pick_category(rng: np.random.Generator, theta: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """A category per row, drawn from the preferences of the row's customer.

    One ``searchsorted`` on all customers' cumulative preferences laid end to end (customer i
    spans (i, i + 1]) instead of a rows x categories comparison matrix.
    """
    n_categories = theta.shape[1]
    cdf = np.cumsum(theta, axis=1)
    cdf[:, -1] = 1.0  # exact ends, so rounding never leaks into the next customer
    flat = (cdf + np.arange(len(theta))[:, None]).ravel()
    position = np.searchsorted(flat, owner + rng.random(len(owner)), side="right")
    return np.minimum(position - owner * n_categories, n_categories - 1)


def _products_table(products: cat.Catalog) -> pa.Table:
    category = [cat.CATEGORY_NAMES[c] for c in products.category]
    return pa.table(
        {
            "product_id": pa.array(products.product_id, pa.string()),
            "name": pa.array(products.name, pa.string()),
            "category": pa.array(category, pa.string()),
            "subcategory": pa.array(products.subcategory, pa.string()),
            "brand": pa.array(products.brand, pa.string()),
            "price": _money(products.price_cents),
        }
    )


def _pairs_table(products: cat.Catalog) -> pa.Table:
    pairs = products.pairs()
    return pa.table(
        {
            "product_a": pa.array([a for a, _, _ in pairs], pa.string()),
            "product_b": pa.array([b for _, b, _ in pairs], pa.string()),
            "strength": pa.array([s for _, _, s in pairs], pa.float64()),
        }
    )


def _customers_table(ctx: _BlockContext) -> pa.Table:
    """The customers file: ids, contact details and demographics (mildly tilted by group)."""
    pop, rng, n = ctx.pop, ctx.rng("customers"), ctx.pop.size
    demo = [g.demographics for g in GROUPS]
    group = pop.group

    female = rng.random(n) < np.array([d.female_share for d in demo])[group]
    gender_unknown = rng.random(n) < 0.03
    first_names = cat.FEMALE_FIRST_NAMES + cat.MALE_FIRST_NAMES
    first_idx = np.where(
        female,
        rng.integers(0, len(cat.FEMALE_FIRST_NAMES), n),
        len(cat.FEMALE_FIRST_NAMES) + rng.integers(0, len(cat.MALE_FIRST_NAMES), n),
    )
    last_idx = rng.integers(0, len(cat.LAST_NAMES), n)

    last_day = ctx.window.start.astype("datetime64[D]") + np.timedelta64(ctx.window.days - 1, "D")
    as_of_year = int(last_day.astype("datetime64[Y]").astype(np.int64)) + 1970
    birth = np.round(rng.normal(np.array([d.birth_year_mean for d in demo])[group], 13.0))
    birth = np.clip(birth, 1930, as_of_year - 18).astype(np.int32)

    # City: population weights, doubled in the group's favourite regions.
    population = np.array([c[3] for c in cat.CITIES])
    tilt = np.array([[2.0 if c[1] in d.regions else 1.0 for c in cat.CITIES] for d in demo])
    city = _draw_rows(rng, population * tilt, group)
    acquisition = _draw_rows(rng, np.array([d.acquisition for d in demo], dtype=float), group)

    first = _strings(first_names, first_idx)
    last = _strings(cat.LAST_NAMES, last_idx)
    # Unique, obviously fake addresses on the reserved example.com domain.
    email = pc.binary_join_element_wise(
        pc.utf8_lower(first),
        ".",
        pc.utf8_lower(last),
        pa.array(ctx.numbers).cast(pa.string()),
        "@example.com",
        "",
    )
    email = pc.replace_substring(email, " ", "")
    null = pa.scalar(None, pa.string())
    crm_id = pc.if_else(pa.array(pop.crm_tracked), ctx.crm_ids, null)
    device_id = pc.if_else(
        pa.array(pop.app_user),
        ctx.app_device_ids,
        pc.if_else(pa.array(pop.iot_owner), ctx.iot_device_ids, null),
    )

    letters = cat.POSTCODE_LETTERS
    postal = pc.binary_join_element_wise(
        _strings([c[2] for c in cat.CITIES], city),
        pa.array(rng.integers(1, 21, n)).cast(pa.string()),
        " ",
        pa.array(rng.integers(0, 10, n)).cast(pa.string()),
        _strings(letters, rng.integers(0, len(letters), n)),
        _strings(letters, rng.integers(0, len(letters), n)),
        "",
    )
    signup_date = ctx.window.start.astype("datetime64[D]") + np.floor(pop.signup).astype(np.int64)

    return pa.table(
        {
            "customer_id": ctx.customer_ids,
            "email": email,
            "crm_id": crm_id,
            "device_id": device_id,
            "first_name": first,
            "last_name": last,
            "gender": _strings(("M", "F"), female.astype(np.int64), gender_unknown),
            "birth_year": pa.array(birth, pa.int32()),
            "city": _strings([c[0] for c in cat.CITIES], city),
            "region": _strings([c[1] for c in cat.CITIES], city),
            "country": _constant(COUNTRY, n),
            "postal_code": postal,
            "signup_date": pa.array(signup_date, pa.date32()),
            "acquisition_channel": _strings(cat.ACQUISITION_CHANNELS, acquisition),
        }
    )


def _draw_rows(rng: np.random.Generator, weights: np.ndarray, row: np.ndarray) -> np.ndarray:
    """One draw per entry of ``row`` from the categorical distribution ``weights[row]``."""
    cdf = np.cumsum(weights, axis=1)
    cdf /= cdf[:, -1:]
    chosen = (cdf[row] < rng.random(len(row))[:, None]).sum(axis=1)
    return np.minimum(chosen, weights.shape[1] - 1)


def _scramble(numbers: np.ndarray, salt: int) -> np.ndarray:
    """A bijection of [0, 10^10) that makes sequential numbers look random (for opaque ids).

    Multiplying by a number coprime with 10^10 is invertible modulo 10^10, so distinct inputs
    keep distinct ids; each salt (kind of id) has its own multiplier and shift.
    """
    multiplier = (7_919_113, 3_571_091, 6_700_417, 2_147_483_647)[salt]
    return (np.asarray(numbers, dtype=np.int64) * multiplier + salt * 1_234_567) % 10**10


def _truth_table(ctx: _BlockContext) -> pa.Table:
    """The planted truth: one row per customer."""
    pop = ctx.pop
    prospect = ~pop.buyer
    dropped = pop.buyer & ~pop.alive
    return pa.table(
        {
            "customer_id": ctx.customer_ids,
            "group": _strings(_GROUP_NAMES, pop.group),
            "stage": _strings(STAGES, pop.stage),
            "lam": pa.array(pop.lam, pa.float64()),
            "p_drop": pa.array(pop.p_drop, pa.float64(), mask=prospect),
            "alive": pa.array(pop.alive, pa.bool_()),
            "dropout_at": _timestamps(pop.last_purchase, mask=~dropped),
            "first_purchase_at": _timestamps(pop.first_purchase, mask=prospect),
            "last_purchase_at": _timestamps(pop.last_purchase, mask=prospect),
            "n_orders": pa.array(pop.n_orders, pa.int64()),
            "spend_mean": pa.array(pop.spend_mean, pa.float64(), mask=prospect),
            "top_category": _strings(cat.CATEGORY_NAMES, pop.theta.argmax(axis=1)),
            "email_subscribed": pa.array(pop.email_subscribed, pa.bool_()),
            "app_user": pa.array(pop.app_user, pa.bool_()),
            "sleeping_dog": pa.array(pop.sleeping_dog, pa.bool_()),
            "base_response": pa.array(pop.base_response, pa.float64()),
            "uplift_email": pa.array(pop.uplift_email, pa.float64()),
            "uplift_email_xmas": pa.array(pop.uplift_email_xmas, pa.float64()),
            "uplift_discount": pa.array(pop.uplift_discount, pa.float64()),
        }
    )


def _event_order(window: _Window, owner_key: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Row order by customer, then time.

    The sort is stable, and builders create rows in causal order (a purchase before its refund, a
    sent email before its open), so events of the same second keep that order.
    """
    key = (owner_key.astype(np.int64) << 32) | (ts - window.start_s)
    return np.argsort(key, kind="stable")


def _event_table(ctx: _BlockContext, kind: str, ts: np.ndarray, columns: dict[str, pa.Array]) -> pa.Table:
    """An event table from rows already in file order: ids, type, time, then ``columns``."""
    data = {
        "event_id": ctx.event_ids(kind, len(ts)),
        "event_type": columns.pop("event_type"),
        "ts": _timestamps(ts),
    }
    data.update(columns)
    return pa.table(data)


# --- purchases -----------------------------------------------------------------------------------


def _purchases_table(ctx: _BlockContext) -> pa.Table:
    """Line items of every order, then refunds and cancellations of some lines."""
    pop, rng, products = ctx.pop, ctx.rng("purchases"), ctx.products
    n_orders = len(pop.order_owner)
    group = pop.group[pop.order_owner]

    # Split each order's value over 1-5 lines at random.
    lines = 1 + rng.binomial(4, _per_group(lambda g: g.buying.extra_lines)[group])
    line_order = np.repeat(np.arange(n_orders), lines)
    share = rng.gamma(2.0, 1.0, len(line_order))
    share /= np.bincount(line_order, share, minlength=n_orders)[line_order]
    budget_cents = np.maximum(pop.order_value[line_order] * share * 100.0, 1.0)

    # A product of the chosen category priced like the budget: of the two products whose prices
    # bracket the budget, pick the dearer with the probability that makes the expected price equal
    # the budget, so lines neither over- nor undershoot on average. Products sorted by
    # (category, log price) find the bracket with one searchsorted.
    category = _pick_category(rng, pop.theta, pop.order_owner[line_order])
    by_price = products.by_price
    sorted_cents = products.price_cents[by_price]
    sorted_key = products.category[by_price] * 100.0 + np.log(sorted_cents)
    first_dearer = np.searchsorted(sorted_key, category * 100.0 + np.log(budget_cents), side="right")
    lo, hi = products.category_start[category], products.category_start[category + 1] - 1
    below, above = np.clip(first_dearer - 1, lo, hi), np.clip(first_dearer, lo, hi)
    low_price, high_price = sorted_cents[below], sorted_cents[above]
    # Outside the category's price range both ends are the same product.
    p_above = (budget_cents - low_price) / np.maximum(high_price - low_price, 1)
    product = by_price[np.where(rng.random(len(below)) < p_above, above, below)]
    # Budgets above the dearest product buy several units.
    quantity = np.clip(np.rint(budget_cents / products.price_cents[product]), 1, 12).astype(np.int64)

    # Planted companions: each companion of an anchor joins the order with the pair's strength.
    extra_order, extra_product = [], []
    for slot in range(products.companions.shape[1]):
        companion = products.companions[product, slot]
        strength = products.companion_strength[product, slot]
        added = (companion >= 0) & (rng.random(len(product)) < strength)
        extra_order.append(line_order[added])
        extra_product.append(companion[added])
    line_order = np.concatenate([line_order, *extra_order])
    product = np.concatenate([product, *extra_product])
    quantity = np.concatenate((quantity, np.ones(len(product) - len(quantity), dtype=np.int64)))
    # An order lists each product once: lines that landed on the same product (a companion the
    # customer had picked anyway, two budgets near the same price) merge, adding their quantities.
    # np.unique also sorts the lines by order, then product.
    _, first, merged = np.unique(line_order * products.size + product, return_index=True, return_inverse=True)
    quantity = np.bincount(merged, weights=quantity).astype(np.int64)
    line_order, product = line_order[first], product[first]
    n_lines = len(product)
    line_group = pop.group[pop.order_owner[line_order]]

    # Some lines are bought at a 10-30% discount (bargain hunters most often).
    list_cents = products.price_cents[product]
    discounted = rng.random(n_lines) < _per_group(lambda g: g.buying.discount_share)[line_group]
    discount = rng.choice([0.1, 0.2, 0.3], size=n_lines)
    unit_cents = np.where(discounted, np.rint(list_cents * (1.0 - discount)), list_cents)
    unit_cents = unit_cents.astype(np.int64)

    # Refunds (days later, part of the quantity) and cancellations (within a day, all of it).
    line_ts = pop.order_ts[line_order]
    u = rng.random(n_lines)
    refund_rate = _per_group(lambda g: g.buying.refund_rate)[line_group]
    refund = u < refund_rate
    cancel = (u >= refund_rate) & (u < refund_rate + _CANCEL_RATE)
    delay_days = np.where(
        refund,
        rng.uniform(*_REFUND_DELAY_DAYS, n_lines),
        rng.uniform(*_CANCEL_DELAY_HOURS, n_lines) / 24.0,
    )
    back_ts = line_ts + np.rint(delay_days * _SECONDS_PER_DAY).astype(np.int64)
    back = (refund | cancel) & (back_ts < ctx.window.end_s)  # nothing after the window
    back_qty = np.where(refund, rng.integers(1, quantity + 1), quantity)

    # Rows: every line as a purchase, then the refunds and cancellations of the returned lines.
    src = np.concatenate((np.arange(n_lines), np.flatnonzero(back)))
    event_type = np.concatenate((np.zeros(n_lines, dtype=np.int64), np.where(refund[back], 1, 2)))
    ts = np.concatenate((line_ts, back_ts[back]))
    qty = np.concatenate((quantity, -back_qty[back]))
    row_order = line_order[src]
    owner = pop.order_owner[row_order]
    sort = _event_order(ctx.window, owner, ts)
    src, event_type, ts, qty, row_order, owner = (
        a[sort] for a in (src, event_type, ts, qty, row_order, owner)
    )

    order_ids = _fixed_width(
        "O", ctx.block * 10**_ORDER_SEQ_DIGITS + np.arange(n_orders), _ID_BLOCK_DIGITS + _ORDER_SEQ_DIGITS
    )
    columns = {
        "event_type": _strings(("purchase", "refund", "cancellation"), event_type),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _strings(CHANNELS, pop.order_channel[row_order]),
        "order_id": order_ids.take(pa.array(row_order)),
        "product_id": _strings(products.product_id, product[src]),
        "quantity": pa.array(qty, pa.int64()),
        "unit_price": _money(unit_cents[src]),
        "currency": _constant(CURRENCY, len(src)),
    }
    return _event_table(ctx, "purchases", ts, columns)


# --- web -----------------------------------------------------------------------------------------

_STATIC_PAGES = ("/", "/search", "/offers", "/pricing", "/delivery", "/account", "/cart", "/checkout")
_CART_PAGE, _CHECKOUT_PAGE, _OFFERS_PAGE = 6, 7, 2


def _web_table(ctx: _BlockContext) -> pa.Table:
    """Page views: browsing sessions, checkout sessions of web orders, anonymous visitors."""
    pop, rng, products, window = ctx.pop, ctx.rng("web"), ctx.products, ctx.window
    n = pop.size
    engagement = [g.engagement for g in GROUPS]
    rate = np.array([e.web_sessions_per_year for e in engagement])[pop.group] / 365.25

    # Browsing sessions from a month before signup until the customer disengages.
    lo = np.maximum(pop.signup - _PRE_SIGNUP_DAYS, 0.0)
    owner, t = _poisson_times(rng, lo, pop.engaged_until, rate)
    keep = rng.random(len(owner)) < pop.activity(owner, t)
    owner, t = owner[keep], t[keep]
    # Sessions before signup are anonymous (cookie only), and 15% of later ones are not logged in.
    logged_in = (t >= pop.signup[owner]) & (rng.random(len(owner)) >= 0.15)
    mean_pages = np.array([e.pages_per_session for e in engagement])[pop.group[owner]]
    pages = np.minimum(1 + rng.poisson(mean_pages - 1.0), 12)

    # Checkout sessions (cart, then checkout) just before each web order.
    web_orders = np.flatnonzero(pop.order_channel == CHANNELS.index("web"))
    checkout_ts = pop.order_ts[web_orders] - rng.integers(300, 1200, len(web_orders))
    checkout_ts = np.maximum(checkout_ts, window.start_s)

    # Anonymous visitors who never identify: a few short visits each, anywhere in the window.
    n_visitors = rng.poisson(_ANONYMOUS_VISITORS_PER_CUSTOMER * n)
    visitor = np.repeat(np.arange(n_visitors), 1 + rng.poisson(0.5, n_visitors))

    # One row per session; the owner key puts the block's customers first, then the visitors.
    sizes = (len(owner), len(web_orders), len(visitor))
    s_owner = np.concatenate((owner, pop.order_owner[web_orders], n + visitor))
    s_ts = np.concatenate(
        (window.seconds(t), checkout_ts, window.seconds(rng.random(len(visitor)) * window.days))
    )
    s_pages = np.concatenate((pages, np.full(sizes[1], 2), 1 + rng.poisson(1.0, sizes[2])))
    s_known = np.concatenate((logged_in, np.ones(sizes[1], bool), np.zeros(sizes[2], bool)))
    s_checkout = np.repeat([False, True, False], sizes)

    # Expand sessions to page views, about a minute apart.
    session = np.repeat(np.arange(len(s_owner)), s_pages)
    first = np.concatenate(([0], np.cumsum(s_pages)))[:-1]
    step = np.arange(len(session)) - first[session]
    gaps = rng.exponential(60.0, len(session)).astype(np.int64) + 5
    gaps[step == 0] = 0
    offset = np.cumsum(gaps)
    offset -= offset[first][session]
    ts = s_ts[session] + offset

    page_owner = s_owner[session]
    customer = page_owner < n
    cust_idx = np.where(customer, page_owner, 0)
    # Page kinds: 0 static page, 1 category page, 2 product page; visits start on a landing page.
    u = rng.random(len(session))
    landing = step == 0
    url_kind = np.where(
        landing,
        np.where(u < 0.4, 0, np.where(u < 0.85, 1, 2)),
        np.where(u < 0.15, 0, np.where(u < 0.35, 1, 2)),
    )
    # Customers browse their favourite categories; visitors the whole catalogue evenly.
    category = np.where(
        customer,
        _pick_category(rng, pop.theta, cust_idx),
        rng.integers(0, len(cat.CATEGORIES), len(session)),
    )
    product = _pick_by_category(rng, products, category)
    # Static pages but the checkout: /, /search, /offers, /pricing, /delivery, /account, /cart.
    static = rng.choice(7, size=len(session), p=[0.2, 0.25, 0.15, 0.05, 0.05, 0.1, 0.2])
    static[landing] = 0
    bargain = customer & (pop.group[cust_idx] == _GROUP_NAMES.index("bargain_hunters"))
    static[bargain & (rng.random(len(session)) < 0.3)] = _OFFERS_PAGE
    n_static, n_categories = len(_STATIC_PAGES), len(cat.CATEGORIES)
    url = np.select(
        [url_kind == 0, url_kind == 1], [static, n_static + category], n_static + n_categories + product
    )
    checkout = s_checkout[session]
    url[checkout] = np.where(step[checkout] == 0, _CART_PAGE, _CHECKOUT_PAGE)

    keep = ts < window.end_s
    sort = np.flatnonzero(keep)[_event_order(window, page_owner[keep], ts[keep])]
    ts, page_owner, cust_idx, url = ts[sort], page_owner[sort], cust_idx[sort], url[sort]
    known = s_known[session[sort]]
    vocab = (
        _STATIC_PAGES
        + tuple(f"/category/{c}" for c in cat.CATEGORY_NAMES)
        + tuple(f"/product/{p}" for p in products.product_id)
    )
    # Visitors' cookies come from a number range no customer uses (customers are < 10^8).
    if n_visitors >= _VISITOR_NUMBERS_PER_BLOCK:  # pragma: no cover - BLOCK_SIZE far too large
        raise OverflowError("too many anonymous visitors in one block")
    visitor_numbers = 10**8 + ctx.block * _VISITOR_NUMBERS_PER_BLOCK + np.arange(n_visitors)
    cookies = pa.concat_arrays([ctx.cookie_ids, _fixed_width("A", _scramble(visitor_numbers, 0), 10)])
    columns = {
        "event_type": _constant("page_view", len(ts)),
        "customer_id": pc.if_else(
            pa.array(known), ctx.customer_ids.take(pa.array(cust_idx)), pa.scalar(None, pa.string())
        ),
        "anonymous_id": cookies.take(pa.array(page_owner)),
        "channel": _constant("web", len(ts)),
        "url": _strings(vocab, url),
    }
    return _event_table(ctx, "web", ts, columns)


# --- email ---------------------------------------------------------------------------------------


def _email_table(ctx: _BlockContext) -> pa.Table:
    """Campaign sends to subscribers, with opens and clicks whose rates depend on the group."""
    pop, rng, window, campaigns = ctx.pop, ctx.rng("email"), ctx.window, ctx.campaigns
    subscribed = np.flatnonzero(pop.email_subscribed)
    # Subscribers stay until they unsubscribe (exponential, mean three years) or the window ends.
    until = pop.signup[subscribed] + rng.exponential(3 * 365.25, len(subscribed))
    first = np.searchsorted(campaigns.t, pop.signup[subscribed])
    eligible = np.maximum(np.searchsorted(campaigns.t, until) - first, 0)
    # Every (subscriber, campaign) pair of the subscription; the campaign's reach decides.
    pair_owner = np.repeat(subscribed, eligible)
    starts = np.concatenate(([0], np.cumsum(eligible)))[:-1]
    pair_campaign = np.repeat(first - starts, eligible) + np.arange(len(pair_owner))
    reach = np.array([_CAMPAIGN_REACH[k] for k in _CAMPAIGN_TYPES])[campaigns.kind[pair_campaign]]
    sent = rng.random(len(pair_owner)) < reach
    owner, campaign = pair_owner[sent], pair_campaign[sent]
    sent_t = campaigns.t[campaign]
    kind = campaigns.kind[campaign]

    engagement = [g.engagement for g in GROUPS]
    group = pop.group[owner]
    open_p = np.array([e.email_open for e in engagement])[group] * pop.activity(owner, sent_t)
    # Customers who dropped out mostly ignore the emails; sleeping dogs open them less.
    gone = ~pop.alive[owner] & (sent_t > pop.engaged_until[owner])
    open_p[gone] *= 0.25
    open_p[pop.sleeping_dog[owner]] *= 0.6
    opened = rng.random(len(owner)) < open_p
    click_by_kind = np.array([[e.click_newsletter, e.click_promo, e.click_christmas] for e in engagement])
    clicked = opened & (rng.random(len(owner)) < click_by_kind[group, kind])

    sent_ts = window.seconds(sent_t) + rng.integers(0, 600, len(owner))  # the batch takes minutes
    open_ts = sent_ts + np.rint(rng.lognormal(np.log(3 * 3600.0), 1.2, len(owner))).astype(np.int64)
    click_ts = open_ts + 5 + rng.exponential(40.0, len(owner)).astype(np.int64)
    # Clicks lead to the offers page (promotions), a gift category (Christmas) or the customer's
    # favourite category (newsletters).
    gift = np.where(rng.random(len(owner)) < 0.6, cat.CATEGORY_NAMES.index("toys"),
                    cat.CATEGORY_NAMES.index("books"))  # fmt: skip
    click_category = np.where(kind == 2, gift, pop.theta.argmax(axis=1)[owner])
    click_url = np.where(kind == 1, 0, 1 + click_category)
    vocab = ("/offers",) + tuple(f"/category/{c}" for c in cat.CATEGORY_NAMES)

    in_window = sent_ts < window.end_s
    opened &= open_ts < window.end_s
    clicked &= click_ts < window.end_s
    # Rows in causal order (sends, opens, clicks) so the stable sort keeps it within a second.
    rows = np.concatenate((np.flatnonzero(in_window), np.flatnonzero(opened), np.flatnonzero(clicked)))
    event_type = np.repeat([0, 1, 2], [in_window.sum(), opened.sum(), clicked.sum()])
    ts = np.concatenate((sent_ts[in_window], open_ts[opened], click_ts[clicked]))
    sort = _event_order(window, owner[rows], ts)
    rows, event_type, ts = rows[sort], event_type[sort], ts[sort]
    columns = {
        "event_type": _strings(("email_sent", "email_open", "email_click"), event_type),
        "customer_id": ctx.customer_ids.take(pa.array(owner[rows])),
        "channel": _constant("email", len(rows)),
        "campaign_id": campaigns.campaign_id.take(pa.array(campaign[rows])),
        "url": _strings(vocab, np.where(event_type == 2, click_url[rows], 0), mask=event_type != 2),
    }
    return _event_table(ctx, "email", ts, columns)


# --- social --------------------------------------------------------------------------------------


def _social_table(ctx: _BlockContext) -> pa.Table:
    """Follows of the brand's social accounts (name = network)."""
    pop, rng, window = ctx.pop, ctx.rng("social"), ctx.window
    engagement = [g.engagement for g in GROUPS]
    networks = np.array([e.networks for e in engagement])
    networks = networks / networks.sum(axis=1, keepdims=True)
    expected = np.array([e.social_follow for e in engagement])[:, None] * networks
    follow = rng.random((pop.size, len(cat.SOCIAL_NETWORKS))) < np.minimum(expected[pop.group], 0.95)
    owner, network = np.nonzero(follow)
    lo, hi = pop.signup[owner], np.maximum(pop.engaged_until[owner], pop.signup[owner])
    ts = window.seconds(lo + rng.random(len(owner)) * (hi - lo))
    sort = _event_order(window, owner, ts)
    owner, network, ts = owner[sort], network[sort], ts[sort]
    columns = {
        "event_type": _constant("social_follow", len(owner)),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _constant("social", len(owner)),
        "name": _strings(cat.SOCIAL_NETWORKS, network),
    }
    return _event_table(ctx, "social", ts, columns)


# --- CRM -----------------------------------------------------------------------------------------

_CRM_STATES = (("lead", "new"), ("lead", "qualified"), ("lead", "converted"),
               ("opportunity", "open"), ("opportunity", "won"), ("opportunity", "lost"))  # fmt: skip


def _crm_table(ctx: _BlockContext) -> pa.Table:
    """Lead (new -> qualified -> converted) and opportunity (open -> won / lost) updates."""
    pop, rng, window = ctx.pop, ctx.rng("crm"), ctx.window
    n, start, end = pop.size, window.start_s, window.end_s
    tracked, buyer, first_buy = pop.crm_tracked, pop.buyer, pop.first_purchase
    # A lead is created up to two weeks before signup (and at least an hour before buying),
    # qualified some time before the first purchase, converted by it.
    new_ts = window.seconds(pop.signup - rng.random(n) * np.minimum(14.0, pop.signup))
    new_ts = np.where(buyer, np.maximum(np.minimum(new_ts, first_buy - 3600), start), new_ts)
    horizon = np.where(buyer, first_buy, end)
    qualified = tracked & (rng.random(n) < np.where(buyer, 0.8, 0.4))
    qualified_ts = new_ts + ((horizon - new_ts) * rng.uniform(0.1, 0.9, n)).astype(np.int64)
    converted = tracked & buyer

    opportunity_p = np.array([g.engagement.crm_opportunity for g in GROUPS])[pop.group]
    opportunity = converted & (rng.random(n) < opportunity_p)
    open_ts = first_buy + ((end - first_buy) * rng.random(n)).astype(np.int64)
    close_ts = open_ts + np.rint(rng.uniform(7, 60, n) * _SECONDS_PER_DAY).astype(np.int64)
    closed = opportunity & (close_ts < end)
    won = rng.random(n) < 0.55

    parts = [
        (tracked, new_ts),
        (qualified, qualified_ts),
        (converted, first_buy),
        (opportunity, open_ts),
        (closed & won, close_ts),
        (closed & ~won, close_ts),
    ]  # in _CRM_STATES order, which is also the causal order
    owner = np.concatenate([np.flatnonzero(mask) for mask, _ in parts])
    ts = np.concatenate([values[mask] for mask, values in parts])
    state = np.repeat(np.arange(len(parts)), [mask.sum() for mask, _ in parts])
    sort = _event_order(window, owner, ts)
    owner, ts, state = owner[sort], ts[sort], state[sort]
    columns = {
        "event_type": _constant("crm_update", len(owner)),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _constant("crm", len(owner)),
        "name": _strings([o for o, _ in _CRM_STATES], state),
        "status": _strings([s for _, s in _CRM_STATES], state),
    }
    return _event_table(ctx, "crm", ts, columns)


# --- app and IoT ---------------------------------------------------------------------------------

_APP_EVENTS = ("app_open", "add_to_cart", "wishlist_add", "device_heartbeat")


def _app_table(ctx: _BlockContext) -> pa.Table:
    """App sessions (open, add to cart, wishlist) and IoT device heartbeats."""
    pop, rng, window, products = ctx.pop, ctx.rng("app"), ctx.window, ctx.products
    n = pop.size
    engagement = [g.engagement for g in GROUPS]
    installed = pop.signup + rng.exponential(45.0, n)
    rate = np.where(pop.app_user, np.array([e.app_opens_per_year for e in engagement])[pop.group], 0.0)
    owner, t = _poisson_times(rng, installed, pop.engaged_until, rate / 365.25)
    keep = rng.random(len(owner)) < pop.activity(owner, t)
    owner, t = owner[keep], t[keep]
    open_ts = window.seconds(t)
    group = pop.group[owner]
    cart = rng.random(len(owner)) < np.array([e.add_to_cart for e in engagement])[group]
    wish = rng.random(len(owner)) < np.array([e.wishlist_add for e in engagement])[group]
    cart_ts = open_ts + rng.integers(20, 600, len(owner))
    wish_ts = open_ts + rng.integers(20, 600, len(owner))

    # Smart-home devices report every two weeks from activation to the end, churned or not.
    iot = np.flatnonzero(pop.iot_owner)
    activated = pop.signup[iot] + rng.random(len(iot)) * (window.days - pop.signup[iot])
    beats = np.floor((window.days - activated) / _HEARTBEAT_DAYS).astype(np.int64) + 1
    beat_owner = np.repeat(iot, beats)
    beat_start = np.concatenate(([0], np.cumsum(beats)))[:-1]
    beat_k = np.arange(len(beat_owner)) - np.repeat(beat_start, beats)
    beat_ts = window.seconds(np.repeat(activated, beats) + beat_k * _HEARTBEAT_DAYS)

    # Rows in causal order (opens before what happens in the session).
    owner = np.concatenate((owner, owner[cart], owner[wish], beat_owner))
    ts = np.concatenate((open_ts, cart_ts[cart], wish_ts[wish], beat_ts))
    name = np.repeat([0, 1, 2, 3], [len(open_ts), cart.sum(), wish.sum(), len(beat_owner)])
    keep = ts < window.end_s
    sort = np.flatnonzero(keep)[_event_order(window, owner[keep], ts[keep])]
    owner, ts, name = owner[sort], ts[sort], name[sort]
    product = _pick_by_category(rng, products, _pick_category(rng, pop.theta, owner))
    heartbeat = name == 3
    take = pa.array(owner)
    columns = {
        "event_type": _constant("app_event", len(ts)),
        "customer_id": ctx.customer_ids.take(take),
        "anonymous_id": pc.if_else(
            pa.array(heartbeat), ctx.iot_device_ids.take(take), ctx.app_device_ids.take(take)
        ),
        "channel": _strings(("app", "iot"), heartbeat.astype(np.int64)),
        "name": _strings(_APP_EVENTS, name),
        "product_id": _strings(products.product_id, product, mask=(name == 0) | heartbeat),
    }
    return _event_table(ctx, "app", ts, columns)


_EVENT_BUILDERS: dict[str, Callable[[_BlockContext], pa.Table]] = {
    "purchases": _purchases_table,
    "web": _web_table,
    "email": _email_table,
    "social": _social_table,
    "crm": _crm_table,
    "app": _app_table,
}

# --- writing -------------------------------------------------------------------------------------

# Columns with many distinct values: dictionary encoding would only cost time in parquet.
_UNIQUE_COLUMNS = {"event_id", "order_id", "customer_id", "anonymous_id", "email", "crm_id",
                   "device_id", "postal_code", "ts", "dropout_at", "first_purchase_at",
                   "last_purchase_at", "lam", "p_drop", "spend_mean", "base_response",
                   "uplift_email", "uplift_email_xmas", "uplift_discount"}  # fmt: skip


def _parquet_options(schema: pa.Schema) -> dict:
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in schema if f.name not in _UNIQUE_COLUMNS],
    }


def _for_parquet(table: pa.Table) -> pa.Table:
    """Timestamps in microseconds, the resolution every parquet reader understands."""
    return _cast_timestamps(table, pa.timestamp("us"))


def _for_text(table: pa.Table) -> pa.Table:
    """Timestamps as ``YYYY-MM-DD HH:MM:SS`` strings (the second-resolution cast gives exactly that)."""
    return _cast_timestamps(table, pa.string())


def _cast_timestamps(table: pa.Table, target: pa.DataType) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(target))
    return table


# JSON lines are built this many rows at a time, far below Arrow's 2 GiB limit per string array.
_JSON_ROWS_PER_SLICE = 200_000


def _json_lines(table: pa.Table) -> pa.Buffer:
    """The rows of ``table`` as newline-delimited JSON, built column-wise by Arrow kernels.

    Each column becomes its JSON text (quoted strings, ``null`` for nulls); the columns are then
    joined row-wise with the keys, so no Python object is created per row.
    """
    if table.num_rows == 0:
        return pa.py_buffer(b"")
    pieces: list[object] = []
    for i, f in enumerate(table.schema):
        column = table.column(i).combine_chunks()
        if pa.types.is_string(f.type):
            text = _json_strings(column)
        elif (
            pa.types.is_boolean(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_decimal(f.type)
            or pa.types.is_floating(f.type)
        ):
            text = column.cast(pa.string())
        elif pa.types.is_date(f.type):
            text = pc.binary_join_element_wise('"', column.cast(pa.string()), '"', "")
        else:  # pragma: no cover - the generator writes no other types
            raise TypeError(f"cannot write {f.type} as JSON")
        if text.null_count:
            text = pc.fill_null(text, "null")
        pieces.append(("{" if i == 0 else ",") + json.dumps(f.name) + ":")
        pieces.append(text)
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    # The joined strings lie back to back in the array's data buffer: that buffer is the file.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    return lines.buffers()[2][offsets[0] : offsets[len(lines)]]


def _json_strings(column: pa.Array) -> pa.Array:
    """Strings as JSON string literals (nulls stay null)."""
    if pc.any(pc.match_substring_regex(column, r'["\\\x00-\x1f]')).as_py():
        # Never needed for the generator's own vocabularies, but exact for anything else.
        values = column.to_pylist()
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values])
    return pc.binary_join_element_wise('"', column, '"', "")


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one table as one file."""
    with _StreamWriter(path, fmt) as writer:
        writer.write(table)


class _StreamWriter:
    """Writes a file in pieces (one per block) in any of the formats, with one CSV header."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._writer = None
        self._file = None

    def __enter__(self) -> _StreamWriter:
        if self.fmt == "jsonl":
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            table = _for_parquet(table)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema, **_parquet_options(table.schema))
            self._writer.write_table(table)
        elif self.fmt == "csv":
            table = _for_text(table)
            if self._writer is None:
                self._writer = pa_csv.CSVWriter(self.path, table.schema)
            self._writer.write_table(table)
        else:
            table = _for_text(table)
            for start in range(0, table.num_rows, _JSON_ROWS_PER_SLICE):
                self._file.write(_json_lines(table.slice(start, _JSON_ROWS_PER_SLICE)))

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()


def _read_files(paths: Sequence[Path], fmt: str) -> pa.Table:
    """Read files this module wrote back into one Arrow table."""
    tables = []
    for path in paths:
        if fmt == "parquet":
            tables.append(pq.read_table(path))
        elif fmt == "csv":
            # An empty field is a null: the generator never writes empty strings.
            options = pa_csv.ConvertOptions(strings_can_be_null=True)
            tables.append(pa_csv.read_csv(path, convert_options=options))
        else:
            tables.append(pa_json.read_json(path))
    return pa.concat_tables(tables, promote_options="permissive")

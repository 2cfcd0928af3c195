"""Constants of the demo generator, its random streams and the planted behavioural groups.

:data:`GROUPS` lists the groups; each :class:`Group` bundles how its customers buy
(:class:`Buying`), engage (:class:`Engagement`), look (:class:`Demographics`) and respond to
campaigns (:class:`Response`). ``BLOCK_SIZE`` lives in :mod:`microseg.demo.generator`, where it is
read. See that module's docstring for the generative model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import special

from microseg.demo import catalog as cat

# --- constants -----------------------------------------------------------------------------------

#: Event kinds that can be generated, each written as ``<kind>-NNNNN.<ext>`` part files.
KINDS: tuple[str, ...] = ("purchases", "web", "email", "social", "crm", "app")
#: Output formats and their file extensions.
FORMATS: dict[str, str] = {"parquet": "parquet", "csv": "csv", "jsonl": "jsonl"}
#: Lifecycle stages of the truth file.
STAGES: tuple[str, ...] = ("prospect", "new", "active", "at_risk", "churned", "reactivated")

#: Planted lifecycle-stage shares (they add up to 1). Stages that cannot be built in a short history
#: window get no customers and the others share their customers (see the generator's docstring).
PROSPECT_SHARE = 0.05
NEW_SHARE = 0.07
ACTIVE_SHARE = 0.40
AT_RISK_SHARE = 0.10
CHURNED_SHARE = 0.33
REACTIVATED_SHARE = 0.05
SLEEPING_DOG_SHARE = 0.03
#: "Recent": new customers bought first, reactivated ones came back, within this many days.
RECENT_DAYS = 90
#: Reactivated customers stayed away at least this many days before coming back.
REACTIVATION_GAP_DAYS = 365
#: Kept for compatibility: the length of the slowdown window of the former (BG/NBD) at-risk cohort.
#: The rhythm-based model defines at-risk customers by their rhythm instead (:data:`AT_RISK_RHYTHMS`).
AT_RISK_DAYS = 180
#: At-risk customers buy (and browse) this many times less than usual now (base_response, events).
AT_RISK_SLOWDOWN = 5.0
#: Personal buying rhythms (mean days between purchases) lie in this range.
RHYTHM_MIN_DAYS = 14.0
RHYTHM_MAX_DAYS = 180.0
#: Shape of the Gamma distribution of the gaps between a customer's purchases (mean = rhythm).
GAP_SHAPE = 4.0
#: Active: last purchase less than one rhythm ago; first purchase at least this long ago.
ACTIVE_MIN_TENURE_RHYTHMS = 2.5
ACTIVE_MIN_TENURE_DAYS = 120
#: At risk: the last purchase was this many rhythms ago (two or three expected purchases missed).
AT_RISK_RHYTHMS = (2.2, 3.2)
#: At risk: at least this many purchases before the last one.
AT_RISK_MIN_EARLIER = 3
#: Churned: the last purchase was at least max(CHURN_MIN_RHYTHMS rhythms, CHURN_MIN_DAYS) ago.
CHURN_MIN_RHYTHMS = 5.0
CHURN_MIN_DAYS = 200
#: Reactivated: at least this many purchases before the long gap.
REACTIVATED_MIN_BEFORE = 2
#: New customers have made 1 to this many purchases.
NEW_MAX_ORDERS = 3
CURRENCY = "GBP"
COUNTRY = "GB"
MAX_CUSTOMERS = 99_999_999  # customer ids have 8 digits
MAX_YEARS = 30.0

# Gaps between purchases: Gamma(GAP_SHAPE) truncated to these multiples of the rhythm (and scaled so
# that their mean is the rhythm, see _gap_scale). The upper end keeps every regular gap below
# 2 * RHYTHM_MAX_DAYS = 360 days, so only reactivated customers have gaps of a year or more.
_GAP_RANGE = (0.25, 2.0)
# Safety margin (days) between a planted stage threshold and the simulated times: purchases keep
# their day but get a new time of day, which moves them by less than a day.
_DAY_MARGIN = 1.0
# Prospects who signed up in the last year are this much more common than in the first.
_JOIN_GROWTH = 1.0
# Active customers: most joined recently, their tenure exceeding the minimum by an exponential
# number of days with this mean; a loyal core (this share of them) joined any time in the window.
# Together with the rhythms and the dropout probabilities this calibrates the orders per customer
# (about 2.9 over three years, prospects included). The loyal core's long histories also make
# dropout visible to BG/NBD (without them its maximum-likelihood fit degenerates).
_EXTRA_TENURE_DAYS = 30.0
_LOYAL_CORE_SHARE = 0.1
# Reactivated customers have made 1 to this many purchases since their return.
_REACTIVATED_MAX_RECENT = 2
# Reactivated: the long gap is REACTIVATION_GAP_DAYS plus up to this many days.
_REACTIVATION_GAP_SPREAD = 365.0
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
#: Random stream number of each part of a block (see the module docstring). The planted shock's
#: streams come last, so that data without a shock is what it was before shocks existed.
_STREAM = {
    "population": 0,
    "customers": 1,
    **{k: 2 + i for i, k in enumerate(KINDS)},
    "shock": 2 + len(KINDS),
    "shock_web": 3 + len(KINDS),
}
_CATALOG_STREAM, _CAMPAIGN_STREAM = 0, 1

CHANNELS: tuple[str, ...] = ("pos", "web", "app")


def _rng(seed: int, block: int, stream: int) -> np.random.Generator:
    """The random generator of one stream of one block (block 0 holds catalogue-level streams).

    ``SeedSequence(seed, spawn_key=(b, s))`` is exactly ``SeedSequence(seed).spawn(...)[b]
    .spawn(...)[s]``, without having to know how many blocks there are.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block, stream))))


# --- behavioural groups --------------------------------------------------------------------------


@dataclass(frozen=True)
class Buying:
    """How a group buys. Time unit: days; money: pounds.

    A buyer's rhythm (mean days between purchases) ``mu ~ Gamma(rhythm_shape, mean=rhythm_mean)``
    truncated to [:data:`RHYTHM_MIN_DAYS`, :data:`RHYTHM_MAX_DAYS`]; ``p_drop ~ Beta(dropout_a,
    dropout_b)`` is the chance of dropping out after each purchase (a churned customer made
    ``Geometric(p_drop)`` purchases); Gamma-Gamma spend with ``nu ~ Gamma(spend_q,
    rate=spend_gamma)`` and order value ``~ Gamma(spend_p, rate=nu)`` (mean order value
    ``spend_p * spend_gamma / (spend_q - 1)``).
    """

    rhythm_mean: float
    rhythm_shape: float
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
        """Purchases per day at the group's mean rhythm (before truncation)."""
        return 1.0 / self.rhythm_mean

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


# The rhythms and dropout probabilities below (with the stage shares and _EXTRA_TENURE_DAYS,
# _LOYAL_CORE_SHARE) are calibrated so that the population (prospects included) averages about
# 2.9 orders per customer over a 3-year window, matching the benchmark references (1M customers ~
# 2.9M orders; about 2.95 is measured); see tests/test_demo_generator.py. Loyal big spenders and
# bargain hunters buy every 2-3 months on average, occasional gifters every 4 (rhythms are capped
# at RHYTHM_MAX_DAYS, and at-risk rhythms by what fits the window).
GROUPS: tuple[Group, ...] = (
    Group(
        "loyal_big_spenders",
        0.15,
        "frequent, high spend, electronics and home; little need for discounts",
        Buying(
            rhythm_mean=80.0, rhythm_shape=4.0, dropout_a=4.0, dropout_b=2.0,
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
            rhythm_mean=70.0, rhythm_shape=4.0, dropout_a=4.0, dropout_b=2.0,
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
            rhythm_mean=170.0, rhythm_shape=6.0, dropout_a=10.0, dropout_b=2.0,
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
            rhythm_mean=110.0, rhythm_shape=4.0, dropout_a=6.0, dropout_b=2.0,
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
            rhythm_mean=130.0, rhythm_shape=4.0, dropout_a=8.0, dropout_b=2.0,
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


def _stage_shares() -> np.ndarray:
    """The planted stage shares in :data:`STAGES` order."""
    shares = {
        "prospect": PROSPECT_SHARE,
        "new": NEW_SHARE,
        "active": ACTIVE_SHARE,
        "at_risk": AT_RISK_SHARE,
        "churned": CHURNED_SHARE,
        "reactivated": REACTIVATED_SHARE,
    }
    return np.array([shares[stage] for stage in STAGES])


_STAGE_SHARES = _stage_shares()
if not math.isclose(_STAGE_SHARES.sum(), 1.0):  # pragma: no cover - guards edits of the shares
    raise AssertionError("stage shares must add up to 1")


def _gap_scale() -> float:
    """Scale of the Gamma(GAP_SHAPE) gap ratios so that, truncated to _GAP_RANGE, they average 1.

    A gap is ``rhythm * x`` with ``x ~ Gamma(GAP_SHAPE, scale)`` conditioned on ``lo <= x <= hi``.
    Its mean ``k s (P(k + 1, hi / s) - P(k + 1, lo / s)) / (P(k, hi / s) - P(k, lo / s))`` (P the
    regularised lower incomplete gamma function) grows with ``s``; bisection finds mean 1.
    """
    k, (lo, hi) = GAP_SHAPE, _GAP_RANGE

    def mean(s: float) -> float:
        inside = special.gammainc(k, hi / s) - special.gammainc(k, lo / s)
        return k * s * (special.gammainc(k + 1, hi / s) - special.gammainc(k + 1, lo / s)) / inside

    low, high = 0.5 / k, 2.0 / k
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if mean(mid) < 1.0 else (low, mid)
    return 0.5 * (low + high)


_GAP_SCALE = _gap_scale()

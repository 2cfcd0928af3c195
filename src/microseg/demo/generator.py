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
Each customer belongs to one behavioural group of :data:`GROUPS`. Groups differ in buying rhythm,
spend per order, category preferences (a Dirichlet concentrated on the group's 2-3 planted
categories), channel mix, seasonality and email / web / app / social engagement; demographics
(age, gender, region, acquisition channel) correlate with the group, but weakly.

*Buying* is rhythm-based and built stage first, so that the planted lifecycle stage is visible in
the data by construction while buying stays BTYD-like (heterogeneous rates, dropout, Gamma-Gamma
spend):

1. The lifecycle stage is drawn first, with the shares :data:`PROSPECT_SHARE`,
   :data:`NEW_SHARE`, :data:`ACTIVE_SHARE`, :data:`AT_RISK_SHARE`, :data:`CHURNED_SHARE` and
   :data:`REACTIVATED_SHARE` (5 / 7 / 40 / 10 / 33 / 5%).
2. Every buyer has a personal *rhythm* ``mu`` (mean days between purchases; truth column
   ``rhythm_days``, and ``lam = 1 / mu`` purchases per day) drawn from the group's Gamma
   distribution (:class:`Buying`: loyal big spenders and bargain hunters buy most often,
   occasional gifters least) truncated to [:data:`RHYTHM_MIN_DAYS`, :data:`RHYTHM_MAX_DAYS`] =
   [14, 180] days, and to the longest rhythm whose stage construction fits the window (see
   below). The gaps between consecutive purchases are Gamma with shape :data:`GAP_SHAPE` (4)
   around ``mu``, truncated to [0.25, 2] rhythms and scaled to average exactly ``mu``: regular,
   not clockwork, and never a year or longer (every regular gap is under 2 * 180 = 360 days).
3. The purchase history is built *backwards* from the end of ``as_of``: the stage fixes when the
   last purchase happened and how far back the history reaches, and the gaps are laid one after
   the other into the past (all customers at once, as arrays). The first purchase always falls
   inside the window.
4. Seasonality: purchases between a customer's first and last one (except next to a year-long
   gap) move towards their group's seasonal peak -- early December for occasional gifters and
   spring for home gardeners by up to 30% of the shorter adjacent gap, the pre-Christmas weeks
   for the others by up to 10% -- which keeps recency, tenure, the number of purchases and the
   average gap (the observable rhythm) unchanged and every regular gap below 362 days.

``p_drop ~ Beta(a, b)`` (per group) is the chance of dropping out after a purchase: churned
customers made ``Geometric(p_drop)`` purchases (fewer when the window starts before the earliest),
and reactivated customers ``max(2, Geometric(p_drop))`` before their long gap.

With ``A`` the days from the last purchase to the end of ``as_of`` (its *recency*), the planted
stages (truth column ``stage``) are, exactly and for every customer:

* ``prospect``: signed up (customers file, maybe web / email / app events) but never bought.
* ``new``: first purchase within the last :data:`RECENT_DAYS` (90) days and never before; 1 to
  :data:`NEW_MAX_ORDERS` (3) purchases spaced by the rhythm.
* ``active``: ``A < mu`` (drawn ``A ~ Uniform(0, 1) * mu``), tenure (first purchase to the end of
  ``as_of``) at least ``max(2.5 mu, 120 days)``, so an active customer has several purchases and
  is not new. Most joined shortly after that minimum (an exponential 30 days on top); a loyal
  core of 10% joined any time the window allows (their long histories are also what makes
  dropout identifiable for BG/NBD).
* ``at_risk``: ``2.2 mu < A < 3.2 mu`` (two or three expected purchases missed), at least
  :data:`AT_RISK_MIN_EARLIER` (3) purchases before the last one and tenure at least 120 days.
  Their web / app activity slows down (by :data:`AT_RISK_SLOWDOWN`) once a purchase was due.
* ``churned``: ``A >= max(5 mu, 200 days)``, uniform between that and the window start; a regular
  history before it (one-time churned buyers are common: their single purchase is at least 200
  days and 5 rhythms old). ``dropout_at`` is the last purchase. Web / app / social activity stops
  a few weeks (exponential, mean 60 days) after it and emails are mostly ignored.
* ``reactivated``: 1 to 2 purchases within the last 90 days, the first of them after a gap of at
  least :data:`REACTIVATION_GAP_DAYS` (365) days (up to a year more), and before the gap a
  regular history of at least 2 purchases. Little activity during the gap.

``alive`` is true for new, active, at-risk and reactivated customers. Stage thresholds hold with a
day's margin for the times of day that purchases get. The stages are disjoint: only new customers
bought first within 90 days, only reactivated ones have a gap of a year or more, and one-time
buyers are either new (bought within 90 days) or churned (200 days or more ago). So a simple rule
on the data -- rhythm estimated as (last - first purchase) / (orders - 1), ``A / rhythm`` below
1.6 active, 1.6-4 at risk, 4 or more churned, plus new / reactivated / prospect from the first
purchase and the gaps -- recovers about 98.5% of the planted stages (``tests/test_demo_generator.py``).

*Short windows*: a stage is built only if some rhythm of at least 14 days fits it (active and at
risk need about 150 days of history, churned 202, reactivated 485): the rhythms of each stage
are capped to what fits, stages that fit for no rhythm get no customers, and their share goes to
the other buyer stages in proportion (prospects keep theirs). In windows shorter than about 150
days every buyer is new. In the rare case that an at-risk customer's required earlier purchases
do not fit, their gaps are compressed to fit.

*Calibration*: over a three-year window the population (prospects included) averages about 2.95
orders per customer (the benchmarks quote 1M customers ~ 2.9M purchases): active customers about
4.6, at risk 4, churned 1.3, new 1.3, reactivated 3.4. Because 60% of customers are alive and
bought recently while the churned ones' purchases lie further back, the purchase volume grows
towards the end of the window (like a growing business).

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

Planted campaign response (truth columns)
-----------------------------------------
``base_response`` is the probability of buying in a 14-day window without any contact; it follows
from the current buying rate: ``1 - exp(-14 * rate)`` with ``rate = 1 / rhythm`` for new, active
and reactivated customers and ``1 / (AT_RISK_SLOWDOWN * rhythm)`` for at-risk ones; 0.002 for
churned customers and 0.01 for prospects. ``uplift_email`` / ``uplift_email_xmas`` /
``uplift_discount`` are the extra probabilities when sent an email (outside / inside the
pre-Christmas season, 15 Nov - 24 Dec) or a discount. They vary by group (bargain hunters respond to discounts, loyal big spenders barely need
them, occasional gifters respond to email before Christmas) with customer-level noise; a share of
:data:`SLEEPING_DOG_SHARE` of buyers are "sleeping dogs" whose email uplift is negative.

Planted shock (optional)
------------------------
``generate_demo(..., shock=Shock(start))`` plants a churn wave for tests of migration tracking and
alerts (:mod:`microseg.demo.shock`): ``share`` of the frequent buyers who are buying at ``start``
(planted rate of at least ``min_orders_per_month`` orders per 30 days, last purchase before
``start`` less than one rhythm earlier, more purchases planted after it) lose every purchase event
from ``start`` on, and their web browsing from then on thins to a quarter. The cohort comes from a
random stream of its own (``spawn_key=(b + 1, 8)``; the web thinning from stream 9) and removed
rows keep their event ids, so everybody else's rows are unchanged, and without a shock every file
is what it was before shocks existed, the truth's all-false ``shocked`` column apart.

Files
-----
See :func:`generate_demo`. Column names are the canonical ones of :mod:`microseg.schema`, so
every file imports with an identity mapping. Timestamps are UTC; in CSV and JSON they are written
as ``YYYY-MM-DD HH:MM:SS``. Money has two decimals (decimal128 in parquet).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from microseg.demo import catalog as cat
from microseg.demo.events import _EVENT_BUILDERS
from microseg.demo.groups import (
    _CAMPAIGN_STREAM,
    _CATALOG_STREAM,
    _STREAM,
    ACTIVE_SHARE,
    AT_RISK_SHARE,
    CHURNED_SHARE,
    FORMATS,
    GROUPS,
    KINDS,
    MAX_CUSTOMERS,
    MAX_YEARS,
    NEW_SHARE,
    PROSPECT_SHARE,
    REACTIVATED_SHARE,
    STAGES,
    Group,
    _rng,
)

# Other public names that have always been importable from this module.
from microseg.demo.groups import ACTIVE_MIN_TENURE_DAYS as ACTIVE_MIN_TENURE_DAYS
from microseg.demo.groups import ACTIVE_MIN_TENURE_RHYTHMS as ACTIVE_MIN_TENURE_RHYTHMS
from microseg.demo.groups import AT_RISK_DAYS as AT_RISK_DAYS
from microseg.demo.groups import AT_RISK_MIN_EARLIER as AT_RISK_MIN_EARLIER
from microseg.demo.groups import AT_RISK_RHYTHMS as AT_RISK_RHYTHMS
from microseg.demo.groups import AT_RISK_SLOWDOWN as AT_RISK_SLOWDOWN
from microseg.demo.groups import CHANNELS as CHANNELS
from microseg.demo.groups import CHURN_MIN_DAYS as CHURN_MIN_DAYS
from microseg.demo.groups import CHURN_MIN_RHYTHMS as CHURN_MIN_RHYTHMS
from microseg.demo.groups import COUNTRY as COUNTRY
from microseg.demo.groups import CURRENCY as CURRENCY
from microseg.demo.groups import GAP_SHAPE as GAP_SHAPE
from microseg.demo.groups import NEW_MAX_ORDERS as NEW_MAX_ORDERS
from microseg.demo.groups import REACTIVATED_MIN_BEFORE as REACTIVATED_MIN_BEFORE
from microseg.demo.groups import REACTIVATION_GAP_DAYS as REACTIVATION_GAP_DAYS
from microseg.demo.groups import RECENT_DAYS as RECENT_DAYS
from microseg.demo.groups import RHYTHM_MAX_DAYS as RHYTHM_MAX_DAYS
from microseg.demo.groups import RHYTHM_MIN_DAYS as RHYTHM_MIN_DAYS
from microseg.demo.groups import SLEEPING_DOG_SHARE as SLEEPING_DOG_SHARE
from microseg.demo.groups import Buying as Buying
from microseg.demo.groups import Demographics as Demographics
from microseg.demo.groups import Engagement as Engagement
from microseg.demo.groups import Response as Response
from microseg.demo.manifest import DemoManifest
from microseg.demo.population import _Campaigns, _simulate_population, _Window
from microseg.demo.shock import SHOCK_WEB_SHARE as SHOCK_WEB_SHARE
from microseg.demo.shock import Shock, _check_shock_fits, _Cohort
from microseg.demo.tables import _BlockContext, _customers_table, _pairs_table, _products_table, _truth_table
from microseg.demo.writers import _StreamWriter, _write_table
from microseg.errors import InvalidInputError

__all__ = [
    "ACTIVE_SHARE",
    "AT_RISK_SHARE",
    "BLOCK_SIZE",
    "CHURNED_SHARE",
    "FORMATS",
    "GROUPS",
    "KINDS",
    "NEW_SHARE",
    "PROSPECT_SHARE",
    "REACTIVATED_SHARE",
    "STAGES",
    "DemoManifest",
    "Group",
    "Shock",
    "generate_demo",
]

#: Customers per block. A module constant, not a parameter: the random streams are derived per
#: block, so changing it changes the data. Tests may monkeypatch it: it is defined here, in the
#: module where :func:`generate_demo` reads it, so patching ``generator.BLOCK_SIZE`` takes effect.
BLOCK_SIZE = 100_000


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
    shock: Shock | None = None,
) -> DemoManifest:
    """Generate a seeded demo data set with planted truth into ``out_dir``.

    Writes, with ``<ext>`` the format's extension:

    * ``customers.<ext>``: one row per customer (ids ``C00000001`` ...), traits and demographics;
    * ``products.<ext>``: the product catalogue;
    * ``<kind>-NNNNN.<ext>`` for each of ``kinds``, one part per block of customers:
      ``purchases`` (line items, refunds, cancellations), ``web`` (page views, some anonymous),
      ``email`` (sent / open / click), ``social`` (follows), ``crm`` (lead and opportunity
      updates), ``app`` (app and IoT events);
    * ``truth.<ext>``: the planted truth per customer (group, stage, buying rhythm and rate,
      dropout, Gamma-Gamma spend, campaign response, ``shocked``) and ``truth_pairs.<ext>``: the
      planted co-purchase pairs;
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
        shock: an optional planted churn wave (:class:`Shock`): a cohort of frequent buyers
            stops buying from ``shock.start`` on and browses a quarter as much; truth column
            ``shocked`` marks them. Without it (the default) the files are those the generator
            wrote before shocks existed, but for the all-false ``shocked`` column.

    Returns:
        A :class:`DemoManifest` describing what was written.
    """
    customers, seed, as_of, years, fmt, kinds = _validate(customers, seed, as_of, years, fmt, kinds)
    window = _Window.build(as_of, years)
    _check_shock_fits(shock, window, as_of)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"out_dir must be a folder, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous_output(out)

    ext = FORMATS[fmt]
    products = cat.build_catalog(_rng(seed, 0, _CATALOG_STREAM))
    campaigns = _Campaigns.build(_rng(seed, 0, _CAMPAIGN_STREAM), window)
    manifest = DemoManifest(out, as_of, seed, customers, fmt, years, kinds, shock=shock)

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
            cohort = None
            if shock is not None:
                cohort = _Cohort.choose(shock, _rng(seed, block + 1, _STREAM["shock"]), pop)
            ctx = _BlockContext(seed, block, pop, window, products, campaigns, cohort)
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
    """Check and normalise the arguments of generate_demo; raise InvalidInputError naming the culprit."""
    if isinstance(customers, bool) or not isinstance(customers, int | np.integer):
        raise InvalidInputError(f"customers must be an integer, got {customers!r}")
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise InvalidInputError(f"customers must be between 1 and {MAX_CUSTOMERS:,}, got {customers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInputError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    if not isinstance(as_of, dt.date):
        raise InvalidInputError(f"as_of must be a datetime.date, got {as_of!r}")
    if isinstance(years, bool) or not isinstance(years, int | float | np.number):
        raise InvalidInputError(f"years must be a number, got {years!r}")
    if not (0 < years <= MAX_YEARS) or not math.isfinite(years):
        raise InvalidInputError(f"years must be > 0 and <= {MAX_YEARS:g}, got {years!r}")
    if round(years * 365.25) < 1:
        raise InvalidInputError(f"years must cover at least one day, got {years!r}")
    if fmt not in FORMATS:
        raise InvalidInputError(f"fmt must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
    if isinstance(kinds, str):
        raise InvalidInputError(f"kinds must be a sequence of kind names, not the string {kinds!r}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InvalidInputError(f"kinds has unknown kind(s) {unknown!r}; choose from {list(KINDS)}")
    if len(set(kinds)) != len(kinds):
        raise InvalidInputError(f"kinds lists a kind twice: {list(kinds)!r}")
    # Generate in the canonical order whatever order was given, so files never depend on it.
    kinds = tuple(k for k in KINDS if k in kinds)
    return int(customers), int(seed), as_of, float(years), fmt, kinds


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

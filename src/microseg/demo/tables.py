"""The per-block context of the table builders and the customers, products and truth tables."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from microseg.demo import catalog as cat
from microseg.demo.columns import _constant, _fixed_width, _money, _strings, _timestamps
from microseg.demo.groups import (
    _EVENT_SEQ_DIGITS,
    _GROUP_NAMES,
    _ID_BLOCK_DIGITS,
    _KIND_LETTER,
    _STREAM,
    COUNTRY,
    GROUPS,
    STAGES,
    _rng,
)
from microseg.demo.population import _Campaigns, _Population, _Window
from microseg.demo.shock import _Cohort

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
    cohort: _Cohort | None = None  # the planted shock's cohort, if there is a shock

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
            "rhythm_days": pa.array(pop.rhythm, pa.float64(), mask=prospect),
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
            "shocked": pa.array(
                np.zeros(pop.size, dtype=bool) if ctx.cohort is None else ctx.cohort.member, pa.bool_()
            ),
        }
    )


def _event_order(window: _Window, owner_key: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Row order by customer, then time.

    The sort is stable, and builders create rows in causal order (a purchase before its refund, a
    sent email before its open), so events of the same second keep that order.
    """
    key = (owner_key.astype(np.int64) << 32) | (ts - window.start_s)
    return np.argsort(key, kind="stable")


def _event_table(
    ctx: _BlockContext,
    kind: str,
    ts: np.ndarray,
    columns: dict[str, pa.Array],
    keep: np.ndarray | None = None,
) -> pa.Table:
    """An event table from rows already in file order: ids, type, time, then ``columns``.

    Rows where ``keep`` is False are left out after the ids are given, so leaving rows out (the
    planted shock) never changes the ids of the others.
    """
    data = {
        "event_id": ctx.event_ids(kind, len(ts)),
        "event_type": columns.pop("event_type"),
        "ts": _timestamps(ts),
    }
    data.update(columns)
    table = pa.table(data)
    return table if keep is None else table.filter(pa.array(keep))

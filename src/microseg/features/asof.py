"""The as-of snapshot context: what one run reads, cut at the as-of date in one place.

A run computes the customer summary, the RFM inputs of the value models, the profile and the
category tables of one date. All of them are totals over the same events, so instead of each
step scanning the events again, :class:`AsOf` cuts the events at the end of the as-of day once
and gives three shared aggregates that every step derives its columns from:

* ``activity``: per customer and event type: counts (all time and in the last 30 and 90 days),
  amount and quantity, first and last time, purchase lines per channel, page flags;
* ``purchase_days``: per customer, calendar day and order with purchases: amount and lines (the
  *transactions* of the value models are the days; orders are the distinct order keys);
* ``products_bought``: per customer and product: amount, quantity and lines of purchases.

With ``cache=True`` (what ``Project.run`` does) each aggregate is computed once by the engine
and kept for the run (a temporary table on DuckDB, a persisted frame on Spark); without it they
are plain expressions, which is what a one-off query on a small table wants.

>>> import datetime as dt, ibis
>>> events = ibis.memtable({
...     "customer_id": ["a", "a", "b"], "event_type": ["purchase", "page_view", "purchase"],
...     "ts": [dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3), dt.datetime(2024, 2, 9)],
...     "amount": [10.0, None, 4.0]})
>>> snapshot = AsOf(events, dt.date(2024, 1, 31))
>>> snapshot.activity.count().to_pyarrow().as_py()  # (a, purchase), (a, page_view); b buys later
2
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import ibis
import ibis.expr.types as ir

from microseg.errors import InvalidInputError

#: Days of the recent-activity windows.
RECENT_WINDOWS = (30, 90)
#: Purchase channels whose share of purchase lines is profiled.
CHANNELS = ("pos", "web", "app")
#: The Ibis type of money totals: a decimal, so that sums are exact on every engine.
MONEY = "decimal(18, 4)"
#: Event types whose amounts are money given back (negative amounts).
RETURN_TYPES = ("refund", "cancellation")
#: Per-customer event counts: column name -> event type (with ``_30d``/``_90d`` recent counts).
EVENT_COUNTS = {
    "page_views": "page_view",
    "emails_sent": "email_sent",
    "email_opens": "email_open",
    "email_clicks": "email_click",
    "social_follows": "social_follow",
    "crm_updates": "crm_update",
    "app_events": "app_event",
}


def events_until(events: ir.Table, as_of: dt.date) -> ir.Table:
    """Events of known customers up to the end of the ``as_of`` day."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return events.filter(events.customer_id.notnull(), events.ts < ibis.literal(cutoff))


#: Event columns the aggregates read besides ``customer_id, event_type, ts``, and their type.
OPTIONAL_COLUMNS = {
    "amount": MONEY,
    "quantity": "int64",
    "order_id": "string",
    "event_id": "string",
    "product_id": "string",
    "channel": "string",
    "url": "string",
}


def _complete(events: ir.Table) -> ir.Table:
    """The events with every column the aggregates read: tables built by hand may carry only
    the columns they need, the others are empty."""
    missing = {c: ibis.null(t) for c, t in OPTIONAL_COLUMNS.items() if c not in events.columns}
    return events.mutate(**missing) if missing else events


class AsOf:
    """The inputs of one snapshot: the events up to the end of ``as_of`` and the aggregates all
    steps share (see the module docstring).

    ``events`` are all stored events (the cut is made here); ``customers`` and ``products`` the
    customer and product tables (None: none); ``page_flags`` maps a flag name to a URL fragment
    (``visited_<name>_30d``/``_90d`` in ``activity``).
    """

    def __init__(
        self,
        events: ir.Table,
        as_of: dt.date,
        *,
        customers: ir.Table | None = None,
        products: ir.Table | None = None,
        page_flags: Mapping[str, str] | None = None,
        cache: bool = False,
    ) -> None:
        self.as_of = as_of
        self.all_events = events  # for what does not depend on the date (who was ever seen)
        self.events = events_until(_complete(events), as_of)
        self.customers = customers
        self.products = products
        self.page_flags = dict(page_flags or {})
        self._cache = cache
        self._cached: dict[str, ir.Table] = {}

    # -- the shared aggregates --------------------------------------------------------------
    @property
    def activity(self) -> ir.Table:
        """Per customer and event type (see the module docstring)."""
        return self._shared("activity", self._activity)

    @property
    def purchase_days(self) -> ir.Table:
        """``customer_id, day, order_key, amount, quantity, lines``: purchases per customer, day
        and order (a purchase line without an ``order_id`` is an order of its own)."""
        return self._shared("purchase_days", self._purchase_days)

    @property
    def products_bought(self) -> ir.Table:
        """``customer_id, product_id, amount, quantity, lines``: purchases per customer and
        product (lines without a product id under a null ``product_id``)."""
        return self._shared("products_bought", self._products_bought)

    @property
    def customer_activity(self) -> ir.Table:
        """Per customer with any event: first and last event and purchase, items, revenue and
        returns (decimals), counts per event type (all time and recent) and purchase lines per
        channel, and the page flags: what the summary and the profile both read."""
        return self._shared("customer_activity", self._customer_activity)

    @property
    def buying_counts(self) -> ir.Table:
        """``customer_id, orders, purchase_days, distinct_products`` of every buyer."""
        return self._shared("buying_counts", self._buying_counts)

    def transactions(self, until: dt.date | None = None) -> ir.Table:
        """``customer_id, day, amount``: one row per customer and day with purchases, up to
        ``until`` (default: the as-of date; a day is whole, so any earlier cut is exact)."""
        days = self.purchase_days
        if until is not None and until < self.as_of:
            days = days.filter(days.day <= ibis.literal(until, type="date"))
        return days.group_by(["customer_id", "day"]).aggregate(amount=days.amount.sum())

    def known_without_events(self) -> ir.Table:
        """``customer_id`` of the customers known on the as-of date from the customers table
        alone: signed up by then, or with no signup date and no event ever (customers with
        events are known from their first event on)."""
        if self.customers is None:
            raise InvalidInputError("the snapshot has no customers table")
        customers, events = self.customers, self.all_events
        signed_up = customers.filter(customers.signup_date <= self.as_of).select("customer_id")
        undated = customers.filter(customers.signup_date.isnull()).select("customer_id")
        ever_active = events.filter(events.customer_id.notnull()).select("customer_id").distinct()
        return signed_up.union(undated.anti_join(ever_active, "customer_id"))

    def release(self) -> None:
        """Drop the cached aggregates (the engine's temporary tables)."""
        for table in self._cached.values():
            table.release()
        self._cached.clear()

    def __enter__(self) -> AsOf:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # -- how they are computed ---------------------------------------------------------------
    def _shared(self, name: str, build) -> ir.Table:
        if name not in self._cached:
            expr = build()
            self._cached[name] = expr.cache() if self._cache else expr
        return self._cached[name]

    def _activity(self) -> ir.Table:
        e = self.events
        channel = e.channel
        url = e.url

        def since(days: int) -> ir.BooleanValue:  # on one of the last ``days`` days up to as_of
            first_day = self.as_of - dt.timedelta(days=days - 1)
            return e.ts >= ibis.literal(dt.datetime.combine(first_day, dt.time()), type="timestamp")

        return e.group_by(["customer_id", "event_type"]).aggregate(
            n=e.count(),
            **{f"n{days}": since(days).cast("int64").sum() for days in RECENT_WINDOWS},
            amount=e.amount.sum(),
            quantity=e.quantity.sum(),
            first_at=e.ts.min(),
            last_at=e.ts.max(),
            **{f"on_{c}": (channel == c).cast("int64").sum() for c in CHANNELS},
            **{
                f"visited_{name}_{days}d": (url.contains(fragment) & since(days)).any()
                for name, fragment in self.page_flags.items()
                for days in RECENT_WINDOWS
            },
        )

    def _customer_activity(self) -> ir.Table:
        by_type = self.activity
        kind = by_type.event_type
        purchase = kind == "purchase"
        zero = ibis.literal(0, type=MONEY)

        def count(event_type: str, column: str = "n") -> ir.IntegerScalar:
            return by_type[column].sum(where=kind == event_type).fill_null(0).cast("int64")

        counts = {
            f"{name}{suffix}": count(event_type, column)
            for name, event_type in EVENT_COUNTS.items()
            for suffix, column in (("", "n"), *((f"_{d}d", f"n{d}") for d in RECENT_WINDOWS))
        }
        return by_type.group_by("customer_id").aggregate(
            first_event_at=by_type.first_at.min(),
            last_event_at=by_type.last_at.max(),
            first_purchase_at=by_type.first_at.min(where=purchase),
            last_purchase_at=by_type.last_at.max(where=purchase),
            items=by_type.quantity.sum(where=purchase).fill_null(0).cast("int64"),
            revenue=by_type.amount.sum(where=purchase).cast(MONEY).fill_null(zero),
            returned=by_type.amount.sum(where=kind.isin(list(RETURN_TYPES))).cast(MONEY).fill_null(zero),
            purchase_lines=by_type.n.sum(where=purchase),
            **{f"{c}_lines": by_type[f"on_{c}"].sum(where=purchase) for c in CHANNELS},
            **counts,
            **{
                name: by_type[name].any(where=kind == "page_view").fill_null(False)
                for name in (f"visited_{n}_{d}d" for n in self.page_flags for d in RECENT_WINDOWS)
            },
        )

    def _buying_counts(self) -> ir.Table:
        days, products = self.purchase_days, self.products_bought
        per_day = days.group_by(["customer_id", "day"]).aggregate()
        counts = per_day.group_by("customer_id").aggregate(purchase_days=per_day.count())
        orders = days.filter(days.order_key.notnull()).group_by(["customer_id", "order_key"]).aggregate()
        orders = orders.group_by("customer_id").aggregate(orders=orders.count())
        # one row per customer and product already: the distinct products are its rows
        bought = products.filter(products.product_id.notnull())
        bought = bought.group_by("customer_id").aggregate(distinct_products=bought.count())
        for part in (orders, bought):
            counts = counts.left_join(part, "customer_id").drop("customer_id_right")
        return counts.mutate(
            orders=counts.orders.fill_null(0), distinct_products=counts.distinct_products.fill_null(0)
        )

    def _purchase_days(self) -> ir.Table:
        e = self.events
        buys = e.filter(e.event_type == "purchase")
        order = buys.order_id.fill_null(buys.event_id)
        return buys.group_by(
            [buys.customer_id, buys.ts.date().name("day"), order.name("order_key")]
        ).aggregate(
            amount=buys.amount.sum(),
            quantity=buys.quantity.sum(),
            lines=buys.count(),
        )

    def _products_bought(self) -> ir.Table:
        e = self.events
        buys = e.filter(e.event_type == "purchase")
        return buys.group_by([buys.customer_id, buys.product_id.name("product_id")]).aggregate(
            amount=buys.amount.sum(),
            quantity=buys.quantity.sum(),
            lines=buys.count(),
        )

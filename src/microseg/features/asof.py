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

A later snapshot can continue an earlier one (:meth:`AsOf.advance`): its aggregates are the
earlier snapshot's merged with the aggregates of the events after the earlier date only, where
the merge gives exactly what a computation from all events gives. Per aggregate:

* ``activity``: counts, amounts, quantities and channel lines add up, first and last times are
  the min and max of both; the recent counts (``n30``, ``n90``) and the page flags are relative
  to the as-of date, so they are recomputed from the events of the last 90 days (a small slice
  that the same pass reads);
* ``purchase_days``: the earlier rows plus the rows of the new events (days after the earlier
  date are new days, so no row of one can be a row of the other);
* ``products_bought``: amounts, quantities and lines per customer and product add up;
* ``customer_activity`` and ``buying_counts`` are derived from those three, so they are computed
  from them again (an order can span two days, so order counts do not simply add up).

Everything else a run reads (the category browsing, the customers and products) is computed as
for any snapshot.

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


def _day_start(day: dt.date) -> ir.TimestampScalar:
    return ibis.literal(dt.datetime.combine(day, dt.time()), type="timestamp")


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
        # the snapshot whose aggregates this one continues (see ``advance``), until they are built
        self._base: AsOf | None = None
        #: The date of the snapshot this one continues (None: computed from all its events).
        self.continued_from: dt.date | None = None

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

    def advance(
        self,
        to_date: dt.date,
        *,
        events: ir.Table | None = None,
        customers: ir.Table | None = None,
        products: ir.Table | None = None,
    ) -> AsOf:
        """The snapshot of ``to_date`` (on or after this one's date), continuing this one: its
        aggregates are this snapshot's merged with those of the events after this date only
        (see the module docstring for what is merged and what is recomputed).

        ``events``, ``customers`` and ``products`` are the tables of the new snapshot (default:
        this snapshot's). The caller vouches that the events up to this snapshot's date are the
        ones this snapshot saw (``microseg.features.chain`` checks it with the fingerprint of
        the stored events); events after it may have been added. With ``cache=True`` the new
        snapshot's aggregates are built at once and this snapshot's tables are released: it is
        spent.

        >>> import datetime as dt, ibis
        >>> events = ibis.memtable({
        ...     "customer_id": ["a", "a", "b"], "event_type": ["purchase"] * 3,
        ...     "ts": [dt.datetime(2024, 1, 2), dt.datetime(2024, 2, 3), dt.datetime(2024, 2, 9)],
        ...     "amount": [10.0, 5.0, 4.0]})
        >>> january = AsOf(events, dt.date(2024, 1, 31))
        >>> february = january.advance(dt.date(2024, 2, 29))
        >>> february.continued_from
        datetime.date(2024, 1, 31)
        >>> february.activity.order_by("customer_id").n.to_pyarrow().to_pylist()
        [2, 1]
        """
        if to_date < self.as_of:
            raise InvalidInputError(f"a snapshot continues an earlier one: {to_date} is before {self.as_of}")
        following = AsOf(
            self.all_events if events is None else events,
            to_date,
            customers=self.customers if customers is None else customers,
            products=self.products if products is None else products,
            page_flags=self.page_flags,
            cache=self._cache,
        )
        following._base, following.continued_from = self, self.as_of
        if self._cache:  # build the merged tables now, then this snapshot's are no longer needed
            for name in CONTINUED:
                getattr(following, name)
            following._base = None
            self.release()
        return following

    def release(self) -> None:
        """Drop the cached aggregates (the engine's temporary tables)."""
        for table in self._cached.values():
            if self._cache:  # without the cache they are plain expressions: nothing to drop
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

    def _since(self, events: ir.Table, days: int) -> ir.BooleanValue:
        """Whether an event is on one of the last ``days`` days up to the as-of date."""
        return events.ts >= _day_start(self.as_of - dt.timedelta(days=days - 1))

    def _recent(self, events: ir.Table) -> dict[str, ir.Value]:
        """Per event, what ``activity`` aggregates relative to the as-of date: 0/1 for the recent
        counts (``n30``, ``n90``: summed) and the page flags (``visited_*``: any)."""
        url = events.url
        return {
            **{f"n{days}": self._since(events, days).cast("int64") for days in RECENT_WINDOWS},
            **{
                f"visited_{name}_{days}d": url.contains(fragment) & self._since(events, days)
                for name, fragment in self.page_flags.items()
                for days in RECENT_WINDOWS
            },
        }

    def _activity(self) -> ir.Table:
        if self._base is not None:
            return self._continued_activity(self._base)
        return self._activity_of_all()

    def _activity_of_all(self) -> ir.Table:
        e = self.events
        return e.group_by(["customer_id", "event_type"]).aggregate(
            **_additive_activity(e),
            first_at=e.ts.min(),
            last_at=e.ts.max(),
            **{name: _aggregate(name, value) for name, value in self._recent(e).items()},
        )

    def _continued_activity(self, base: AsOf) -> ir.Table:
        """``activity`` from ``base``'s plus the events after its date, in one pass over the
        events since the earlier of the day after its date and the start of the longest window."""
        new_from = base.as_of + dt.timedelta(days=1)
        longest = max(RECENT_WINDOWS)
        window_from = self.as_of - dt.timedelta(days=longest - 1)
        e = self.events
        e = e.filter(e.ts >= _day_start(min(new_from, window_from)))
        is_new = e.ts >= _day_start(new_from)
        in_window = self._since(e, longest)
        recent = {name: _aggregate(name, value, in_window) for name, value in self._recent(e).items()}
        since_base = e.group_by(["customer_id", "event_type"]).aggregate(
            **_additive_activity(e, where=is_new),
            first_at=e.ts.min(where=is_new),
            last_at=e.ts.max(where=is_new),
            **recent,
        )
        kept = base.activity
        kept = kept.select(
            *(c for c in kept.columns if c not in recent),
            **{name: ibis.null(value.type()) for name, value in recent.items()},
        )
        both = kept.union(since_base.select(*kept.columns).cast(kept.schema()))
        merged = both.group_by(["customer_id", "event_type"]).aggregate(
            **{name: both[name].sum() for name in ADDITIVE},
            first_at=both.first_at.min(),
            last_at=both.last_at.max(),
            # groups without events in the window have no row of ``since_base``: none recent
            **{name: _aggregate(name, both[name]).fill_null(0) for name in recent if _is_count(name)},
            **{name: _aggregate(name, both[name]) for name in recent if not _is_count(name)},
        )
        # the full computation sees a false flag on every event before the window: a group with
        # such events has a flag that is true or false, never null
        before_window = merged.n > merged[f"n{longest}"]
        merged = merged.mutate(
            **{
                name: ibis.ifelse(before_window, merged[name].fill_null(False), merged[name])
                for name in recent
                if not _is_count(name)
            }
        )
        columns = self._activity_of_all().schema()  # the same columns and types as computed from all
        return merged.select(*(merged[name].cast(dtype).name(name) for name, dtype in columns.items()))

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
        if self._base is None:
            return _purchase_days_of(self.events)
        # days after the base's date are new days: the rows of the new events are new rows
        kept = self._base.purchase_days
        return kept.union(_purchase_days_of(self._events_after(self._base)).cast(kept.schema()))

    def _products_bought(self) -> ir.Table:
        if self._base is None:
            return _products_bought_of(self.events)
        kept = self._base.products_bought
        both = kept.union(_products_bought_of(self._events_after(self._base)).cast(kept.schema()))
        merged = both.group_by(["customer_id", "product_id"]).aggregate(
            amount=both.amount.sum(), quantity=both.quantity.sum(), lines=both.lines.sum()
        )
        return merged.cast(kept.schema())

    def _events_after(self, base: AsOf) -> ir.Table:
        """This snapshot's events after the end of ``base``'s date."""
        return self.events.filter(self.events.ts >= _day_start(base.as_of + dt.timedelta(days=1)))


#: The aggregates a continued snapshot merges from the one before (the others derive from them).
CONTINUED = ("activity", "purchase_days", "products_bought")


def _is_count(name: str) -> bool:
    return not name.startswith("visited_")


def _aggregate(name: str, value: ir.Value, where: ir.BooleanValue | None = None) -> ir.Scalar:
    """A recent count is summed, a page flag is true when any event sets it."""
    return value.sum(where=where) if _is_count(name) else value.any(where=where)


def _additive_activity(events: ir.Table, where: ir.BooleanValue | None = None) -> dict[str, ir.Scalar]:
    """The aggregates of ``activity`` that add up over disjoint sets of events (``ADDITIVE``)."""
    channel = events.channel
    return {
        "n": events.count(where=where),
        "amount": events.amount.sum(where=where),
        "quantity": events.quantity.sum(where=where),
        **{f"on_{c}": (channel == c).cast("int64").sum(where=where) for c in CHANNELS},
    }


#: The columns of ``activity`` that add up (the others: first and last time, recent aggregates).
ADDITIVE = ("n", "amount", "quantity", *(f"on_{c}" for c in CHANNELS))


def _purchase_days_of(events: ir.Table) -> ir.Table:
    """``purchase_days`` of ``events``."""
    buys = events.filter(events.event_type == "purchase")
    order = buys.order_id.fill_null(buys.event_id)
    return buys.group_by([buys.customer_id, buys.ts.date().name("day"), order.name("order_key")]).aggregate(
        amount=buys.amount.sum(),
        quantity=buys.quantity.sum(),
        lines=buys.count(),
    )


def _products_bought_of(events: ir.Table) -> ir.Table:
    """``products_bought`` of ``events``."""
    buys = events.filter(events.event_type == "purchase")
    return buys.group_by([buys.customer_id, buys.product_id.name("product_id")]).aggregate(
        amount=buys.amount.sum(),
        quantity=buys.quantity.sum(),
        lines=buys.count(),
    )

"""The per-customer summary: totals of everything a customer did up to an as-of date.

Written as one Ibis aggregation so that DuckDB and Spark compute it identically (money is a
DECIMAL, so sums are exact on both). Only events on or before the as-of date count, which makes
the summary point-in-time correct for any past date.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from microseg.schema import NEGATIVE_TYPES

_MONEY = "decimal(18, 4)"


def events_until(events: ir.Table, as_of: dt.date) -> ir.Table:
    """Events of known customers up to the end of the ``as_of`` day."""
    cutoff = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    return events.filter(events.customer_id.notnull(), events.ts < ibis.literal(cutoff))


def customer_summary(events: ir.Table, as_of: dt.date, customers: ir.Table | None = None) -> ir.Table:
    """One row per customer with activity totals as of ``as_of`` (see ``schema.CUSTOMER_SUMMARY``).

    An order is an ``order_id``; purchase lines without one are orders of their own. With the
    ``customers`` table, customers without events yet (signed up on or before ``as_of``, or
    with no signup date) are included with zero totals.

    >>> import ibis, datetime as dt
    >>> from microseg.schema import EVENTS
    >>> events = ibis.memtable(
    ...     {"customer_id": ["a", "a"], "event_type": ["purchase", "page_view"],
    ...      "ts": [dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3)], "order_id": ["o1", None],
    ...      "event_id": ["1", "2"], "product_id": ["p", None], "quantity": [2, None],
    ...      "amount": [10, None]},
    ...     schema={"customer_id": "string", "event_type": "string", "ts": "timestamp",
    ...             "order_id": "string", "event_id": "string", "product_id": "string",
    ...             "quantity": "int64", "amount": "decimal(18, 4)"})
    >>> row = customer_summary(events, dt.date(2024, 1, 31)).to_pandas().iloc[0]
    >>> int(row.orders), int(row.page_views), float(row.revenue)
    (1, 1, 10.0)
    """
    e = events_until(events, as_of)
    kind = e.event_type
    purchase = kind == "purchase"
    returned = kind.isin(list(NEGATIVE_TYPES))
    order_key = e.order_id.fill_null(e.event_id)
    zero = ibis.literal(0, type=_MONEY)

    def count(event_type: str) -> ir.IntegerScalar:
        return (kind == event_type).cast("int64").sum()

    summary = e.group_by("customer_id").aggregate(
        first_event_at=e.ts.min(),
        last_event_at=e.ts.max(),
        first_purchase_at=e.ts.min(where=purchase),
        last_purchase_at=e.ts.max(where=purchase),
        orders=order_key.nunique(where=purchase),
        purchase_days=e.ts.date().nunique(where=purchase),
        items=e.quantity.sum(where=purchase).fill_null(0).cast("int64"),
        distinct_products=e.product_id.nunique(where=purchase),
        revenue=e.amount.sum(where=purchase).cast(_MONEY).fill_null(zero),
        returned=e.amount.sum(where=returned).cast(_MONEY).fill_null(zero),
        page_views=count("page_view"),
        emails_sent=count("email_sent"),
        email_opens=count("email_open"),
        email_clicks=count("email_click"),
        social_follows=count("social_follow"),
        crm_updates=count("crm_update"),
        app_events=count("app_event"),
    )
    if customers is not None:
        summary = _with_customers_without_events(summary, customers, as_of)
    return summary.mutate(
        as_of=ibis.literal(as_of, type="date"),
        net_revenue=(summary.revenue + summary.returned).cast(_MONEY),
    )


def _with_customers_without_events(summary: ir.Table, customers: ir.Table, as_of: dt.date) -> ir.Table:
    known = customers.filter(customers.signup_date.isnull() | (customers.signup_date <= as_of))
    silent = known.select("customer_id").anti_join(summary, "customer_id")
    zero = ibis.literal(0, type=_MONEY)
    fill = {
        name: (
            ibis.null(dtype)
            if dtype.is_timestamp()
            else zero
            if dtype.is_decimal()
            else ibis.literal(0, dtype)
        )
        for name, dtype in summary.schema().items()
        if name != "customer_id"
    }
    return summary.union(silent.mutate(**fill).select(*summary.columns))

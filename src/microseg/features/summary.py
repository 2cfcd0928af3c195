"""The per-customer summary: totals of everything a customer did up to an as-of date.

Written as Ibis aggregations so that DuckDB and Spark compute it identically (money is a
DECIMAL, so sums are exact on both). Only events on or before the as-of date count, which makes
the summary point-in-time correct for any past date.
"""

from __future__ import annotations

import datetime as dt

import ibis
import ibis.expr.types as ir

from microseg.features.asof import MONEY, AsOf, events_until

__all__ = ["customer_summary", "events_until", "known_without_events", "summary_of"]

#: The columns of ``customer_summary`` before ``as_of`` and ``net_revenue``, in order.
COLUMNS = (
    "customer_id",
    "first_event_at",
    "last_event_at",
    "first_purchase_at",
    "last_purchase_at",
    "orders",
    "purchase_days",
    "items",
    "distinct_products",
    "revenue",
    "returned",
    "page_views",
    "emails_sent",
    "email_opens",
    "email_clicks",
    "social_follows",
    "crm_updates",
    "app_events",
)
#: Counts from the table of buying counts (zero for customers who never bought).
BUYING = ("orders", "purchase_days", "distinct_products")


def customer_summary(events: ir.Table, as_of: dt.date, customers: ir.Table | None = None) -> ir.Table:
    """One row per customer with activity totals as of ``as_of`` (see ``schema.CUSTOMER_SUMMARY``).

    An order is an ``order_id``; purchase lines without one are orders of their own. With the
    ``customers`` table, customers without events yet are included with zero totals when they
    signed up on or before ``as_of``, or have no signup date and no event at any time (nothing
    says when they became known). A customer without a signup date whose first event comes after
    ``as_of`` is not known yet and is left out.

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
    return summary_of(AsOf(events, as_of, customers=customers))


def summary_of(snapshot: AsOf) -> ir.Table:
    """``customer_summary`` of a snapshot: from its shared aggregates."""
    activity = snapshot.customer_activity.select(*(c for c in COLUMNS if c not in BUYING))
    summary = activity.left_join(snapshot.buying_counts, "customer_id").drop("customer_id_right")
    summary = summary.mutate(**{name: summary[name].fill_null(0) for name in BUYING}).select(*COLUMNS)
    if snapshot.customers is not None:
        summary = _with_customers_without_events(summary, snapshot)
    return summary.mutate(
        as_of=ibis.literal(snapshot.as_of, type="date"),
        net_revenue=(summary.revenue + summary.returned).cast(MONEY),
    )


def known_without_events(customers: ir.Table, events: ir.Table, as_of: dt.date) -> ir.Table:
    """``customer_id`` of the customers known on ``as_of`` from the customers table alone (see
    :meth:`AsOf.known_without_events`)."""
    return AsOf(events, as_of, customers=customers).known_without_events()


def _with_customers_without_events(summary: ir.Table, snapshot: AsOf) -> ir.Table:
    silent = snapshot.known_without_events().anti_join(summary, "customer_id")
    zero = ibis.literal(0, type=MONEY)
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

"""The per-customer summary: what counts, and the as-of cutoff."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from microseg.features.summary import customer_summary
from microseg.schema import EVENTS

T = dt.datetime


def make_events(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for c in EVENTS.column_names:
        if c not in frame:
            frame[c] = None
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    return frame[EVENTS.column_names]


@pytest.fixture
def events(warehouse):
    rows = [
        # customer a: two lines of one order, one order without id, a refund, a page view
        dict(
            customer_id="a",
            event_type="purchase",
            ts=T(2024, 1, 1, 9),
            order_id="o1",
            product_id="p1",
            quantity=2,
            amount=Decimal("10.50"),
        ),
        dict(
            customer_id="a",
            event_type="purchase",
            ts=T(2024, 1, 1, 9),
            order_id="o1",
            product_id="p2",
            quantity=1,
            amount=Decimal("4.25"),
        ),
        dict(
            customer_id="a",
            event_type="purchase",
            ts=T(2024, 1, 1, 18),
            order_id=None,
            product_id="p1",
            quantity=1,
            amount=Decimal("5.25"),
        ),
        dict(
            customer_id="a",
            event_type="refund",
            ts=T(2024, 1, 5),
            order_id="o1",
            product_id="p2",
            quantity=-1,
            amount=Decimal("-4.25"),
        ),
        dict(customer_id="a", event_type="page_view", ts=T(2024, 1, 31, 23, 59), url="/home"),
        # after the as-of date: must not count
        dict(
            customer_id="a",
            event_type="purchase",
            ts=T(2024, 2, 1, 0, 0),
            order_id="o9",
            product_id="p3",
            quantity=9,
            amount=Decimal("99"),
        ),
        # customer b: engagement only
        dict(customer_id="b", event_type="email_sent", ts=T(2024, 1, 2)),
        dict(customer_id="b", event_type="email_open", ts=T(2024, 1, 2, 1)),
        dict(customer_id="b", event_type="email_click", ts=T(2024, 1, 2, 2)),
        dict(customer_id="b", event_type="social_follow", ts=T(2024, 1, 3), name="instagram"),
        dict(customer_id="b", event_type="crm_update", ts=T(2024, 1, 4), name="lead", status="new"),
        dict(customer_id="b", event_type="app_event", ts=T(2024, 1, 4), name="app_open"),
        # anonymous: not a customer
        dict(customer_id=None, anonymous_id="x", event_type="page_view", ts=T(2024, 1, 3)),
        # customer c: only after the as-of date
        dict(
            customer_id="c",
            event_type="purchase",
            ts=T(2024, 3, 1),
            order_id="o5",
            quantity=1,
            amount=Decimal("1"),
        ),
    ]
    frame = make_events(rows)
    frame["source"] = "test"
    frame["import_id"] = "i"
    warehouse.con.register("frame", frame)
    warehouse.sql("INSERT INTO events SELECT * FROM frame")
    return warehouse.table("events")


def test_summary_counts_and_money(events):
    s = customer_summary(events, dt.date(2024, 1, 31)).to_pandas().set_index("customer_id")
    assert sorted(s.index) == ["a", "b"]
    a, b = s.loc["a"], s.loc["b"]
    assert (a.orders, a.purchase_days, a["items"], a.distinct_products) == (2, 1, 4, 2)
    assert (a.revenue, a.returned, a.net_revenue) == (Decimal("20.00"), Decimal("-4.25"), Decimal("15.75"))
    assert a.first_purchase_at == pd.Timestamp("2024-01-01 09:00")
    assert a.last_purchase_at == pd.Timestamp("2024-01-01 18:00")
    assert a.last_event_at == pd.Timestamp("2024-01-31 23:59")
    assert a.page_views == 1
    assert (b.orders, b.revenue, b["items"]) == (0, Decimal("0"), 0)
    assert pd.isna(b.first_purchase_at)
    counts = (b.emails_sent, b.email_opens, b.email_clicks, b.social_follows, b.crm_updates, b.app_events)
    assert counts == (1, 1, 1, 1, 1, 1)


def test_summary_is_point_in_time(events):
    early = customer_summary(events, dt.date(2024, 1, 1)).to_pandas().set_index("customer_id")
    assert list(early.index) == ["a"]
    assert early.loc["a", "orders"] == 2 and early.loc["a", "returned"] == 0
    late = customer_summary(events, dt.date(2024, 2, 1)).to_pandas().set_index("customer_id")
    assert late.loc["a", "orders"] == 3
    assert late.loc["a", "as_of"] == pd.Timestamp("2024-02-01")

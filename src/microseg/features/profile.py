"""The customer profile: everything segmentation reads about a customer, as of a date.

One Ibis query over the events (so it runs on every engine) gives behaviour, rhythm, engagement
and channel use; a second gives spend by product category. Traits come from the customers table.
Only events on or before the as-of date count.

Columns (``PROFILE_COLUMNS``) are fixed, plus the configured page flags and declared attributes
(``[attributes]``: one column per attribute, text for categorical and ordinal ones, a number for
numeric ones, read from a column of the customers table or a key of their ``traits``); category
shares are long (``customer_id, category, spend, share``) because the categories are the
retailer's own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir

from microseg.features.asof import RECENT_WINDOWS, AsOf
from microseg.schema import PROFILE_FEATURES

_IBIS_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "int64",
    "DOUBLE": "float64",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}

#: Column -> Ibis type of the profile (the contract is ``schema.CUSTOMER_PROFILES``).
PROFILE_COLUMNS = {c.name: _IBIS_TYPES[c.type] for c in PROFILE_FEATURES}


def _days(later: ir.DateValue, earlier: ir.DateValue) -> ir.IntegerValue:
    return later.delta(earlier, unit="day")


def behaviour(
    events: ir.Table,
    as_of: dt.date,
    reactivation_gap_days: int = 365,
    page_flags: Mapping[str, str] | None = None,
) -> ir.Table:
    """Per customer with any event: buying, rhythm, engagement and channel features, and for
    each page flag (name -> URL fragment) whether the customer viewed such a page in the last
    30 and 90 days (``visited_<name>_30d``, ``visited_<name>_90d``)."""
    return behaviour_of(AsOf(events, as_of, page_flags=page_flags), reactivation_gap_days)


def behaviour_of(snapshot: AsOf, reactivation_gap_days: int = 365) -> ir.Table:
    """``behaviour`` of a snapshot, from its shared aggregates."""
    end = ibis.literal(snapshot.as_of, type="date")
    flags = snapshot.page_flags
    t = snapshot.customer_activity

    def share(channel: str) -> ir.FloatingValue:
        return (t[f"{channel}_lines"] / t.purchase_lines.nullif(0)).cast("float64")

    activity = t.select(
        "customer_id",
        revenue=t.revenue.cast("float64"),
        returned=(-t.returned).cast("float64"),
        items=t["items"],
        page_views=t.page_views,
        page_views_30d=t.page_views_30d,
        page_views_90d=t.page_views_90d,
        emails_sent=t.emails_sent,
        email_opens=t.email_opens,
        email_clicks=t.email_clicks,
        email_opens_90d=t.email_opens_90d,
        app_events=t.app_events,
        app_events_90d=t.app_events_90d,
        social_follows=t.social_follows,
        crm_updates=t.crm_updates,
        first_event_at=t.first_event_at,
        last_event_at=t.last_event_at,
        days_known=_days(end, t.first_event_at.date()) + 1,
        pos_share=share("pos"),
        web_share=share("web"),
        app_share=share("app"),
        **{name: t[name] for name in (f"visited_{n}_{d}d" for n in flags for d in RECENT_WINDOWS)},
    )
    counts = snapshot.buying_counts.select("customer_id", "orders", "distinct_products")
    out = activity
    for part in (_rhythm(snapshot, reactivation_gap_days), counts):
        out = out.left_join(part, "customer_id").drop("customer_id_right")
    return out


def _rhythm(snapshot: AsOf, reactivation_gap_days: int) -> ir.Table:
    """Transaction days per buyer: first, last, count, mean and longest gap, and the last return
    after a long gap (the mark of a reactivated customer)."""
    days = snapshot.transactions().select("customer_id", "day")
    window = ibis.window(group_by="customer_id", order_by="day")
    days = days.mutate(gap=_days(days.day, days.day.lag().over(window)))
    per = days.group_by("customer_id").aggregate(
        first_purchase=days.day.min(),
        last_purchase=days.day.max(),
        transactions=days.day.count(),
        longest_gap_days=days.gap.max(),
        last_return_after_gap=days.day.max(where=days.gap >= reactivation_gap_days),
    )
    end = ibis.literal(snapshot.as_of, type="date")
    span = _days(per.last_purchase, per.first_purchase).cast("float64")
    return per.mutate(
        rhythm_days=ibis.ifelse(per.transactions > 1, span / (per.transactions - 1), ibis.null("float64")),
        days_since_first_purchase=_days(end, per.first_purchase),
        days_since_last_purchase=_days(end, per.last_purchase),
        days_since_return=_days(end, per.last_return_after_gap),
    )


def category_browsing(events: ir.Table, products: ir.Table, as_of: dt.date) -> ir.Table:
    """Page views per customer and product category, with each category's share of the
    customer's category page views.

    A page belongs to a category when the last segment of its URL path is a product id (the
    product's category) or a category name (``/category/garden``), or when the page view
    carries a product id."""
    return browsing_of(AsOf(events, as_of, products=products))


def browsing_of(snapshot: AsOf) -> ir.Table:
    """``category_browsing`` of a snapshot."""
    e, products = snapshot.events, snapshot.products
    views = e.filter(e.event_type == "page_view")
    last = views.url.re_extract(r"([^/?#]+)/?(?:[?#].*)?$", 1)
    views = views.mutate(key=views.product_id.fill_null(last))
    by_product = products.select(key=products.product_id, category=products.category)
    names = (
        products.filter(products.category.notnull())
        .select(key=products.category, category=products.category)
        .distinct()
    )
    lookup = by_product.union(names).distinct()
    tagged = views.inner_join(lookup, "key")
    counts = tagged.group_by(["customer_id", "category"]).aggregate(views=tagged.count())
    counts = counts.filter(counts.customer_id.notnull())
    total = counts.views.sum().over(ibis.window(group_by="customer_id"))
    return counts.mutate(share=counts.views.cast("float64") / total)


def category_spend(events: ir.Table, products: ir.Table, as_of: dt.date) -> ir.Table:
    """Spend per customer and product category (``unknown`` for products without one), with
    each category's share of the customer's spend."""
    return spend_of(AsOf(events, as_of, products=products))


def spend_of(snapshot: AsOf) -> ir.Table:
    """``category_spend`` of a snapshot, from its purchases per customer and product."""
    bought, products = snapshot.products_bought, snapshot.products
    lines = bought.left_join(products.select("product_id", "category"), "product_id")
    spend = lines.group_by(["customer_id", lines.category.fill_null("unknown").name("category")]).aggregate(
        spend=lines.amount.sum()
    )
    # totals summed as decimals: exact, so the shares do not depend on the order rows arrive in
    total = spend.spend.sum().over(ibis.window(group_by="customer_id")).cast("float64")
    amount = spend.spend.cast("float64")
    return spend.mutate(spend=amount, share=ibis.ifelse(total > 0, amount / total, 0.0))


def profile_columns(
    page_flags: Mapping[str, str] | None = None, attributes: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Column name -> type of the profile, with the configured page flags and attributes."""
    flags = {f"visited_{name}_{days}d": "boolean" for name in (page_flags or {}) for days in RECENT_WINDOWS}
    declared = {
        name: "float64" if attribute.type == "numeric" else "string"
        for name, attribute in (attributes or {}).items()
    }
    return {**PROFILE_COLUMNS, **flags, **declared}


def _json_text(value: ir.JSONValue) -> ir.StringValue:
    """A JSON value as text, whether it holds a string, a number or a boolean."""
    return ibis.coalesce(
        value.unwrap_as("string"),
        value.unwrap_as("int64").cast("string"),
        value.unwrap_as("float64").cast("string"),
        value.unwrap_as("boolean").cast("string"),
    )


def attribute_values(customers: ir.Table, attributes: Mapping[str, Any]) -> ir.Table:
    """``customer_id`` and one column per declared attribute: from the customers column it
    names, else from the key of the customers' ``traits`` JSON (text; numeric attributes as
    numbers, values that are not numbers left empty)."""
    traits = customers.traits.cast("json")
    columns = {}
    for name, attribute in attributes.items():
        source = attribute.source
        if source in customers.columns and source != "traits":
            text = customers[source].cast("string")
        else:
            text = _json_text(traits[source])
        text = text.strip().nullif("")
        columns[name] = text.try_cast("float64") if attribute.type == "numeric" else text
    return customers.select("customer_id", **columns)


def customer_profile(
    events: ir.Table,
    customers: ir.Table,
    products: ir.Table,
    as_of: dt.date,
    reactivation_gap_days: int = 365,
    page_flags: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ir.Table:
    """One row per customer known on ``as_of`` (see ``profile_columns``); ``attributes`` are the
    declared attributes (``microseg.config.AttributeConfig`` by name)."""
    snapshot = AsOf(events, as_of, customers=customers, products=products, page_flags=page_flags)
    return profile_of(snapshot, reactivation_gap_days, attributes)


def profile_of(
    snapshot: AsOf, reactivation_gap_days: int = 365, attributes: Mapping[str, Any] | None = None
) -> ir.Table:
    """``customer_profile`` of a snapshot, from its shared aggregates."""
    as_of, customers, page_flags = snapshot.as_of, snapshot.customers, snapshot.page_flags
    active = behaviour_of(snapshot, reactivation_gap_days)
    known = snapshot.known_without_events()
    ids = known.union(active.select("customer_id")).distinct()
    traits = customers.select(
        "customer_id", "gender", "birth_year", "region", "country", "acquisition_channel", "signup_date"
    )
    spend = spend_of(snapshot)
    ranked = spend.mutate(
        rank=ibis.row_number().over(
            ibis.window(group_by="customer_id", order_by=[ibis.desc("spend"), "category"])
        )
    )
    top = ranked.filter(ranked["rank"] == 0).select("customer_id", top_category="category")
    joined = (
        ids.left_join(traits, "customer_id")
        .drop("customer_id_right")
        .left_join(active, "customer_id")
        .drop("customer_id_right")
        .left_join(top, "customer_id")
        .drop("customer_id_right")
    )
    if attributes:
        joined = joined.left_join(attribute_values(customers, attributes), "customer_id").drop(
            "customer_id_right"
        )
    zero_filled = {
        name: joined[name].fill_null(0)
        for name, dtype in PROFILE_COLUMNS.items()
        if dtype == "int64"
        and name in joined.columns
        and name not in ("age", "longest_gap_days")
        and not name.startswith("days_since")
    }
    out = joined.mutate(
        as_of=ibis.literal(as_of, type="date"),
        age=(ibis.literal(as_of.year) - joined.birth_year).cast("int64"),
        average_order_value=ibis.ifelse(
            joined.orders > 0, joined.revenue / joined.orders, ibis.null("float64")
        ),
        email_open_rate=ibis.ifelse(
            joined.emails_sent > 0, joined.email_opens / joined.emails_sent, ibis.null("float64")
        ),
        email_click_rate=ibis.ifelse(
            joined.emails_sent > 0, joined.email_clicks / joined.emails_sent, ibis.null("float64")
        ),
        revenue=joined.revenue.fill_null(0.0),
        returned=joined.returned.fill_null(0.0),
        **zero_filled,
    )
    flags = {
        name: out[name].fill_null(False)
        for name in profile_columns(page_flags)
        if name.startswith("visited_")
    }
    out = out.mutate(**flags)
    columns = profile_columns(page_flags, attributes)
    return out.select(*[out[name].cast(dtype).name(name) for name, dtype in columns.items()])

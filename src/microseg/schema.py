"""Table contracts of the microseg warehouse.

Every table the pipeline reads or writes is declared here once: column names, types, whether a
value is required, and what it means. The importer validates incoming rows against these
contracts, the warehouse creates its tables from them, and ``docs/data-model.md`` documents them.

Types are given as SQL types understood by every engine microseg runs on (DuckDB and Spark via
Ibis). Money is ``DECIMAL(18, 4)`` so that sums are exact and identical on every engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MONEY = "DECIMAL(18,4)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    doc: str = ""
    key: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def ibis_schema(self):
        import ibis

        return ibis.schema({c.name: _ibis_type(c) for c in self.columns})


def _ibis_type(column: Column) -> str:
    return {
        "VARCHAR": "string",
        "BIGINT": "int64",
        "INTEGER": "int32",
        "DOUBLE": "float64",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
        MONEY: "decimal(18, 4)",
    }[column.type]


# --- event types -----------------------------------------------------------------------------

#: Every kind of event microseg understands, with the source kind it usually comes from.
EVENT_TYPES: dict[str, str] = {
    "purchase": "a purchased line item (POS or e-commerce); one row per product in an order",
    "refund": "money returned for a purchased line item; quantity and amount are negative",
    "cancellation": "a cancelled order line; quantity and amount are negative",
    "page_view": "a web or app screen view",
    "email_sent": "a marketing email delivered to the customer",
    "email_open": "the customer opened a marketing email",
    "email_click": "the customer clicked a link in a marketing email",
    "social_follow": "the customer followed the brand on a social network (name = network)",
    "crm_update": "a CRM record changed: lead status, opportunity stage (name = object, status)",
    "app_event": "an app or IoT device event (name = event name)",
}

#: Event types that carry money and products.
COMMERCE_TYPES = ("purchase", "refund", "cancellation")
#: Event types whose quantity and amount are stored negative.
NEGATIVE_TYPES = ("refund", "cancellation")

# --- tables ------------------------------------------------------------------------------------

EVENTS = Table(
    "events",
    (
        Column(
            "event_id",
            "VARCHAR",
            True,
            "unique id: the source's own id, a hash of its event_key fields, or <file lineage>#<line>",
        ),
        Column("event_type", "VARCHAR", True, "one of the event types listed below"),
        Column("ts", "TIMESTAMP", True, "when it happened, UTC"),
        Column("customer_id", "VARCHAR", False, "known customer; empty for anonymous events"),
        Column("anonymous_id", "VARCHAR", False, "device or cookie id of an anonymous visitor"),
        Column("source", "VARCHAR", True, "name of the configured source it was imported from"),
        Column("channel", "VARCHAR", False, "pos, web, app, email, social, crm, iot ..."),
        Column("order_id", "VARCHAR", False, "order or invoice the line belongs to"),
        Column("product_id", "VARCHAR", False, "product of a commerce line"),
        Column("quantity", "BIGINT", False, "units; negative for refunds and cancellations"),
        Column("unit_price", MONEY, False, "price of one unit, never negative"),
        Column("amount", MONEY, False, "money of the line: quantity x unit_price unless given"),
        Column("currency", "VARCHAR", False, "ISO 4217 code"),
        Column("url", "VARCHAR", False, "page of a page view or clicked link"),
        Column("campaign_id", "VARCHAR", False, "marketing campaign or email the event belongs to"),
        Column("name", "VARCHAR", False, "app event name, social network, or CRM object"),
        Column("status", "VARCHAR", False, "CRM status such as a lead status or opportunity stage"),
        Column("properties", "VARCHAR", False, "any other fields, as a JSON object"),
        Column("import_id", "VARCHAR", True, "the import run that loaded the event"),
    ),
    "Everything a customer did, one row per event, from every source.",
    key=("event_id",),
)

CUSTOMERS = Table(
    "customers",
    (
        Column("customer_id", "VARCHAR", True, "the customer's id"),
        Column("email", "VARCHAR", False, "email address"),
        Column("crm_id", "VARCHAR", False, "id in the CRM"),
        Column("device_id", "VARCHAR", False, "main app or device id"),
        Column("first_name", "VARCHAR", False, ""),
        Column("last_name", "VARCHAR", False, ""),
        Column("gender", "VARCHAR", False, "as recorded by the source"),
        Column("birth_year", "INTEGER", False, "year of birth"),
        Column("city", "VARCHAR", False, ""),
        Column("region", "VARCHAR", False, "state, county or region"),
        Column("country", "VARCHAR", False, "country name or code"),
        Column("postal_code", "VARCHAR", False, ""),
        Column("signup_date", "DATE", False, "when the customer registered"),
        Column("acquisition_channel", "VARCHAR", False, "how the customer was acquired"),
        Column("traits", "VARCHAR", False, "any other traits, as a JSON object"),
        Column("source", "VARCHAR", True, "source that last updated the record"),
        Column("updated_at", "TIMESTAMP", True, "when the record was last imported"),
    ),
    "One row per known customer with their traits. Later imports update non-empty traits.",
    key=("customer_id",),
)

PRODUCTS = Table(
    "products",
    (
        Column("product_id", "VARCHAR", True, "the product's id (SKU, stock code)"),
        Column("name", "VARCHAR", False, "readable name"),
        Column("category", "VARCHAR", False, "category used for preferences and personas"),
        Column("subcategory", "VARCHAR", False, ""),
        Column("brand", "VARCHAR", False, ""),
        Column("price", MONEY, False, "list price"),
        Column("source", "VARCHAR", True, "source that last updated the record"),
        Column("updated_at", "TIMESTAMP", True, "when the record was last imported"),
    ),
    "One row per product. Later imports update non-empty fields.",
    key=("product_id",),
)

QUARANTINE = Table(
    "quarantine",
    (
        Column("import_id", "VARCHAR", True, "the import run"),
        Column("source", "VARCHAR", True, "source name"),
        Column("file", "VARCHAR", True, "file the row came from"),
        Column("row_number", "BIGINT", True, "1-based data row in the file (header not counted)"),
        Column("reason", "VARCHAR", True, "every check the row failed, separated by '; '"),
        Column("record", "VARCHAR", False, "the row as read, as a JSON object (or the raw line)"),
    ),
    "Rows that failed validation. Nothing rejected is dropped: it is kept here with its reason. "
    "Importing a file again replaces its rows (and those of the same content under another name).",
)

IMPORTS = Table(
    "imports",
    (
        Column("import_id", "VARCHAR", True, ""),
        Column("source", "VARCHAR", True, ""),
        Column("file", "VARCHAR", True, ""),
        Column("started_at", "TIMESTAMP", True, ""),
        Column("seconds", "DOUBLE", True, "wall time of the import"),
        Column("rows_read", "BIGINT", True, "data rows in the file"),
        Column("loaded", "BIGINT", True, "new rows stored"),
        Column("duplicates", "BIGINT", True, "rows already stored unchanged, or repeated in the file"),
        Column("quarantined", "BIGINT", True, "rows that failed validation"),
        Column(
            "details",
            "VARCHAR",
            False,
            "counts by event type, missing and rounded values, removed events, and rejection reasons, as JSON",
        ),
        Column("corrected", "BIGINT", False, "rows that changed an event already stored (the newer wins)"),
        Column("fingerprint", "VARCHAR", False, "SHA-256 of the file's bytes"),
        Column("bytes", "BIGINT", False, "size of the file"),
        Column("lineage", "VARCHAR", False, "the file family whose line numbers give events their ids"),
    ),
    "One row per imported file: rows_read = loaded + duplicates + corrected + quarantined.",
)

CUSTOMER_SUMMARY = Table(
    "customer_summary",
    (
        Column("customer_id", "VARCHAR", True, ""),
        Column("as_of", "DATE", True, "last day of events included"),
        Column("first_event_at", "TIMESTAMP", False, "first event of any type"),
        Column("last_event_at", "TIMESTAMP", False, "last event of any type"),
        Column("first_purchase_at", "TIMESTAMP", False, ""),
        Column("last_purchase_at", "TIMESTAMP", False, ""),
        Column("orders", "BIGINT", True, "distinct orders with at least one purchased line"),
        Column("purchase_days", "BIGINT", True, "distinct days with a purchase"),
        Column("items", "BIGINT", True, "units purchased"),
        Column("distinct_products", "BIGINT", True, "different products purchased"),
        Column("revenue", MONEY, True, "money of purchased lines"),
        Column("returned", MONEY, True, "money of refunds and cancellations (negative or zero)"),
        Column("net_revenue", MONEY, True, "revenue + returned"),
        Column("page_views", "BIGINT", True, ""),
        Column("emails_sent", "BIGINT", True, ""),
        Column("email_opens", "BIGINT", True, ""),
        Column("email_clicks", "BIGINT", True, ""),
        Column("social_follows", "BIGINT", True, ""),
        Column("crm_updates", "BIGINT", True, ""),
        Column("app_events", "BIGINT", True, ""),
    ),
    "Per-customer totals as of a date: the base of every feature and model. Every customer known "
    "on that date has a row, with zero totals when they have no events yet.",
    key=("customer_id", "as_of"),
)

CUSTOMER_VALUES = Table(
    "customer_values",
    (
        Column("customer_id", "VARCHAR", True, ""),
        Column("as_of", "DATE", True, "last day of events included"),
        Column("first_purchase", "DATE", True, "day of the first purchase"),
        Column("last_purchase", "DATE", True, "day of the last purchase"),
        Column(
            "transactions", "BIGINT", True, "days with a purchase (same-day purchases are one transaction)"
        ),
        Column("total_spend", "DOUBLE", True, "money of all purchases"),
        Column("average_transaction", "DOUBLE", True, "total_spend / transactions"),
        Column("tenure_days", "BIGINT", True, "days from the first purchase to the as-of date"),
        Column("days_since_last", "BIGINT", True, "days from the last purchase to the as-of date"),
        Column("frequency", "BIGINT", True, "repeat transactions (BTYD input)"),
        Column("recency", "DOUBLE", True, "age at the last transaction, in clv.period units (BTYD input)"),
        Column("T", "DOUBLE", True, "age on the as-of date, in clv.period units (BTYD input)"),
        Column("monetary_value", "DOUBLE", True, "mean money of repeat transactions (Gamma-Gamma input)"),
        Column("r_score", "INTEGER", True, "recency quintile score, 5 = most recent"),
        Column("f_score", "INTEGER", True, "frequency quintile score, 5 = most transactions"),
        Column("m_score", "INTEGER", True, "monetary quintile score, 5 = highest total spend"),
        Column("rfm_segment", "VARCHAR", True, "named RFM segment of the (r_score, f_score) cell"),
        Column("p_alive", "DOUBLE", False, "probability the customer is still active (BTYD model)"),
        Column("churn_risk", "DOUBLE", False, "1 - p_alive"),
        Column(
            "expected_purchases", "DOUBLE", False, "expected transactions in the next clv.purchases_days days"
        ),
        Column("expected_spend", "DOUBLE", False, "expected money per future transaction (Gamma-Gamma)"),
        Column("clv", "DOUBLE", False, "discounted expected spend over the next clv.horizon_months months"),
    ),
    "Per buying customer, as of a date: RFM, scores and CLV predictions. Predictions are empty when "
    "the models cannot be fitted (see the run's warnings).",
    key=("customer_id", "as_of"),
)

MODEL_FITS = Table(
    "model_fits",
    (
        Column("as_of", "DATE", True, ""),
        Column("model", "VARCHAR", True, "model name, e.g. BGNBD or GammaGamma"),
        Column("parameter", "VARCHAR", True, ""),
        Column("estimate", "DOUBLE", True, ""),
        Column("se", "DOUBLE", False, "standard error"),
        Column("log_likelihood", "DOUBLE", True, "of the whole fit"),
        Column("n_customers", "DOUBLE", True, "customers the model was fitted on"),
    ),
    "Fitted parameters of every model of every run.",
    key=("as_of", "model", "parameter"),
)

VALUE_MODELS = Table(
    "value_models",
    (
        Column("as_of", "DATE", True, ""),
        Column(
            "model", "VARCHAR", True, "BGNBD, ParetoNBD, MBGNBD or NBD (repeat buying), GammaGamma (spend)"
        ),
        Column("status", "VARCHAR", True, "chosen (gives the predictions), fitted, or failed"),
        Column("reason", "VARCHAR", False, "why it was chosen, or why it could not be fitted"),
        Column("calibration_end", "DATE", False, "last day of the calibration period of the holdout check"),
        Column(
            "holdout_customers",
            "BIGINT",
            False,
            "customers who bought by the calibration end, scored (at most 50,000: a sample beyond)",
        ),
        Column("holdout_actual", "DOUBLE", False, "their repeat transactions in the holdout period"),
        Column(
            "holdout_predicted", "DOUBLE", False, "predicted by the model fitted on the calibration period"
        ),
        Column(
            "holdout_rmse", "DOUBLE", False, "root mean squared error of per-customer holdout transactions"
        ),
        Column(
            "log_likelihood", "DOUBLE", False, "of the fit on all data (or on the sample its reason names)"
        ),
        Column(
            "dropout",
            "DOUBLE",
            False,
            "mean dropout: a/(a+b) per purchase (BG/NBD, MBG/NBD) or s/beta per clv.period (Pareto/NBD); "
            "0 for the NBD, where nobody leaves",
        ),
        Column("dropout_se", "DOUBLE", False, "its standard error (delta method); empty for the NBD"),
        Column("dropout_identified", "BOOLEAN", False, "the 95% interval of the dropout excludes 0"),
    ),
    "The models each run considered for customer value: the repeat-buying model chosen and why "
    "(holdout check or likelihood), the other candidates' scores or errors, the evidence for "
    "dropout, and the spend model.",
    key=("as_of", "model"),
)

_PROFILE = (
    ("customer_id", "VARCHAR", True, ""),
    ("as_of", "DATE", True, "last day of events included"),
    ("gender", "VARCHAR", False, ""),
    ("age", "BIGINT", False, "years, from the birth year"),
    ("region", "VARCHAR", False, ""),
    ("country", "VARCHAR", False, ""),
    ("acquisition_channel", "VARCHAR", False, ""),
    ("signup_date", "DATE", False, ""),
    ("orders", "BIGINT", True, "distinct orders with a purchased line"),
    ("transactions", "BIGINT", True, "days with a purchase"),
    ("revenue", "DOUBLE", True, "money of purchased lines"),
    ("returned", "DOUBLE", True, "money of refunds and cancellations (positive)"),
    ("average_order_value", "DOUBLE", False, "revenue / orders"),
    ("items", "BIGINT", True, "units purchased"),
    ("distinct_products", "BIGINT", True, ""),
    ("first_purchase", "DATE", False, ""),
    ("last_purchase", "DATE", False, ""),
    ("days_since_first_purchase", "BIGINT", False, ""),
    ("days_since_last_purchase", "BIGINT", False, ""),
    ("rhythm_days", "DOUBLE", False, "mean days between purchase days (two or more purchase days)"),
    ("longest_gap_days", "BIGINT", False, "longest pause between purchase days"),
    (
        "last_return_after_gap",
        "DATE",
        False,
        "last purchase after a pause of segments.reactivation_gap_days or more",
    ),
    ("days_since_return", "BIGINT", False, "days since last_return_after_gap"),
    ("page_views", "BIGINT", True, ""),
    ("page_views_30d", "BIGINT", True, ""),
    ("page_views_90d", "BIGINT", True, ""),
    ("emails_sent", "BIGINT", True, ""),
    ("email_opens", "BIGINT", True, ""),
    ("email_clicks", "BIGINT", True, ""),
    ("email_open_rate", "DOUBLE", False, "opens / emails sent"),
    ("email_click_rate", "DOUBLE", False, "clicks / emails sent"),
    ("email_opens_90d", "BIGINT", True, ""),
    ("app_events", "BIGINT", True, ""),
    ("app_events_90d", "BIGINT", True, ""),
    ("social_follows", "BIGINT", True, ""),
    ("crm_updates", "BIGINT", True, ""),
    ("first_event_at", "TIMESTAMP", False, ""),
    ("last_event_at", "TIMESTAMP", False, ""),
    ("days_known", "BIGINT", False, "days since the first event (at least 1)"),
    ("pos_share", "DOUBLE", False, "share of purchased lines bought in store"),
    ("web_share", "DOUBLE", False, "share bought on the web"),
    ("app_share", "DOUBLE", False, "share bought in the app"),
    ("top_category", "VARCHAR", False, "category with the most spend"),
)

#: The behavioural profile every segmentation layer reads (without the segment columns).
PROFILE_FEATURES = tuple(Column(*c) for c in _PROFILE)

CUSTOMER_PROFILES = Table(
    "customer_profiles",
    (
        *PROFILE_FEATURES,
        Column(
            "stage", "VARCHAR", True, "lifecycle stage: prospect, new, active, at_risk, churned, reactivated"
        ),
        Column("clv_tier", "VARCHAR", True, "top_1, top_5, top_20, rest or none"),
        Column("rfm_tier", "VARCHAR", True, "named RFM segment, or none"),
        Column("tenure_tier", "VARCHAR", True, ""),
        Column("engagement_tier", "VARCHAR", True, "high, medium, low or none"),
        Column("composite_code", "VARCHAR", True, "the four tiers joined: clv/rfm/tenure/engagement"),
    ),
    "Every customer known on a date: traits, buying, rhythm, engagement, channels, stage and tiers.",
    key=("customer_id", "as_of"),
)

CUSTOMER_CATEGORIES = Table(
    "customer_categories",
    (
        Column("customer_id", "VARCHAR", True, ""),
        Column("as_of", "DATE", True, ""),
        Column("category", "VARCHAR", True, "product category (unknown when the product has none)"),
        Column("spend", "DOUBLE", True, ""),
        Column("share", "DOUBLE", True, "share of the customer's spend"),
    ),
    "Spend of every customer by product category.",
    key=("customer_id", "as_of", "category"),
)

SEGMENT_MEMBERSHIPS = Table(
    "segment_memberships",
    (
        Column("customer_id", "VARCHAR", True, ""),
        Column("as_of", "DATE", True, ""),
        Column(
            "kind",
            "VARCHAR",
            True,
            "layer: lifecycle, clv_tier, rfm_tier, tenure_tier, engagement_tier, "
            "composite_code, composite, behaviour, demographic, micro or rule",
        ),
        Column("segment_id", "VARCHAR", True, ""),
    ),
    "Who is in which segment on a date. One segment per customer in every layer but composite and "
    "rule, where a customer can be in any number.",
    key=("customer_id", "as_of", "kind", "segment_id"),
)

SEGMENTS = Table(
    "segments",
    (
        Column("as_of", "DATE", True, ""),
        Column("kind", "VARCHAR", True, "layer"),
        Column("segment_id", "VARCHAR", True, "stable across runs for clustered layers"),
        Column("label", "VARCHAR", True, "persona label"),
        Column("size", "BIGINT", True, "customers"),
        Column(
            "share",
            "DOUBLE",
            True,
            "share of the layer's customers (of all customers for composite and rule)",
        ),
        Column("revenue_share", "DOUBLE", False, "share of the layer's revenue"),
        Column("mean_clv", "DOUBLE", False, ""),
        Column("card", "VARCHAR", True, "the persona card, as JSON"),
        Column("centroid", "VARCHAR", False, "cluster centre in feature units, as JSON (clustered layers)"),
    ),
    "Every segment of every layer on a date, with its persona.",
    key=("as_of", "kind", "segment_id"),
)

SEGMENT_CHANGES = Table(
    "segment_changes",
    (
        Column("as_of", "DATE", True, ""),
        Column("kind", "VARCHAR", True, "behaviour or demographic"),
        Column("event", "VARCHAR", True, "kept, new, merged, split or vanished"),
        Column("old_id", "VARCHAR", False, ""),
        Column("new_id", "VARCHAR", False, ""),
        Column("basis", "VARCHAR", False, "members or centroid (refitted), model (kept model)"),
        Column("shared", "BIGINT", False, "customers in both"),
        Column("overlap", "DOUBLE", False, "overlap coefficient of the members"),
    ),
    "How the clustered segments of a run continue those of the previous run.",
)

SEGMENT_REGISTRY = Table(
    "segment_registry",
    (
        Column("segment_id", "VARCHAR", True, "every clustered segment id ever used (never reused)"),
        Column("kind", "VARCHAR", True, ""),
        Column("first_as_of", "DATE", True, ""),
        Column("last_as_of", "DATE", True, ""),
    ),
    "Every clustered segment id ever handed out.",
    key=("segment_id",),
)

SEGMENT_MODELS = Table(
    "segment_models",
    (
        Column("as_of", "DATE", True, ""),
        Column("kind", "VARCHAR", True, "clustered layer: behaviour or demographic"),
        Column("scope", "VARCHAR", True, "the stage a behaviour model clusters, or all for demographic"),
        Column("status", "VARCHAR", True, "reused (the earlier model's centres) or refitted"),
        Column("reason", "VARCHAR", True, "why the model was reused or refitted"),
        Column("fitted_as_of", "DATE", True, "snapshot the model was fitted on"),
        Column("k", "BIGINT", True, "segments of the model"),
        Column("stability", "DOUBLE", True, "agreement of seeded fits (median pairwise adjusted Rand index)"),
        Column("quality", "DOUBLE", True, "mean simplified silhouette of this snapshot's customers"),
        Column("fit_quality", "DOUBLE", True, "the same when the model was fitted"),
        Column("customers", "BIGINT", True, "customers assigned"),
        Column("model", "VARCHAR", True, "JSON: feature spec, columns, scaling, centres and segment ids"),
    ),
    "The clustering model of each clustered layer (and stage) on a date, and whether it was kept.",
    key=("as_of", "kind", "scope"),
)

SNAPSHOTS = Table(
    "snapshots",
    (
        Column("as_of", "DATE", True, "the date of the snapshot: only events up to its end count"),
        Column("computed_at", "TIMESTAMP", True, "when the pipeline last ran for this date (UTC)"),
        Column("seconds", "DOUBLE", True, "how long that run took"),
        Column("customers", "BIGINT", True, "customers in the snapshot"),
        Column("events", "BIGINT", True, "events up to the snapshot date"),
        Column(
            "fingerprint",
            "VARCHAR",
            True,
            "digest of the inputs (events up to the date, customers, products, settings): "
            "a snapshot whose fingerprint is unchanged is not computed again",
        ),
    ),
    "Every date the pipeline has run for.",
    key=("as_of",),
)

SEGMENT_HISTORY = Table(
    "segment_history",
    (
        Column("customer_id", "VARCHAR", True, ""),
        Column("kind", "VARCHAR", True, "layer, as in segment_memberships"),
        Column("segment_id", "VARCHAR", True, ""),
        Column("valid_from", "DATE", True, "first snapshot of this stay in the segment"),
        Column(
            "valid_to",
            "DATE",
            False,
            "first snapshot after it the customer was no longer in the segment; empty while still in it",
        ),
    ),
    "Membership history: each stay of a customer in a segment as an interval of snapshot dates "
    "[valid_from, valid_to). A customer was in the segment on date D when valid_from <= D and "
    "D < valid_to (or valid_to is empty), judged by the latest snapshot on or before D.",
    key=("customer_id", "kind", "segment_id", "valid_from"),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        EVENTS,
        CUSTOMERS,
        PRODUCTS,
        QUARANTINE,
        IMPORTS,
        CUSTOMER_SUMMARY,
        CUSTOMER_VALUES,
        MODEL_FITS,
        VALUE_MODELS,
        CUSTOMER_PROFILES,
        CUSTOMER_CATEGORIES,
        SEGMENT_MEMBERSHIPS,
        SEGMENTS,
        SEGMENT_CHANGES,
        SEGMENT_REGISTRY,
        SEGMENT_MODELS,
        SNAPSHOTS,
        SEGMENT_HISTORY,
    )
}

#: The tables a source can write to, by source kind.
SOURCE_TARGETS = {"events": EVENTS, "customers": CUSTOMERS, "products": PRODUCTS}


def contracts_markdown() -> str:
    """The data-model reference (``docs/data-model.md``), generated from the contracts above."""
    out = [
        "# Data model",
        "",
        "Generated from `microseg.schema` by `make docs`; a test keeps it in step with the code.",
        "Money is `DECIMAL(18,4)`; timestamps are UTC. Required columns are marked **yes**.",
        "",
    ]
    for table in TABLES.values():
        out += [f"## `{table.name}`", "", table.doc, ""]
        if table.key:
            out += [f"Key: `{', '.join(table.key)}`.", ""]
        out += ["| column | type | required | meaning |", "|---|---|---|---|"]
        out += [
            f"| `{c.name}` | {c.type} | {'**yes**' if c.required else ''} | {c.doc} |" for c in table.columns
        ]
        out.append("")
    out += ["## Event types", "", "| event_type | meaning |", "|---|---|"]
    out += [f"| `{name}` | {doc} |" for name, doc in EVENT_TYPES.items()]
    return "\n".join(out) + "\n"

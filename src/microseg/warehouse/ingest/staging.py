"""Step 2 of an import: map source columns onto a table contract and check every row.

The result is one SQL query over the raw file with, per row, the typed columns of the target
table, ``__reason`` (every check the row fails, ``''`` when it passes, in the marked form of
``markers``), one ``__missing:<field>`` flag per mapped field and one ``__rounded:<field>`` flag
per money field (for the import summary), and ``__record`` (the row as read, kept only for
failing rows). It is built in two layers: the first reads and normalises each source value once,
the second converts and checks them.

Events get their ids here: the source's ``event_id``, a hash of the ``event_key`` fields, or,
without either, ``<lineage>#<row>`` (see ``lineage``): every line of a file is an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from microseg.config import SourceConfig, mappable_fields
from microseg.errors import SourceError
from microseg.schema import (
    COMMERCE_TYPES,
    CUSTOMERS,
    EVENT_TYPES,
    EVENTS,
    MONEY,
    NEGATIVE_TYPES,
    PRODUCTS,
    Column,
    Table,
)
from microseg.warehouse.duckdb import quote_ident, quote_literal
from microseg.warehouse.ingest.markers import joined, marked, shown
from microseg.warehouse.ingest.readers import RawFile

ID_FIELDS = {
    "event_id",
    "customer_id",
    "anonymous_id",
    "order_id",
    "product_id",
    "crm_id",
    "device_id",
    "campaign_id",
}
TYPE_WORDS = {
    "TIMESTAMP": "a timestamp",
    "DATE": "a date",
    "BIGINT": "a whole number",
    "INTEGER": "a whole number",
    MONEY: "a number",
    "DOUBLE": "a number",
}
INTEGER_TYPES = {
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
}
EARLIEST = "1970-01-01"
#: The largest value one field may hold; larger ones are quarantined.
MAX_VALUE_BYTES = 2 * 1024 * 1024
#: Real UTC offsets run from -12:00 to +14:00 (in seconds).
OFFSETS = (-12 * 3600, 14 * 3600)
MONEY_DIGITS = 14  # before the decimal point, in DECIMAL(18,4)
#: Stage columns that are not fields of the target table.
CUSTOMER_PREFIX, PRODUCT_PREFIX = "customer.", "product."


@dataclass
class Mapping:
    """Target field -> source column, resolved against one file."""

    fields: dict[str, str]
    customer: dict[str, str]
    product: dict[str, str]
    leftovers: list[str]  # source columns no field uses
    matched: set[str] = field(default_factory=set)  # fields matched by name, not configured


def delimiter_hint(columns) -> str:
    """When a file reads as one column whose name holds a separator, the separator to set."""
    names = list(columns)
    if len(names) != 1:
        return ""
    for sep, written in ((";", ";"), ("\t", "\\t"), ("|", "|"), (",", ","), (" ", " ")):
        if sep in names[0].strip():
            return f' (the file seems to separate fields with {written!r}: set delimiter = "{written}")'
    return ""


def resolve_mapping(source: SourceConfig, raw: RawFile) -> Mapping:
    """The source's mapping plus same-name matches; every named column must exist."""
    available = raw.columns

    def check(mapping: dict[str, str], setting: str) -> dict[str, str]:
        for target, column in mapping.items():
            if not raw.json_lines and column not in available:
                raise SourceError(
                    f"sources.{source.name}.{setting}.{target}: column {column!r} is not in the file; "
                    f"its columns are: {', '.join(available)}{delimiter_hint(available)}"
                )
        return dict(mapping)

    fields = check(source.columns, "columns")
    by_lower = {c.lower(): c for c in available}
    taken = set(fields.values())
    matched: set[str] = set()
    for target in mappable_fields(source.kind):
        if target in fields or target.lower() not in by_lower or by_lower[target.lower()] in taken:
            continue
        if target == "event_type" and source.event_type is not None:
            continue
        fields[target] = by_lower[target.lower()]
        matched.add(target)
    customer = check(source.customer_columns, "customer_columns")
    product = check(source.product_columns, "product_columns")
    for rule in source.classify:
        if not raw.json_lines and rule.column not in available:
            raise SourceError(
                f"sources.{source.name}.classify: column {rule.column!r} is not in the file; "
                f"its columns are: {', '.join(available)}"
            )
    used = {*fields.values(), *customer.values(), *product.values(), *(r.column for r in source.classify)}
    return Mapping(fields, customer, product, [c for c in available if c not in used], matched)


@dataclass
class StagePlan:
    sql: str
    missing: list[str]  # labels of the __missing:<label> columns
    rounded: list[str] = field(default_factory=list)  # labels of the __rounded:<label> columns


def _label(field_name: str, column: str) -> str:
    return field_name if field_name == column else f"{field_name} ({column})"


def _too_large(label: str, value_sql: str) -> str:
    return (
        f"CASE WHEN strlen({value_sql}) > {MAX_VALUE_BYTES} THEN '{label}: the value is ' || "
        f"{marked(f'round(strlen({value_sql}) / 1048576, 1)')} || ' MB, over the "
        f"{MAX_VALUE_BYTES // 2**20} MB limit' END"
    )


def _may_have_more_decimals(source_type: str) -> bool:
    """Whether values of this type can carry more than the 4 decimals money keeps."""
    if source_type in ("VARCHAR", "DOUBLE", "FLOAT"):
        return True
    if source_type.startswith("DECIMAL("):
        return int(source_type.rstrip(")").split(",")[1]) > 4
    return False


def _numeric_text(value: str, source: SourceConfig) -> str:
    """SQL of a number written as text, with a decimal comma read as a point when configured."""
    if source.decimal_separator != ",":
        return value
    return f"replace(replace(replace(replace({value}, '.', ''), ' ', ''), chr(160), ''), ',', '.')"


class _Stage:
    """Collects the two layers of the staging query."""

    def __init__(self, source: SourceConfig, raw: RawFile) -> None:
        self.source = source
        self.raw = raw
        self.first: dict[str, str] = {}  # alias -> SQL over the raw relation
        self.typed: dict[str, str] = {}  # field key -> SQL over the first layer
        self.present: dict[str, str] = {}  # field key -> normalised value column
        self.labels: dict[str, str] = {}  # field key -> label used in reasons
        self.reasons: list[str] = []
        self.select: dict[str, str] = {}  # output column -> SQL over the first layer
        self.matched: set[str] = set()  # fields matched by name: missing values are not counted
        self.rounded: dict[str, str] = {}  # label -> SQL: the value had more than 4 decimals
        self.exact: dict[str, str] = {}  # field key -> SQL of the money value before rounding

    # -- first layer: each source value read and normalised once ---------------------------
    def raw_value(self, column: str) -> str:
        if self.raw.json_lines:
            path = "$." + ".".join(json.dumps(p) for p in column.split("."))
            return f"(CASE WHEN __ok THEN json_extract_string(__line, {quote_literal(path)}) END)"
        return quote_ident(column)

    def source_type(self, column: str) -> str:
        return "VARCHAR" if self.raw.json_lines else self.raw.columns[column]

    def normalised(self, column: str) -> str:
        """A first-layer column: the value with null markers (and NaN) turned into NULL."""
        alias = f"v:{column}"
        if alias not in self.first:
            value, typ = self.raw_value(column), self.source_type(column)
            if typ == "VARCHAR":
                # a chain of equalities: DuckDB turns an IN list into a (slower) join
                is_null = (
                    " OR ".join(f"trim({value}) = {quote_literal(n)}" for n in self.source.null_values)
                    or "false"
                )
                sql = f"(CASE WHEN {is_null} THEN NULL ELSE trim({value}) END)"
            elif typ in ("DOUBLE", "FLOAT"):
                sql = f"(CASE WHEN isnan({value}) THEN NULL ELSE {value} END)"
            else:
                sql = value
            self.first[alias] = sql
        return quote_ident(alias)

    def text(self, column: str) -> str:
        """A first-layer column: the raw value as text (for classify rules)."""
        alias = f"c:{column}"
        if alias not in self.first:
            self.first[alias] = f"CAST({self.raw_value(column)} AS VARCHAR)"
        return quote_ident(alias)

    # -- second layer: conversions and checks ---------------------------------------------
    def add_field(self, key: str, column: str, col: Column) -> None:
        value = self.normalised(column)
        typ = self.source_type(column)
        sql, can_fail = _convert(col, value, typ, self.source, key in ID_FIELDS)
        self.typed[key] = sql
        self.present[key] = value
        self.labels[key] = label = _label(key, column)
        cannot_read = f"'{label}: cannot read ' || {shown(value)} || ' as {TYPE_WORDS.get(col.type, 'text')}'"
        if col.type == MONEY and _may_have_more_decimals(typ):
            text = _numeric_text(value, self.source) if typ == "VARCHAR" else value
            cannot_read = (
                f"CASE WHEN TRY_CAST({text} AS DOUBLE) IS NOT NULL THEN '{label}: ' || {shown(value)} || "
                f"' is too large (at most {MONEY_DIGITS} digits before the decimal point)' ELSE {cannot_read} END"
            )
            # more than 4 decimals: reported, and amounts are computed from the unrounded value
            exact = f"TRY_CAST({text} AS DECIMAL(18,8))"
            self.rounded[label] = f"({exact} <> {sql})"
            self.exact[key] = exact
        if can_fail:
            self.reasons.append(f"CASE WHEN {value} IS NOT NULL AND {sql} IS NULL THEN {cannot_read} END")
        if typ == "VARCHAR" and self.raw.json_lines:
            self.size_check(label, self.raw_value(column))

    def size_check(self, label: str, value_sql: str) -> None:
        """A value over ``MAX_VALUE_BYTES`` is quarantined with its size."""
        self.reasons.append(_too_large(label, value_sql))

    def require(self, key: str, fields: dict[str, str]) -> None:
        if key not in fields:
            raise SourceError(
                f"sources.{self.source.name}.columns.{key}: required, but not mapped and no column "
                f"of that name is in the file (columns: {', '.join(self.raw.columns)})"
                f"{delimiter_hint(self.raw.columns)}"
            )
        self.reasons.insert(
            0, f"CASE WHEN {self.present[key]} IS NULL THEN '{self.labels[key]}: missing' END"
        )

    def size_checks(self, mapping: Mapping) -> None:
        """Every text column of a delimited file or sheet, mapped or not, is size-checked."""
        if self.raw.json_lines:
            return
        label_of = {column: self.labels.get(key, column) for key, column in mapping.fields.items()}
        # the raw columns reach the checks as __raw_<i> (see plan)
        texts = [
            (label_of.get(column, column), f"__raw_{i}")
            for i, (column, typ) in enumerate(self.raw.columns.items())
            if typ == "VARCHAR"
        ]
        if texts:  # one cheap test per row; which value is too large only when one is
            longest = "greatest(" + ", ".join(f"coalesce(strlen({v}), 0)" for _, v in texts) + ")"
            each = joined([_too_large(label, v) for label, v in texts])
            self.reasons.append(f"CASE WHEN {longest} > {MAX_VALUE_BYTES} THEN {each} END")

    def leftover_json(self, mapping: Mapping) -> str:
        """The source columns no field uses, as a JSON object (so nothing read is lost)."""
        if self.raw.json_lines:
            used = {
                c.split(".")[0]
                for c in (*mapping.fields.values(), *mapping.customer.values(), *mapping.product.values())
            }
            keys = ", ".join(quote_literal(c) for c in sorted(used)) or "''"
            obj = (
                f"to_json(map_from_entries(list_transform(list_filter(json_keys(__line), "
                f"lambda k: NOT list_contains([{keys}], k)), lambda k: {{key: k, value: __line -> k}})))"
            )
            return f"(CASE WHEN __ok THEN nullif(CAST({obj} AS VARCHAR), '{{}}') END)"
        if not mapping.leftovers:
            return "CAST(NULL AS VARCHAR)"
        parts = ", ".join(f"{quote_ident(c)} := {self.normalised(c)}" for c in mapping.leftovers)
        return f"CAST(to_json(struct_pack({parts})) AS VARCHAR)"

    def plan(self) -> StagePlan:
        raw = self.raw
        passthrough = ["__line", "__ok"] if raw.json_lines else []
        record_cols = {} if raw.json_lines else {f"__raw_{i}": c for i, c in enumerate(raw.columns)}
        first = ["__row", *passthrough]
        first += [f"{quote_ident(c)} AS {alias}" for alias, c in record_cols.items()]
        first += [f"{sql} AS {quote_ident(alias)}" for alias, sql in self.first.items()]
        reason = joined(self.reasons)
        if raw.json_lines:  # a line that is not a JSON object fails for that reason alone
            reason = f"(CASE WHEN __ok THEN {reason} ELSE 'not a JSON object' END)"
        second = ["__row", *passthrough, *record_cols]
        second += [f"{sql} AS {quote_ident(name)}" for name, sql in self.select.items()]
        second.append(f"{reason} AS __reason")
        counted = [k for k in self.present if k not in self.matched]  # configured fields only
        second += [
            f"({self.present[k]} IS NULL) AS {quote_ident('__missing:' + self.labels[k])}" for k in counted
        ]
        second += [
            f"coalesce({sql}, false) AS {quote_ident('__rounded:' + label)}"
            for label, sql in self.rounded.items()
        ]
        if raw.json_lines:
            record = "__line"
        else:
            record = (
                "CAST(to_json(struct_pack("
                + ", ".join(f"{quote_ident(c)} := {alias}" for alias, c in record_cols.items())
                + ")) AS VARCHAR)"
            )
        drop = [*passthrough, *record_cols]
        exclude = f" EXCLUDE ({', '.join(drop)})" if drop else ""
        sql = (
            f"SELECT *{exclude}, CASE WHEN __reason <> '' THEN {record} END AS __record FROM ("
            f"SELECT {', '.join(second)} FROM (SELECT {', '.join(first)} FROM {raw.sql}))"
        )
        return StagePlan(sql, [self.labels[k] for k in counted], list(self.rounded))


def _convert(col: Column, value: str, src_type: str, source: SourceConfig, is_id: bool) -> tuple[str, bool]:
    """SQL converting a normalised source value to the contract type (NULL when it cannot),
    and whether the conversion can fail."""
    target = col.type
    numeric = src_type in ("DOUBLE", "FLOAT") or src_type.startswith("DECIMAL")
    if target == "VARCHAR":
        if numeric:  # an id read from a float column: 17850.0 is "17850"
            return (
                f"(CASE WHEN {value} = round({value}) AND abs({value}) < 1e15 "
                f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) ELSE CAST({value} AS VARCHAR) END)"
            ), False
        if src_type != "VARCHAR":
            return f"CAST({value} AS VARCHAR)", False
        if is_id:  # the same id exported through a float column as text
            return rf"regexp_replace({value}, '^(-?[0-9]+)\.0+$', '\1')", False
        return value, False
    if target in ("BIGINT", "INTEGER"):
        if src_type in INTEGER_TYPES:
            return f"TRY_CAST({value} AS {target})", True
        text = _numeric_text(value, source) if src_type == "VARCHAR" else value
        number = f"TRY_CAST({text} AS DOUBLE)"
        return (
            f"(CASE WHEN {number} = round({number}) AND abs({number}) < 9e15 THEN CAST({number} AS {target}) END)",
            True,
        )
    if target in (MONEY, "DOUBLE"):
        text = _numeric_text(value, source) if src_type == "VARCHAR" else value
        return f"TRY_CAST({text} AS {target})", True
    if target == "DATE":
        if src_type == "VARCHAR":
            return f"coalesce(TRY_CAST({value} AS DATE), CAST(TRY_CAST({value} AS TIMESTAMP) AS DATE))", True
        return f"TRY_CAST({value} AS DATE)", True
    if target == "TIMESTAMP":
        return _timestamp(value, src_type, source.timestamp_format, source.timezone), True
    raise AssertionError(f"no conversion to {target}")


def _timestamp(value: str, src_type: str, fmt: str | None, timezone: str) -> str:
    """SQL of a UTC timestamp. While a file stages, the session time zone is the source's, so
    values without an offset are read in that zone. With ``timestamp_format``, ISO text (how a
    spreadsheet's date cells read) is accepted too."""
    if timezone == "UTC" and src_type in ("TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"):
        return f"CAST({value} AS TIMESTAMP)"  # already UTC: no time-zone arithmetic
    if src_type == "VARCHAR":
        parsed = (
            f"coalesce(CAST(try_strptime({value}, {quote_literal(fmt)}) AS TIMESTAMPTZ), "
            f"TRY_CAST({value} AS TIMESTAMPTZ))"
            if fmt
            else f"TRY_CAST({value} AS TIMESTAMPTZ)"
        )
    elif src_type.startswith("TIMESTAMP WITH TIME ZONE"):
        parsed = value
    elif src_type.startswith("TIMESTAMP") or src_type == "DATE":
        parsed = f"CAST({value} AS TIMESTAMPTZ)"
    elif src_type in INTEGER_TYPES or src_type in ("DOUBLE", "FLOAT") or src_type.startswith("DECIMAL"):
        parsed = f"to_timestamp(CAST({value} AS DOUBLE))"  # epoch seconds
    else:
        parsed = f"TRY_CAST(CAST({value} AS VARCHAR) AS TIMESTAMPTZ)"
    return f"({parsed} AT TIME ZONE 'UTC')"


def _negative_price(stage: _Stage, key: str) -> None:
    if not stage.source.allow_negative_prices:
        price = stage.typed[key]
        stage.reasons.append(
            f"CASE WHEN {price} < 0 THEN '{stage.labels[key]}: ' || {marked(price)} || ' is negative' END"
        )


def build_stage(
    source: SourceConfig, raw: RawFile, mapping: Mapping, table: Table, currency: str, lineage: str = ""
) -> StagePlan:
    """The staging query of one file for ``table`` (events, customers or products); ``lineage``
    names the file family whose line numbers identify events without an id of their own."""
    stage = _Stage(source, raw)
    stage.matched = mapping.matched
    for key, column in mapping.fields.items():
        stage.add_field(key, column, table.column(key))
    if table is EVENTS:
        for key, column in mapping.customer.items():
            stage.add_field(CUSTOMER_PREFIX + key, column, CUSTOMERS.column(key))
        for key, column in mapping.product.items():
            stage.add_field(PRODUCT_PREFIX + key, column, PRODUCTS.column(key))
        _event_rules(stage, mapping, currency, lineage)
    else:
        _entity_rules(stage, mapping, table)
    stage.size_checks(mapping)
    return stage.plan()


def _entity_rules(stage: _Stage, mapping: Mapping, table: Table) -> None:
    stage.require(table.key[0], mapping.fields)
    for c in table.columns:
        if c.name not in ("source", "updated_at", "traits"):
            stage.select[c.name] = stage.typed.get(c.name, f"CAST(NULL AS {c.type})")
    if table is CUSTOMERS:
        if "birth_year" in stage.typed:
            year = stage.typed["birth_year"]
            stage.reasons.append(
                f"CASE WHEN {year} < 1900 OR {year} > year(current_date) THEN "
                f"'{stage.labels['birth_year']}: ' || {marked(year)} || ' is not a plausible year of birth' END"
            )
        if "email" in stage.typed:
            email = stage.typed["email"]
            stage.reasons.append(
                f"CASE WHEN {email} NOT LIKE '%_@_%' THEN "
                f"'{stage.labels['email']}: ' || {shown(email)} || ' is not an email address' END"
            )
        stage.select["traits"] = stage.leftover_json(mapping)
    if table is PRODUCTS and "price" in stage.typed:
        _negative_price(stage, "price")


def _event_type(stage: _Stage, mapping: Mapping) -> str:
    """SQL of the event type: a column or a constant, with classify rules on top."""
    source = stage.source
    if "event_type" in mapping.fields:
        base = f"lower({stage.typed['event_type']})"
    elif source.event_type is not None:
        base = quote_literal(source.event_type)
    elif source.classify:
        base = "NULL"
    else:
        raise SourceError(
            f"sources.{source.name}: set event_type (one of {', '.join(EVENT_TYPES)}) or map "
            "columns.event_type to a column holding it"
        )
    whens = []
    for rule in source.classify:
        value = stage.text(rule.column)
        if rule.starts_with is not None:
            test = f"starts_with({value}, {quote_literal(rule.starts_with)})"
        elif rule.equals is not None:
            test = f"{value} = {quote_literal(rule.equals)}"
        else:
            test = f"{value} IN ({', '.join(quote_literal(v) for v in rule.one_of)})"
        whens.append(f"WHEN {test} THEN {quote_literal(rule.event_type)}")
    return f"(CASE {' '.join(whens)} ELSE {base} END)" if whens else base


def _event_rules(stage: _Stage, mapping: Mapping, currency: str, lineage: str) -> None:
    """Event checks: type, time range, customer policy, signs of quantities, money."""
    source, fields, typed = stage.source, mapping.fields, stage.typed
    kind = _event_type(stage, mapping)
    known = ", ".join(quote_literal(t) for t in EVENT_TYPES)
    stage.reasons.append(
        f"CASE WHEN {kind} IS NULL THEN 'event_type: missing' WHEN {kind} NOT IN ({known}) "
        f"THEN 'event_type: ' || {shown(kind)} || ' is not an event type' END"
    )
    stage.require("ts", fields)
    ts = typed["ts"]
    _offset_check(stage, fields["ts"])
    stage.reasons.append(
        f"CASE WHEN {ts} < TIMESTAMP '{EARLIEST}' OR {ts} > (now() AT TIME ZONE 'UTC') + INTERVAL 1 DAY "
        f"THEN '{stage.labels['ts']}: ' || {marked(ts)} || ' is out of range (1970 to today)' END"
    )
    if "event_id" in fields:
        stage.require("event_id", fields)
    if source.missing_customer == "quarantine":
        if "customer_id" not in fields:
            raise SourceError(
                f'sources.{source.name}: missing_customer = "quarantine" needs a customer_id column'
            )
        stage.require("customer_id", fields)
    negative = f"{kind} IN ({', '.join(quote_literal(t) for t in NEGATIVE_TYPES)})"
    commerce = f"{kind} IN ({', '.join(quote_literal(t) for t in COMMERCE_TYPES)})"
    quantity = amount = "NULL"
    if "quantity" in fields:
        q, label = typed["quantity"], stage.labels["quantity"]
        stage.reasons.append(
            f"CASE WHEN {commerce} AND {stage.present['quantity']} IS NULL THEN '{label}: missing' "
            f"WHEN {kind} = 'purchase' AND {q} <= 0 THEN '{label}: ' || {marked(q)} || ' must be positive for a purchase' "
            f"WHEN {negative} AND {q} = 0 THEN '{label}: 0 for a ' || {marked(kind)} END"
        )
        quantity = f"(CASE WHEN {negative} THEN -abs({q}) ELSE {q} END)"
    elif source.default_quantity is not None:
        q = f"CAST({int(source.default_quantity)} AS BIGINT)"
        quantity = f"(CASE WHEN {commerce} THEN (CASE WHEN {negative} THEN -{q} ELSE {q} END) END)"
    if "unit_price" in fields:
        stage.reasons.append(
            f"CASE WHEN {commerce} AND {stage.present['unit_price']} IS NULL THEN '{stage.labels['unit_price']}: missing' END"
        )
        _negative_price(stage, "unit_price")
    if "amount" in fields:
        amount = typed["amount"]
        stage.reasons.append(
            f"CASE WHEN {commerce} AND {stage.present['amount']} IS NULL THEN '{stage.labels['amount']}: missing' END"
        )
    elif "unit_price" in fields and quantity != "NULL":
        # from the unrounded price, so that 1,000 x 0.00125 is 1.25, not 1.30
        q = typed["quantity"] if "quantity" in fields else f"CAST({int(source.default_quantity)} AS BIGINT)"
        price = stage.exact.get("unit_price", typed["unit_price"])
        amount = f"TRY_CAST({q} * {price} AS {MONEY})"
        # the exact product is checked only near the limit, where the cheap one cannot tell
        near = f"abs(CAST({q} AS DOUBLE) * CAST({typed['unit_price']} AS DOUBLE)) >= 0.99e{MONEY_DIGITS}"
        stage.reasons.append(
            f"CASE WHEN {commerce} AND {near} THEN (CASE WHEN {amount} IS NULL "
            f"THEN 'amount: quantity × unit_price is too large (' || {marked(q)} || ' × ' || "
            f"{marked(typed['unit_price'])} || ')' END) END"
        )
    else:
        _no_amount(stage, mapping, commerce)
    if amount != "NULL":
        amount = f"(CASE WHEN {negative} THEN -abs({amount}) ELSE {amount} END)"

    select = stage.select
    for c in EVENTS.columns:
        if c.name not in ("source", "import_id"):
            select[c.name] = typed.get(c.name, f"CAST(NULL AS {c.type})")
    select["event_type"] = kind
    select["quantity"] = f"CAST({quantity} AS BIGINT)"
    select["amount"] = f"CAST({amount} AS {MONEY})"
    if "currency" not in fields:
        select["currency"] = quote_literal(source.currency or currency)
    if "channel" not in fields and source.channel:
        select["channel"] = quote_literal(source.channel)
    if "properties" not in fields:
        select["properties"] = stage.leftover_json(mapping)
    traits = {k: v for k, v in sorted(typed.items()) if k.startswith((CUSTOMER_PREFIX, PRODUCT_PREFIX))}
    if "event_id" not in fields:
        select["event_id"] = _event_id(stage, mapping, lineage)
    select.update(traits)


def _event_id(stage: _Stage, mapping: Mapping, lineage: str) -> str:
    """SQL of the id of an event without its own id: a hash of its event_key fields, or its
    line in the file (``<lineage>#<row>``)."""
    source = stage.source
    if not source.event_key:
        return f"({quote_literal(lineage + '#')} || CAST(__row AS VARCHAR))"
    for key in source.event_key:
        if stage.select[key].startswith("CAST(NULL AS"):
            raise SourceError(
                f"sources.{source.name}.event_key: {key!r} is not mapped and no column of that name is in "
                f"the file (columns: {', '.join(stage.raw.columns)})"
            )
        label = stage.labels.get(key, key)
        stage.reasons.append(
            f"CASE WHEN {stage.select[key]} IS NULL THEN '{label}: missing (part of event_key)' END"
        )
    parts = ", ".join(f"coalesce(CAST({stage.select[k]} AS VARCHAR), chr(0))" for k in source.event_key)
    return f"md5(concat_ws(chr(31), {parts}))"


def _no_amount(stage: _Stage, mapping: Mapping, commerce: str) -> None:
    """Commerce rows need money: refuse a source that cannot have any, quarantine rows otherwise."""
    source, fields = stage.source, mapping.fields
    has_price = "unit_price" in fields
    missing = "quantity" if has_price else "amount"
    message = (
        "purchases, refunds and cancellations need an amount: map columns.amount, or columns.quantity "
        f"and columns.unit_price ({'no quantity column was found' if has_price else 'no amount column was found'}"
        "; set default_quantity = 1 when every row is one unit)"
    )
    constant = source.event_type if "event_type" not in fields else None
    rule_types = {r.event_type for r in source.classify}
    if constant in COMMERCE_TYPES or rule_types & set(COMMERCE_TYPES):
        raise SourceError(f"sources.{source.name}.columns.{missing}: {message}")
    if "event_type" in fields:  # the types are in the data: its commerce rows are quarantined
        stage.reasons.append(f"CASE WHEN {commerce} THEN 'amount: missing (no amount column is mapped)' END")


def _offset_check(stage: _Stage, column: str) -> None:
    """Text timestamps with an offset outside -12:00..+14:00 (such as +25:00) are quarantined:
    such an offset is no time zone, and DuckDB would read it all the same."""
    if stage.source_type(column) != "VARCHAR":
        return
    value = stage.normalised(column)
    naive = f"TRY_CAST({value} AS TIMESTAMP)"
    offset = f"(epoch({naive}) - epoch({stage.typed['ts']}))"
    low, high = OFFSETS
    stage.reasons.append(
        f"CASE WHEN length({value}) > 19 AND ({offset} < {low} OR {offset} > {high}) THEN "
        f"'{stage.labels['ts']}: ' || {shown(value)} || ' has an offset that is not a time zone (-12:00 to +14:00)' END"
    )

"""Import CSV, Parquet and JSON-lines files into the warehouse.

One file is imported in four set-based steps on DuckDB, so that tens of millions of rows load in
seconds:

1. **read** the file as it is (CSV and JSON as text, Parquet with its own types), numbering rows;
2. **stage**: map source columns to the table contract, convert types, and collect for every row
   every check it fails (one ``reason`` per row, empty when the row is good);
3. **quarantine** the failed rows with file, row number, reason and the row as read;
4. **load** the good rows that are not already stored (by ``event_id``: the source's own id or a
   hash of the row's content), and update customers and products.

Nothing is silently dropped: ``rows_read = loaded + duplicates + quarantined`` for every file.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microseg.config import SourceConfig, mappable_fields
from microseg.engine.duckdb import DuckDBWarehouse, quote_ident, quote_literal
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

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
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
EARLIEST = dt.datetime(1970, 1, 1)
TYPE_WORDS = {
    "TIMESTAMP": "a timestamp",
    "DATE": "a date",
    "BIGINT": "a whole number",
    "INTEGER": "a whole number",
    MONEY: "a number",
    "DOUBLE": "a number",
}


@dataclass
class ImportResult:
    """What one file's import did."""

    source: str
    file: str
    import_id: str
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    details: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("inf")


# --- step 1: read ------------------------------------------------------------------------------


@dataclass
class _RawFile:
    """A file read as a relation: ``sql`` has ``__row`` plus one column per source column."""

    sql: str
    columns: dict[str, str]  # source column -> DuckDB type
    json_lines: bool = False  # columns are JSON paths extracted from a ``__line`` column
    rejects: int = 0


def _format_of(path: Path, fmt: str, source: str) -> str:
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    for suffix in reversed(suffixes):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise SourceError(
        f"sources.{source}.format: cannot tell the format of {path.name} from its extension; "
        'set format = "csv", "parquet" or "jsonl"'
    )


def _read_parquet(wh: DuckDBWarehouse, path: Path) -> _RawFile:
    scan = f"read_parquet({quote_literal(str(path))}, file_row_number = true)"
    columns = wh.describe(scan)
    columns.pop("file_row_number", None)
    cols = ", ".join(quote_ident(c) for c in columns)
    return _RawFile(f"(SELECT file_row_number + 1 AS __row, {cols} FROM {scan})", columns)


def _read_csv(wh: DuckDBWarehouse, path: Path, tag: str, result: ImportResult) -> _RawFile:
    """Read a CSV as text; rows the parser cannot split go straight to quarantine.

    DuckDB keeps rows in file order, so a row's number is its ordinal among parsed rows plus the
    rejected rows before it.
    """
    raw, rejects, scans = f"__raw_{tag}", f"__rejects_{tag}", f"__scans_{tag}"
    scan = (
        f"read_csv({quote_literal(str(path))}, all_varchar = true, header = true, "
        f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
        f"rejects_scan = {quote_literal(scans)})"
    )
    try:
        wh.sql(f"CREATE TEMP TABLE {raw} AS SELECT row_number() OVER () AS __ord, * FROM {scan}")
    except Exception as exc:  # duckdb raises its own error types; keep them out of our API
        raise SourceError(f"cannot read {path} as CSV: {exc}") from None
    bad = wh.fetch_df(
        f"SELECT line, any_value(csv_line) AS csv_line, "
        f"string_agg(DISTINCT error_message, '; ') AS error_message FROM {rejects} "
        f"GROUP BY line ORDER BY line"
    )
    columns = {c: t for c, t in wh.describe(raw).items() if c != "__ord"}
    cols = ", ".join(quote_ident(c) for c in columns)
    if len(bad) == 0:
        sql = f"(SELECT __ord AS __row, {cols} FROM {raw})"
    else:
        # Record number of reject j (1-based, sorted) is line - 1 (the header is line 1);
        # a parsed row with ordinal i sits after every reject j with (record_j - j) < i.
        bad["record"] = bad["line"] - 1
        bad["j"] = range(1, len(bad) + 1)
        bad["before"] = bad["record"] - bad["j"]
        # consecutive rejects share "before"; the last of them counts them all
        offsets = bad.groupby("before", as_index=False)["j"].max()
        wh.con.register(f"__badv_{tag}", offsets)
        wh.sql(f"CREATE TEMP TABLE __bad_{tag} AS SELECT * FROM __badv_{tag}")
        wh.con.unregister(f"__badv_{tag}")
        wh.con.register(f"__rejv_{tag}", bad[["record", "csv_line", "error_message"]])
        wh.sql(
            f"INSERT INTO quarantine SELECT ?, ?, ?, record, "
            f"'row could not be parsed: ' || error_message, csv_line FROM __rejv_{tag} b "
            f"WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source = ? AND q.file = ? "
            f"AND q.row_number = b.record AND q.record IS NOT DISTINCT FROM b.csv_line)",
            [result.import_id, result.source, result.file, result.source, result.file],
        )
        wh.con.unregister(f"__rejv_{tag}")
        sql = (
            f"(SELECT r.__ord + coalesce(b.j, 0) AS __row, {', '.join('r.' + quote_ident(c) for c in columns)} "
            f"FROM {raw} r ASOF LEFT JOIN __bad_{tag} b ON r.__ord > b.before)"
        )
    return _RawFile(sql, columns, rejects=len(bad))


def _read_jsonl(wh: DuckDBWarehouse, path: Path, tag: str) -> _RawFile:
    """Read JSON lines one line per row, so a malformed line is quarantined, not fatal."""
    raw = f"__raw_{tag}"
    scan = (
        f"read_csv({quote_literal(str(path))}, columns = {{'__line': 'VARCHAR'}}, header = false, "
        r"delim = '\x01', quote = '', escape = '', auto_detect = false, strict_mode = false)"
    )
    try:
        wh.sql(
            f"CREATE TEMP TABLE {raw} AS SELECT * FROM (SELECT row_number() OVER () AS __row, "
            f"__line FROM {scan}) WHERE trim(coalesce(__line, '')) <> ''"
        )
    except Exception as exc:
        raise SourceError(f"cannot read {path} as JSON lines: {exc}") from None
    keys = wh.fetch(
        f"SELECT DISTINCT unnest(json_keys(__line)) FROM (SELECT __line FROM {raw} "
        f"WHERE coalesce(CASE WHEN json_valid(__line) THEN json_type(__line) = 'OBJECT' END, false) LIMIT 1000)"
    )
    columns = {k[0]: "VARCHAR" for k in keys}
    return _RawFile(
        f"(SELECT __row, __line, coalesce(CASE WHEN json_valid(__line) THEN json_type(__line) = 'OBJECT' END, false) AS __ok FROM {raw})",
        columns,
        json_lines=True,
    )


# --- step 2: stage -----------------------------------------------------------------------------


@dataclass
class _Mapping:
    """Resolved target field -> source column for one file."""

    fields: dict[str, str]  # main table
    customer: dict[str, str]
    product: dict[str, str]
    leftovers: list[str]


def _resolve_mapping(source: SourceConfig, raw: _RawFile) -> _Mapping:
    available = raw.columns
    by_lower = {c.lower(): c for c in available}

    def check(mapping: dict[str, str], setting: str) -> dict[str, str]:
        for target, column in mapping.items():
            if not raw.json_lines and column not in available:
                raise SourceError(
                    f"sources.{source.name}.{setting}.{target}: column {column!r} is not in the file; "
                    f"its columns are: {', '.join(available)}"
                )
        return dict(mapping)

    fields = check(source.columns, "columns")
    for target in mappable_fields(source.kind):
        if target not in fields and target.lower() in by_lower:
            if target == "event_type" and source.event_type is not None:
                continue
            fields[target] = by_lower[target.lower()]
    customer = check(source.customer_columns, "customer_columns")
    product = check(source.product_columns, "product_columns")
    for rule in source.classify:
        if not raw.json_lines and rule.column not in available:
            raise SourceError(
                f"sources.{source.name}.classify: column {rule.column!r} is not in the file; "
                f"its columns are: {', '.join(available)}"
            )
    used = set(fields.values()) | set(customer.values()) | set(product.values())
    used |= {r.column for r in source.classify}
    leftovers = [c for c in available if c not in used]
    return _Mapping(fields, customer, product, leftovers)


def _raw_value(column: str, raw: _RawFile) -> str:
    """SQL for a source column's value (JSON paths are extracted as text)."""
    if raw.json_lines:
        path = "$." + ".".join(json.dumps(p) for p in column.split("."))
        return f"(CASE WHEN __ok THEN json_extract_string(__line, {quote_literal(path)}) END)"
    return quote_ident(column)


def _normalized(column: str, raw: _RawFile, nulls: tuple[str, ...]) -> tuple[str, str]:
    """(SQL of the source value with null markers removed, its DuckDB type)."""
    value = _raw_value(column, raw)
    typ = "VARCHAR" if raw.json_lines else raw.columns[column]
    if typ == "VARCHAR":
        null_list = ", ".join(quote_literal(n) for n in nulls) or "NULL"
        return f"(CASE WHEN trim({value}) IN ({null_list}) THEN NULL ELSE trim({value}) END)", typ
    if typ in ("DOUBLE", "FLOAT"):
        return f"(CASE WHEN isnan({value}) THEN NULL ELSE {value} END)", typ
    return value, typ


def _typed(field_name: str, col: Column, value: str, src_type: str) -> str:
    """SQL converting a normalized source value to the contract type; NULL when it cannot."""
    target = col.type
    numeric_src = src_type in ("DOUBLE", "FLOAT") or src_type.startswith("DECIMAL")
    integer_src = src_type in (
        "BIGINT",
        "INTEGER",
        "SMALLINT",
        "TINYINT",
        "HUGEINT",
        "UBIGINT",
        "UINTEGER",
        "USMALLINT",
        "UTINYINT",
    )
    if target == "VARCHAR":
        if numeric_src:
            return (
                f"(CASE WHEN {value} = round({value}) AND abs({value}) < 1e15 "
                f"THEN CAST(CAST({value} AS BIGINT) AS VARCHAR) ELSE CAST({value} AS VARCHAR) END)"
            )
        if src_type != "VARCHAR":
            return f"CAST({value} AS VARCHAR)"
        if field_name in ID_FIELDS:
            # ids exported through a float column read "17850.0": that is customer 17850
            return rf"regexp_replace({value}, '^(-?[0-9]+)\.0+$', '\1')"
        return value
    if target in ("BIGINT", "INTEGER"):
        if integer_src:
            return f"TRY_CAST({value} AS {target})"
        as_double = f"TRY_CAST({value} AS DOUBLE)"
        return (
            f"(CASE WHEN {as_double} = round({as_double}) AND abs({as_double}) < 9e15 "
            f"THEN CAST({as_double} AS {target}) END)"
        )
    if target == MONEY:
        return f"TRY_CAST({value} AS {MONEY})"
    if target == "DOUBLE":
        return f"TRY_CAST({value} AS DOUBLE)"
    if target == "DATE":
        if src_type == "VARCHAR":
            return f"coalesce(TRY_CAST({value} AS DATE), CAST(TRY_CAST({value} AS TIMESTAMP) AS DATE))"
        return f"TRY_CAST({value} AS DATE)"
    raise AssertionError(f"no conversion to {target}")  # timestamps are handled by _timestamp


def _timestamp(value: str, src_type: str, fmt: str | None) -> str:
    """SQL of a UTC timestamp; the session time zone is the source's while the file stages."""
    if src_type == "VARCHAR":
        if fmt:
            parsed = f"CAST(try_strptime({value}, {quote_literal(fmt)}) AS TIMESTAMPTZ)"
        else:
            parsed = f"TRY_CAST({value} AS TIMESTAMPTZ)"
    elif src_type.startswith("TIMESTAMP WITH TIME ZONE"):
        parsed = value
    elif src_type.startswith("TIMESTAMP") or src_type == "DATE":
        parsed = f"CAST({value} AS TIMESTAMPTZ)"
    elif src_type in ("BIGINT", "INTEGER", "DOUBLE", "FLOAT") or src_type.startswith("DECIMAL"):
        parsed = f"to_timestamp(CAST({value} AS DOUBLE))"  # epoch seconds
    else:
        parsed = f"TRY_CAST(CAST({value} AS VARCHAR) AS TIMESTAMPTZ)"
    return f"({parsed} AT TIME ZONE 'UTC')"


def _show(value: str) -> str:
    """SQL showing a bad source value in a reason: quoted, at most 60 characters."""
    return f"'''' || left(CAST({value} AS VARCHAR), 60) || ''''"


@dataclass
class _Stage:
    select: list[str]  # final typed columns of the target table (and extras)
    reasons: list[str]  # SQL expressions yielding a reason string or NULL
    missing: dict[str, str]  # label -> SQL boolean "value is missing"


def _label(field_name: str, column: str) -> str:
    return field_name if field_name == column else f"{field_name} ({column})"


def _build_stage(
    source: SourceConfig, raw: _RawFile, mapping: _Mapping, table: Table, currency: str
) -> tuple[_Stage, dict[str, str]]:
    """Typed column SQL for ``table`` plus reasons; returns (stage, typed SQL by field)."""
    nulls = source.null_values
    typed: dict[str, str] = {}
    normalized: dict[str, str] = {}
    reasons: list[str] = []
    missing: dict[str, str] = {}

    def add_field(field_name: str, column: str, col: Column, prefix: str = "") -> None:
        value, src_type = _normalized(column, raw, nulls)
        key = prefix + field_name
        normalized[key] = value
        if col.type == "TIMESTAMP":
            sql = _timestamp(value, src_type, source.timestamp_format)
        else:
            sql = _typed(field_name, col, value, src_type)
        typed[key] = sql
        label = _label(prefix + field_name, column)
        missing[label] = f"({value} IS NULL)"
        reasons.append(
            f"CASE WHEN {value} IS NOT NULL AND {sql} IS NULL THEN "
            f"'{label}: cannot read ' || {_show(value)} || ' as {TYPE_WORDS.get(col.type, col.type)}' END"
        )

    for field_name, column in mapping.fields.items():
        add_field(field_name, column, table.column(field_name))
    if table is EVENTS:
        for field_name, column in mapping.customer.items():
            add_field(field_name, column, CUSTOMERS.column(field_name), "customer.")
        for field_name, column in mapping.product.items():
            add_field(field_name, column, PRODUCTS.column(field_name), "product.")

    def required(field_name: str) -> None:
        if field_name not in mapping.fields:
            raise SourceError(
                f"sources.{source.name}.columns.{field_name}: required, but not mapped and no "
                f"column of that name is in the file (columns: {', '.join(raw.columns)})"
            )
        label = _label(field_name, mapping.fields[field_name])
        reasons.insert(0, f"CASE WHEN {normalized[field_name]} IS NULL THEN '{label}: missing' END")

    select: dict[str, str] = {}
    if table is EVENTS:
        _event_rules(source, raw, mapping, typed, normalized, reasons, required, select, currency)
    else:
        key = table.key[0]
        required(key)
        for c in table.columns:
            if c.name in ("source", "updated_at", "traits"):
                continue
            select[c.name] = typed.get(c.name, f"CAST(NULL AS {c.type})")
        if table is CUSTOMERS:
            if "birth_year" in typed:
                by = typed["birth_year"]
                reasons.append(
                    f"CASE WHEN {by} < 1900 OR {by} > year(current_date) THEN "
                    f"'birth_year: ' || {by} || ' is not a plausible year of birth' END"
                )
            if "email" in typed:
                em = typed["email"]
                reasons.append(
                    f"CASE WHEN {em} NOT LIKE '%_@_%' THEN 'email: ' || {_show(em)} || "
                    f"' is not an email address' END"
                )
            select["traits"] = _leftover_json(raw, mapping, nulls)
        if table is PRODUCTS and "price" in typed:
            reasons.append(_negative_price_rule(typed["price"], "price", source))
    return _Stage([f"{sql} AS {quote_ident(name)}" for name, sql in select.items()], reasons, missing), typed


def _negative_price_rule(price: str, label: str, source: SourceConfig) -> str:
    if source.allow_negative_prices:
        return "NULL"
    return f"CASE WHEN {price} < 0 THEN '{label}: ' || {price} || ' is negative' END"


def _leftover_json(raw: _RawFile, mapping: _Mapping, nulls: tuple[str, ...]) -> str:
    """The source columns no field uses, as a JSON object (so nothing read is lost)."""
    if raw.json_lines:
        used = (
            ", ".join(
                quote_literal(c.split(".")[0])
                for c in {*mapping.fields.values(), *mapping.customer.values(), *mapping.product.values()}
            )
            or "''"
        )
        obj = (
            f"to_json(map_from_entries(list_transform(list_filter(json_keys(__line), "
            f"lambda k: NOT list_contains([{used}], k)), lambda k: {{key: k, value: __line -> k}})))"
        )
        return f"(CASE WHEN __ok THEN nullif(CAST({obj} AS VARCHAR), '{{}}') END)"
    if not mapping.leftovers:
        return "CAST(NULL AS VARCHAR)"
    parts = ", ".join(f"{quote_ident(c)} := {_normalized(c, raw, nulls)[0]}" for c in mapping.leftovers)
    return f"CAST(to_json(struct_pack({parts})) AS VARCHAR)"


def _event_rules(source, raw, mapping, typed, normalized, reasons, required, select, currency) -> None:
    """Event-specific conversion and checks: type, sign of quantities, money, customer policy."""
    fields = mapping.fields
    # event type: a constant, a column, and classify rules on top
    if "event_type" in fields:
        base = f"lower({typed['event_type']})"
    elif source.event_type is not None:
        base = quote_literal(source.event_type)
    elif source.classify:
        base = "NULL"
    else:
        raise SourceError(
            f"sources.{source.name}: set event_type (one of {', '.join(EVENT_TYPES)}) or map "
            "columns.event_type to a column holding it"
        )
    if source.classify:
        whens = []
        for rule in source.classify:
            value = f"CAST({_raw_value(rule.column, raw)} AS VARCHAR)"
            if rule.starts_with is not None:
                test = f"starts_with({value}, {quote_literal(rule.starts_with)})"
            elif rule.equals is not None:
                test = f"{value} = {quote_literal(rule.equals)}"
            else:
                test = f"{value} IN ({', '.join(quote_literal(v) for v in rule.one_of)})"
            whens.append(f"WHEN {test} THEN {quote_literal(rule.event_type)}")
        etype = f"(CASE {' '.join(whens)} ELSE {base} END)"
    else:
        etype = base
    type_list = ", ".join(quote_literal(t) for t in EVENT_TYPES)
    reasons.append(
        f"CASE WHEN {etype} IS NULL THEN 'event_type: missing' "
        f"WHEN {etype} NOT IN ({type_list}) THEN 'event_type: ' || {_show(etype)} || "
        f"' is not an event type' END"
    )
    required("ts")
    ts = typed["ts"]
    reasons.append(
        f"CASE WHEN {ts} < TIMESTAMP '{EARLIEST}' OR {ts} > (now() AT TIME ZONE 'UTC') + INTERVAL 1 DAY "
        f"THEN 'ts: ' || {ts} || ' is out of range (1970 to today)' END"
    )
    if "event_id" in fields:
        required("event_id")
    if source.missing_customer == "quarantine":
        if "customer_id" not in fields:
            raise SourceError(
                f'sources.{source.name}: missing_customer = "quarantine" needs a customer_id column'
            )
        required("customer_id")
    negative = ", ".join(quote_literal(t) for t in NEGATIVE_TYPES)
    commerce = ", ".join(quote_literal(t) for t in COMMERCE_TYPES)
    quantity = amount = "NULL"
    if "quantity" in fields:
        q = typed["quantity"]
        label = _label("quantity", fields["quantity"])
        reasons.append(
            f"CASE WHEN {etype} IN ({commerce}) AND {normalized['quantity']} IS NULL "
            f"THEN '{label}: missing' "
            f"WHEN {etype} = 'purchase' AND {q} <= 0 THEN '{label}: ' || {q} || "
            f"' must be positive for a purchase' "
            f"WHEN {etype} IN ({negative}) AND {q} = 0 THEN '{label}: 0 for a ' || {etype} END"
        )
        quantity = f"(CASE WHEN {etype} IN ({negative}) THEN -abs({q}) ELSE {q} END)"
    price = typed.get("unit_price", "NULL")
    if "unit_price" in fields:
        label = _label("unit_price", fields["unit_price"])
        reasons.append(
            f"CASE WHEN {etype} IN ({commerce}) AND {normalized['unit_price']} IS NULL "
            f"THEN '{label}: missing' END"
        )
        reasons.append(_negative_price_rule(price, label, source))
    if "amount" in fields:
        amount = typed["amount"]
    elif "unit_price" in fields and "quantity" in fields:
        amount = f"CAST({typed['quantity']} * {price} AS {MONEY})"
    if amount != "NULL":
        amount = f"(CASE WHEN {etype} IN ({negative}) THEN -abs({amount}) ELSE {amount} END)"
    for c in EVENTS.columns:
        if c.name in ("source", "import_id"):
            continue
        select[c.name] = typed.get(c.name, f"CAST(NULL AS {c.type})")
    select["event_type"] = etype
    select["quantity"] = f"CAST({quantity} AS BIGINT)"
    select["amount"] = f"CAST({amount} AS {MONEY})"
    if "currency" not in fields:
        select["currency"] = quote_literal(source.currency or currency)
    if "channel" not in fields and source.channel:
        select["channel"] = quote_literal(source.channel)
    if "properties" not in fields:
        select["properties"] = _leftover_json(raw, mapping, source.null_values)
    content = [select[c.name] for c in EVENTS.columns if c.name not in ("event_id", "source", "import_id")]
    content += [typed[k] for k in sorted(typed) if k.startswith(("customer.", "product."))]
    key = (
        "md5(concat_ws(chr(31), "
        + ", ".join(f"coalesce(CAST({sql} AS VARCHAR), chr(0))" for sql in content)
        + "))"
    )
    if "event_id" not in fields:
        select["event_id"] = key
    for k, sql in typed.items():
        if k.startswith(("customer.", "product.")):
            select[k] = sql


# --- the import of one file -----------------------------------------------------------------------


def import_file(
    wh: DuckDBWarehouse, source: SourceConfig, path: Path, *, currency: str = "GBP"
) -> ImportResult:
    """Import one file of ``source`` into the warehouse and log it in ``imports``."""
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    import_id = uuid.uuid4().hex[:16]
    tag = import_id
    result = ImportResult(source=source.name, file=str(path), import_id=import_id)
    table = {"events": EVENTS, "customers": CUSTOMERS, "products": PRODUCTS}[source.kind]
    fmt = _format_of(path, source.format, source.name)
    wh.sql("BEGIN TRANSACTION")
    try:
        if fmt == "parquet":
            raw = _read_parquet(wh, path)
        elif fmt == "csv":
            raw = _read_csv(wh, path, tag, result)
        else:
            raw = _read_jsonl(wh, path, tag)
        mapping = _resolve_mapping(source, raw)
        stage, typed = _build_stage(source, raw, mapping, table, currency)
        wh.sql(f"SET TimeZone = {quote_literal(source.timezone)}")
        _create_stage(wh, raw, stage, tag)
        wh.sql("SET TimeZone = 'UTC'")
        _quarantine(wh, tag, result, raw.rejects)
        if table is EVENTS:
            _load_events(wh, tag, source, result)
            _merge_from_events(wh, tag, source, mapping)
        else:
            _load_entities(wh, tag, source, table, result)
        result.details["missing"] = _missing_counts(wh, tag, stage)
        wh.sql(f"DROP TABLE IF EXISTS __stage_{tag}")
        result.seconds = time.perf_counter() - started
        wh.sql(
            "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                import_id,
                source.name,
                str(path),
                started_at,
                result.seconds,
                result.rows_read,
                result.loaded,
                result.duplicates,
                result.quarantined,
                json.dumps(result.details),
            ],
        )
        wh.sql("COMMIT")
    except BaseException:
        wh.sql("ROLLBACK")
        wh.sql("SET TimeZone = 'UTC'")
        raise
    return result


def _create_stage(wh: DuckDBWarehouse, raw: _RawFile, stage: _Stage, tag: str) -> None:
    reason = "concat_ws('; ', " + ", ".join(stage.reasons) + ")" if stage.reasons else "''"
    if raw.json_lines:  # a line that is not a JSON object fails for that reason alone
        reason = f"(CASE WHEN __ok THEN {reason} ELSE 'not a JSON object' END)"
    record = (
        "__line"
        if raw.json_lines
        else "CAST(to_json(struct_pack("
        + ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in raw.columns)
        + ")) AS VARCHAR)"
    )
    missing = ", ".join(
        f"{sql} AS {quote_ident('__missing:' + label)}" for label, sql in stage.missing.items()
    )
    inner = f"SELECT __row, {', '.join(stage.select)}, {reason} AS __reason" + (
        f", {missing}" if missing else ""
    )
    inner += f", {record} AS __record_raw FROM {raw.sql}"
    wh.sql(
        f"CREATE TEMP TABLE __stage_{tag} AS SELECT * EXCLUDE (__record_raw), "
        f"CASE WHEN __reason <> '' THEN __record_raw END AS __record FROM ({inner})"
    )


def _quarantine(wh: DuckDBWarehouse, tag: str, result: ImportResult, rejects: int) -> None:
    # a row quarantined by an earlier import of the same file is not stored twice
    wh.sql(
        f"INSERT INTO quarantine SELECT ?, ?, ?, __row, __reason, __record "
        f"FROM __stage_{tag} s WHERE __reason <> '' AND NOT EXISTS (SELECT 1 FROM quarantine q "
        f"WHERE q.source = ? AND q.file = ? AND q.row_number = s.__row AND q.reason = s.__reason "
        f"AND q.record IS NOT DISTINCT FROM s.__record)",
        [result.import_id, result.source, result.file, result.source, result.file],
    )
    staged, bad = wh.fetch(f"SELECT count(*), count(*) FILTER (WHERE __reason <> '') FROM __stage_{tag}")[0]
    result.rows_read = int(staged) + rejects
    result.quarantined = int(bad) + rejects


def _load_events(wh: DuckDBWarehouse, tag: str, source: SourceConfig, result: ImportResult) -> None:
    cols = [c.name for c in EVENTS.columns]
    values = ", ".join(
        quote_literal(source.name)
        if c == "source"
        else quote_literal(result.import_id)
        if c == "import_id"
        else quote_ident(c)
        for c in cols
    )
    good = wh.fetch(f"SELECT count(*) FROM __stage_{tag} WHERE __reason = ''")[0][0]
    result.loaded = wh.changed(
        f"INSERT INTO events SELECT {values} FROM __stage_{tag} s WHERE __reason = '' "
        f"AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id) "
        f"QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY __row) = 1"
    )
    result.duplicates = int(good) - result.loaded
    by_type = wh.fetch(
        "SELECT event_type, count(*) FROM events WHERE import_id = ? GROUP BY 1 ORDER BY 1",
        [result.import_id],
    )
    result.details["by_event_type"] = {t: int(n) for t, n in by_type}
    result.details["anonymous"] = int(
        wh.fetch(
            "SELECT count(*) FROM events WHERE import_id = ? AND customer_id IS NULL", [result.import_id]
        )[0][0]
    )


def _missing_counts(wh: DuckDBWarehouse, tag: str, stage: _Stage) -> dict[str, int]:
    if not stage.missing:
        return {}
    sums = ", ".join(
        f"count(*) FILTER (WHERE {quote_ident('__missing:' + label)})" for label in stage.missing
    )
    row = wh.fetch(f"SELECT {sums} FROM __stage_{tag}")[0]
    return {label: int(n) for label, n in zip(stage.missing, row, strict=True) if n}


def _merge(
    wh: DuckDBWarehouse, table: Table, new_rows_sql: str, fields: list[str], source: str
) -> tuple[int, int]:
    """Upsert rows into customers/products: new keys are inserted, known keys get their
    non-empty new values. Returns the numbers of (inserted, updated) rows."""
    key = table.key[0]
    tmp = f"__merge_{table.name}"
    wh.sql(f"CREATE OR REPLACE TEMP TABLE {tmp} AS {new_rows_sql}")
    now = "now() AT TIME ZONE 'UTC'"
    if fields:
        sets = ", ".join(
            f"{quote_ident(f)} = coalesce(n.{quote_ident(f)}, t.{quote_ident(f)})" for f in fields
        )
        changed = " OR ".join(
            f"(n.{quote_ident(f)} IS NOT NULL AND n.{quote_ident(f)} IS DISTINCT FROM t.{quote_ident(f)})"
            for f in fields
        )
        updated = wh.changed(
            f"UPDATE {table.name} AS t SET {sets}, source = {quote_literal(source)}, updated_at = {now} "
            f"FROM {tmp} AS n WHERE t.{key} = n.{key} AND ({changed})"
        )
    else:
        updated = 0
    cols = ", ".join(
        quote_literal(source)
        if c.name == "source"
        else now
        if c.name == "updated_at"
        else f"n.{quote_ident(c.name)}"
        if c.name in fields or c.name == key
        else f"CAST(NULL AS {c.type})"
        for c in table.columns
    )
    inserted = wh.changed(
        f"INSERT INTO {table.name} SELECT {cols} FROM {tmp} n "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE t.{key} = n.{key})"
    )
    wh.sql(f"DROP TABLE {tmp}")
    return inserted, updated


def _merge_from_events(wh: DuckDBWarehouse, tag: str, source: SourceConfig, mapping: _Mapping) -> None:
    """Every customer and product seen in good event rows gets a row; mapped traits update it."""
    good = f"__stage_{tag} WHERE __reason = ''"
    for table, key, fields in (
        (CUSTOMERS, "customer_id", list(mapping.customer)),
        (PRODUCTS, "product_id", list(mapping.product)),
    ):
        prefix = "customer." if table is CUSTOMERS else "product."
        aggs = "".join(
            f", arg_max({quote_ident(prefix + f)}, ts) FILTER (WHERE {quote_ident(prefix + f)} IS NOT NULL) "
            f"AS {quote_ident(f)}"
            for f in fields
        )
        _merge(
            wh,
            table,
            f"SELECT {key}{aggs} FROM {good} AND {key} IS NOT NULL GROUP BY {key}",
            fields,
            source.name,
        )


def _load_entities(
    wh: DuckDBWarehouse, tag: str, source: SourceConfig, table: Table, result: ImportResult
) -> None:
    key = table.key[0]
    fields = [c.name for c in table.columns if c.name not in (key, "source", "updated_at")]
    good = wh.fetch(f"SELECT count(*) FROM __stage_{tag} WHERE __reason = ''")[0][0]
    # the last row of a key in the file wins
    aggs = ", ".join(f"arg_max({quote_ident(f)}, __row) AS {quote_ident(f)}" for f in fields)
    inserted, updated = _merge(
        wh,
        table,
        f"SELECT {key}, {aggs} FROM __stage_{tag} WHERE __reason = '' GROUP BY {key}",
        fields,
        source.name,
    )
    result.loaded = inserted
    result.duplicates = int(good) - inserted
    result.details["updated"] = updated


# --- a whole source -------------------------------------------------------------------------------


def source_files(source: SourceConfig, root: Path) -> list[Path]:
    """The files a source's path or glob pattern names, in a stable order."""
    pattern = Path(source.path)
    pattern = pattern if pattern.is_absolute() else root / pattern
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    files = [p for p in matches if p.is_file()]
    if not files:
        raise SourceError(f"sources.{source.name}.path: no file matches {str(pattern)!r}")
    return files


def import_source(
    wh: DuckDBWarehouse,
    source: SourceConfig,
    root: Path,
    *,
    currency: str = "GBP",
    on_file: Callable[[Path, ImportResult | None], None] | None = None,
) -> list[ImportResult]:
    """Import every file of a source; ``on_file`` is told before and after each file."""
    results = []
    for path in source_files(source, root):
        if on_file:
            on_file(path, None)
        result = import_file(wh, source, path, currency=currency)
        results.append(result)
        if on_file:
            on_file(path, result)
    return results

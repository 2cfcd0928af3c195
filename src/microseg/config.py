"""Project configuration: one ``microseg.toml`` per project folder.

Every setting is declared once in a registry (name, type, default, help). The registry drives
validation (errors name the offending key), defaults, and the reference in
``docs/configuration.md``; a test fails when a setting is undocumented.

The per-key checks (type, range, choices, unknown keys) are written here rather than handed to
pydantic models generated from the registry: such a model gives the same answers (checked on
some 2,000 good and bad values across every section), but its errors speak pydantic
("Input should be a valid integer"), and turning them back into these messages (the TOML type
names, the allowed range in words, "did you mean") takes about as many lines as the checks
themselves, plus a 0.16 s import on every command. The rest of this module is the registry
and the checks between settings, which a model would not remove either.

Example::

    [project]
    name = "shop"
    analysis_date = "2011-12-09"

    [sources.orders]
    path = "data/orders.csv"
    event_type = "purchase"
    columns = { customer_id = "CustomerID", ts = "InvoiceDate" }
"""

from __future__ import annotations

import codecs
import dataclasses
import datetime as dt
import json
import math
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microseg.errors import ConfigError, ProjectNotFoundError
from microseg.registry import TIER_LAYERS, suggest
from microseg.schema import CUSTOMER_VALUES, EVENT_TYPES, PROFILE_FEATURES, SOURCE_TARGETS

CONFIG_FILE = "microseg.toml"
_REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    """One configuration key: its type, default, meaning and, for numbers, the allowed range
    (``minimum``/``maximum``, inclusive unless ``open_min``; numbers must be finite)."""

    name: str
    type: type | tuple[type, ...]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    open_min: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def check_range(self, value: Any) -> str | None:
        """Why a number is out of range (None when it is fine)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        low, high = self.minimum, self.maximum
        too_low = low is not None and (value <= low if self.open_min else value < low)
        if too_low or (high is not None and value > high):
            return f"must be {self.range_text()}, got {value!r}"
        return None

    def range_text(self) -> str:
        """The allowed range in words ("between 1 and 50", "above 0", "0 or more")."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None and not self.open_min:
            return f"between {_num(low)} and {_num(high)}"
        parts = []
        if low is not None:
            parts.append(f"above {_num(low)}" if self.open_min else f"{_num(low)} or more")
        if high is not None:
            parts.append(f"at most {_num(high)}")
        return " and ".join(parts)


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) >= 10_000 else f"{x:g}"


def _s(name, typ, default, help, choices=None, *, minimum=None, maximum=None, open_min=False) -> Setting:
    return Setting(name, typ, default, help, choices, minimum, maximum, open_min)


#: ``[project]`` settings.
PROJECT_SETTINGS: tuple[Setting, ...] = (
    _s("name", str, None, "Project name shown in reports; defaults to the folder name."),
    _s("warehouse", str, "warehouse.duckdb", "DuckDB file of the warehouse, relative to the project."),
    _s(
        "analysis_date",
        (str, dt.date),
        "auto",
        'Date the analysis is "as of" (YYYY-MM-DD); "auto" uses the day of the latest event.',
    ),
    _s("currency", str, "GBP", "Currency of amounts when a source does not give one."),
)

#: ``[engine]`` settings.
ENGINE_SETTINGS: tuple[Setting, ...] = (
    _s(
        "backend",
        str,
        "duckdb",
        "Engine the pipeline runs on: embedded DuckDB, or Apache Spark for data beyond one machine.",
        ("duckdb", "spark"),
    ),
    _s("spark_master", str, "local[2]", 'Spark master URL when backend = "spark".'),
    _s("threads", int, 0, "DuckDB worker threads; 0 lets DuckDB use every core.", minimum=0, maximum=1024),
    _s(
        "memory_limit",
        str,
        "",
        'Most memory DuckDB holds, such as "6GB" (KB, MB, GB or TB); beyond it, work spills to disk '
        "next to the warehouse. \"\" keeps DuckDB's default of 80% of the machine's memory.",
    ),
    _s(
        "storage",
        str,
        "duckdb",
        "Where run results are stored: in the DuckDB file, or in a lake of Parquet datasets partitioned "
        "by table and as_of that DuckDB and Spark both read (imported data stays in the DuckDB file).",
        ("duckdb", "lake"),
    ),
    _s(
        "lake",
        str,
        "lake",
        'Folder of the Parquet lake when storage = "lake" (relative to the project, or absolute).',
    ),
)

#: ``[clv]`` settings: the customer value models.
CLV_SETTINGS: tuple[Setting, ...] = (
    _s("period", str, "week", "Time unit of recency and T for the BTYD models.", ("day", "week")),
    _s(
        "model",
        str,
        "auto",
        "Model of repeat buying: BG/NBD, Pareto/NBD, MBG/NBD or the NBD (nobody leaves); auto fits "
        "all four and keeps a model with dropout when the data show dropout, the NBD when they do "
        "not, the best on a holdout check (by likelihood when the history is too short for one); "
        "see docs/values.md.",
        ("auto", "bgnbd", "paretonbd", "mbgnbd", "nbd"),
    ),
    _s(
        "holdout_days",
        int,
        0,
        "Length of the holdout period of the model check and of `microseg validate`, in days "
        "at the end of the history; 0: a third of the history, at most 365 days.",
        minimum=0,
        maximum=3650,
    ),
    _s("horizon_months", int, 12, "Months of future spend in the CLV.", minimum=1, maximum=600),
    _s("discount_rate", float, 0.01, "Monthly discount rate of the CLV.", minimum=0, maximum=1),
    _s("purchases_days", int, 90, "Horizon of expected_purchases, in days.", minimum=1, maximum=3650),
    _s(
        "penalizer",
        float,
        0.0,
        "L2 penalty on the model parameters (0: plain maximum likelihood).",
        minimum=0,
        maximum=1e6,
    ),
)

#: ``[dynamics]`` settings: snapshots over time, forecasts and alerts.
DYNAMICS_SETTINGS: tuple[Setting, ...] = (
    _s(
        "every",
        str,
        "month",
        "Spacing of backfilled snapshots: month ends, or weeks ending on the last date.",
        ("month", "week"),
    ),
    _s(
        "alert_alpha",
        float,
        0.01,
        "Family-wise significance level of transition alerts (Holm-adjusted).",
        minimum=0,
        maximum=0.5,
        open_min=True,
    ),
    _s(
        "alert_min_ratio",
        float,
        1.5,
        "Smallest change of a transition rate (ratio to history) worth an alert.",
        minimum=1,
        maximum=1000,
    ),
    _s("alert_min_moved", int, 10, "Fewest customers making a transition for it to alert.", minimum=1),
    _s(
        "alert_min_history",
        int,
        3,
        "Periods of history a transition needs before it can alert (2 or more: one period leaves "
        "no degree of freedom for the dispersion).",
        minimum=2,
        maximum=1000,
    ),
    _s(
        "forecast_smoothing",
        float,
        0.5,
        "Pseudo-count added to every transition of the Markov forecast.",
        minimum=0,
        maximum=1e6,
    ),
    _s(
        "forecast_window",
        int,
        3,
        "Periods the Markov forecast learns from, the latest ones (0: all stored periods).",
        minimum=0,
        maximum=1000,
    ),
    _s(
        "forecast_model",
        str,
        "auto",
        "Next-period probabilities: 'customer' (each customer's history), 'chain' (the same for "
        "every customer of a segment and CLV tier) or 'auto' (the customer model when the "
        "backtest scores it better on log-loss and Brier score).",
        ("auto", "chain", "customer"),
    ),
    _s("report_periods", int, 6, "Periods shown in the report's migration Sankey.", minimum=1, maximum=120),
)

#: ``[segments]`` settings: lifecycle rules, tiers, clustering, composites and rule segments.
SEGMENT_SETTINGS: tuple[Setting, ...] = (
    _s(
        "seed",
        int,
        0,
        "Random seed of the clustering: the same data and seed give the same segments.",
        minimum=0,
        maximum=2**32 - 1,
    ),
    _s("k_min", int, 2, "Fewest clusters per lifecycle stage and layer.", minimum=1, maximum=50),
    _s(
        "k_max",
        int,
        8,
        "Most clusters per lifecycle stage and layer (k is chosen by silhouette).",
        minimum=1,
        maximum=50,
    ),
    _s(
        "sample_size",
        int,
        10_000,
        "Customers per stage used to choose k and fit the clusters (drawn from the customer ids, "
        "so the same customers whatever the seed). From 10,000 up the segments do not depend on "
        "it; smaller samples can make a real split look unstable and merge segments.",
        minimum=10_000,
        maximum=10_000_000,
    ),
    _s(
        "min_segment_size",
        int,
        50,
        "Fewest customers in a clustered segment: k is chosen among the partitions whose every "
        "cluster has at least this many, and a kept model is refitted when a segment falls below it.",
        minimum=1,
        maximum=10_000_000,
    ),
    _s(
        "min_stability",
        float,
        0.9,
        "Agreement (median adjusted Rand index of pairs) that the clusterings of five seeds must reach for "
        "a k to be chosen; without a stable k a stage is one segment.",
        minimum=0,
        maximum=1,
    ),
    _s(
        "refit_margin",
        float,
        0.05,
        "Silhouette by which a kept clustering may fall below the one it had when fitted before a "
        "refit is tried, and by which the refit must beat it to replace it.",
        minimum=0,
        maximum=1,
    ),
    _s(
        "category_nouns",
        dict,
        {},
        'Readable persona nouns of product categories, e.g. "DRUG GM" = "pharmacy shoppers"; '
        "categories that look like source codes are otherwise left out of labels.",
    ),
    _s(
        "new_days",
        int,
        90,
        "A first purchase (or a return) within this many days makes a customer new (reactivated).",
        minimum=1,
        maximum=3650,
    ),
    _s(
        "reactivation_gap_days",
        int,
        365,
        "A pause between purchases at least this long, then a return, is a reactivation.",
        minimum=1,
        maximum=3650,
    ),
    _s(
        "at_risk_lateness",
        float,
        1.6,
        "At risk from this many of the customer's own buying rhythms since the last purchase.",
        minimum=0,
        maximum=1000,
        open_min=True,
    ),
    _s(
        "churned_lateness",
        float,
        4.0,
        "Churned from this many rhythms since the last purchase.",
        minimum=0,
        maximum=1000,
        open_min=True,
    ),
    _s(
        "one_time_floor_days",
        int,
        50,
        "Smallest rhythm assumed for one-time buyers.",
        minimum=0,
        maximum=3650,
    ),
    _s(
        "at_risk_p_alive",
        float,
        0.3,
        "At risk when P(alive) is below this (set -1 to ignore P(alive)).",
        minimum=-1,
        maximum=1,
    ),
    _s(
        "churned_p_alive",
        float,
        0.05,
        "Churned when P(alive) is below this (set -1 to ignore P(alive)).",
        minimum=-1,
        maximum=1,
    ),
    _s("clv_tiers", list, [0.01, 0.05, 0.20], "Top shares of customers by CLV that make the CLV tiers."),
    _s("tenure_days", list, [90, 365, 730], "Tenure tier bounds in days."),
    _s(
        "composites",
        dict,
        {},
        "Named composite segments: name = { tier layer = [accepted tiers] }, e.g. "
        'new_highly_engaged = { tenure = ["0-3m"], engagement = ["high"] }.',
    ),
    _s(
        "rules",
        dict,
        {},
        'Rule segments: name = "expression over profile columns", e.g. '
        "vip_at_risk = \"clv > 500 and stage = 'at_risk'\".",
    ),
    _s(
        "page_flags",
        dict,
        {},
        'URL fragments that make profile flags: pricing_page = "/pricing" gives '
        "visited_pricing_page_30d and visited_pricing_page_90d.",
    ),
)

#: ``[sources.<name>]`` settings, one table per source.
SOURCE_SETTINGS: tuple[Setting, ...] = (
    _s(
        "path",
        str,
        _REQUIRED,
        "File or glob pattern (CSV and other delimited text, Parquet, JSON lines, .xlsx), relative "
        "to the project.",
    ),
    _s(
        "kind",
        str,
        "events",
        "Table the source fills: events, customers or products.",
        tuple(SOURCE_TARGETS),
    ),
    _s(
        "format",
        str,
        "auto",
        "File format; auto picks it from the extension (.csv/.tsv/.txt, .parquet, .json/.jsonl/.ndjson, "
        ".xlsx; a trailing .gz is compression).",
        ("auto", "csv", "parquet", "jsonl", "xlsx"),
    ),
    _s(
        "columns",
        dict,
        {},
        "Field = source column (or dotted JSON path for JSON lines). Fields not listed are "
        "matched to a source column of the same name.",
    ),
    _s(
        "event_type",
        str,
        None,
        "Event type of every row when the source has no event_type column.",
        tuple(EVENT_TYPES),
    ),
    _s(
        "classify",
        list,
        [],
        "Rules that set the event type from a column: a list of "
        "{ event_type, column, and one test: starts_with, equals or in }. The first matching rule wins.",
    ),
    _s("customer_columns", dict, {}, "Customer trait = source column, read from event rows."),
    _s("product_columns", dict, {}, "Product field = source column, read from event rows."),
    _s(
        "null_values",
        list,
        ["", "NULL", "null", "NaN", "nan", "None"],
        "Strings read as a missing value.",
    ),
    _s("timestamp_format", str, None, 'strptime format of timestamps, e.g. "%m/%d/%Y %H:%M".'),
    _s("timezone", str, "UTC", "Time zone of timestamps without an offset; stored as UTC."),
    _s(
        "missing_customer",
        str,
        "anonymous",
        "Rows without a customer id: keep them as anonymous events, or quarantine them.",
        ("anonymous", "quarantine"),
    ),
    _s("allow_negative_prices", bool, False, "Accept negative unit prices instead of quarantining."),
    _s("currency", str, None, "Currency of the source's amounts; defaults to project.currency."),
    _s("channel", str, None, "Channel of every row when the source has no channel column."),
    _s(
        "delimiter",
        str,
        "auto",
        'Field separator of delimited text: "auto" detects it, one character such as ";" or "\\t", '
        'or "whitespace" for fields separated by runs of spaces or tabs.',
    ),
    _s(
        "header",
        bool,
        True,
        "Whether the first row of delimited text or a spreadsheet holds the column names.",
    ),
    _s(
        "column_names",
        list,
        [],
        "Names of the columns, in order; needed when header = false, and replaces the header's names "
        "otherwise.",
    ),
    _s(
        "encoding",
        str,
        "utf-8",
        'Text encoding of the file, e.g. "latin-1", "cp1252" or "utf-16".',
    ),
    _s(
        "compression",
        str,
        "auto",
        "Compression of text files; auto reads a .gz file as gzip.",
        ("auto", "none", "gzip"),
    ),
    _s("sheet", str, None, "Sheet of an .xlsx workbook to read; defaults to the first sheet."),
    _s(
        "decimal_separator",
        str,
        ".",
        'Decimal separator of numbers written as text; "," reads 1.234,56 as 1234.56.',
        (".", ","),
    ),
    _s(
        "event_key",
        list,
        [],
        'Event fields that identify an event (e.g. ["order_id", "product_id"]): rows with the same '
        "values are one event, and a changed row corrects it. Empty: the source's event_id when mapped, "
        "otherwise every line of a file is its own event.",
    ),
    _s(
        "default_quantity",
        int,
        None,
        "Quantity of commerce rows when the source has no quantity column; without it such a source "
        "needs an amount column.",
        minimum=1,
        maximum=1_000_000,
    ),
    _s(
        "max_rejected_share",
        float,
        0.05,
        "Share of a file's rows that may be quarantined before `microseg import` fails (exit code 1).",
        minimum=0,
        maximum=1,
    ),
)

#: ``[attributes.<name>]`` settings: declared customer attributes beyond the fixed schema.
ATTRIBUTE_SETTINGS: tuple[Setting, ...] = (
    _s(
        "type",
        str,
        "categorical",
        "Kind of values: categorical (named values), ordinal (bands in a stated order) or numeric.",
        ("categorical", "ordinal", "numeric"),
    ),
    _s(
        "column",
        str,
        None,
        "Column of the customers table, or key of the customers' traits (the columns an import "
        "did not map), holding the value; defaults to the attribute's name.",
    ),
    _s("order", list, [], "The bands of an ordinal attribute, lowest first (required for ordinal)."),
    _s(
        "weight",
        float,
        1.0,
        "Weight of the attribute in the demographic clustering, against 1 for each built-in trait "
        "(0: on cards, labels and rules only).",
        minimum=0,
        maximum=10,
    ),
    _s(
        "label",
        str,
        None,
        "How a label names a value: {name} is the attribute's name in words, {value} the value "
        '(for a numeric attribute: higher or lower), e.g. "earning {value}"; default '
        '"with {name} {value}", for numeric attributes "with {value} {name}".',
    ),
)


@dataclass(frozen=True)
class AttributeConfig:
    """A declared customer attribute (``[attributes.<name>]``)."""

    name: str
    type: str = "categorical"
    column: str | None = None
    order: tuple[str, ...] = ()
    weight: float = 1.0
    label: str | None = None

    @property
    def source(self) -> str:
        """The customers column or traits key holding the value."""
        return self.column or self.name

    def phrase(self, value: str) -> str:
        """The words a label uses for a value ("with income band 50-75k", "with higher income")."""
        default = "with {value} {name}" if self.type == "numeric" else "with {name} {value}"
        return (self.label or default).format(name=self.name.replace("_", " "), value=value)


CLASSIFY_KEYS = {"event_type", "column", "starts_with", "equals", "in"}


@dataclass(frozen=True)
class ClassifyRule:
    event_type: str
    column: str
    starts_with: str | None = None
    equals: str | None = None
    one_of: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SourceConfig:
    name: str
    path: str
    kind: str = "events"
    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    event_type: str | None = None
    classify: tuple[ClassifyRule, ...] = ()
    customer_columns: dict[str, str] = field(default_factory=dict)
    product_columns: dict[str, str] = field(default_factory=dict)
    null_values: tuple[str, ...] = ()
    timestamp_format: str | None = None
    timezone: str = "UTC"
    missing_customer: str = "anonymous"
    allow_negative_prices: bool = False
    currency: str | None = None
    channel: str | None = None
    delimiter: str = "auto"
    header: bool = True
    column_names: tuple[str, ...] = ()
    encoding: str = "utf-8"
    compression: str = "auto"
    sheet: str | None = None
    decimal_separator: str = "."
    event_key: tuple[str, ...] = ()
    default_quantity: int | None = None
    max_rejected_share: float = 0.05


@dataclass(frozen=True)
class ClvConfig:
    period: str = "week"
    model: str = "auto"
    holdout_days: int = 0
    horizon_months: int = 12
    discount_rate: float = 0.01
    purchases_days: int = 90
    penalizer: float = 0.0


@dataclass(frozen=True)
class SegmentConfig:
    seed: int = 0
    k_min: int = 2
    k_max: int = 8
    sample_size: int = 10_000
    new_days: int = 90
    reactivation_gap_days: int = 365
    at_risk_lateness: float = 1.6
    churned_lateness: float = 4.0
    one_time_floor_days: int = 50
    at_risk_p_alive: float | None = 0.3
    churned_p_alive: float | None = 0.05
    clv_tiers: tuple[float, ...] = (0.01, 0.05, 0.20)
    tenure_days: tuple[int, ...] = (90, 365, 730)
    composites: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)
    page_flags: dict[str, str] = field(default_factory=dict)
    min_segment_size: int = 50
    min_stability: float = 0.9
    refit_margin: float = 0.05
    category_nouns: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, AttributeConfig] = field(default_factory=dict)  # from [attributes]


@dataclass(frozen=True)
class DynamicsConfig:
    every: str = "month"
    alert_alpha: float = 0.01
    alert_min_ratio: float = 1.5
    alert_min_moved: int = 10
    alert_min_history: int = 3
    forecast_smoothing: float = 0.5
    forecast_window: int = 3
    forecast_model: str = "auto"
    report_periods: int = 6


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    name: str
    warehouse: Path
    analysis_date: dt.date | None
    currency: str
    backend: str
    spark_master: str
    threads: int
    sources: dict[str, SourceConfig]
    clv: ClvConfig = field(default_factory=ClvConfig)
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    file: Path | None = None
    storage: str = "duckdb"
    lake: Path | None = None
    memory_limit: str = ""


def _type_name(typ) -> str:
    types = typ if isinstance(typ, tuple) else (typ,)
    names = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        dict: "a table",
        list: "a list",
        dt.date: "a date",
    }
    return " or ".join(names.get(t, t.__name__) for t in types)


def _read_section(data: Any, settings: tuple[Setting, ...], prefix: str, file: str | None) -> dict[str, Any]:
    """Validate one TOML table against its settings; fill defaults."""
    if not isinstance(data, dict):
        raise ConfigError("must be a table", key=prefix, file=file)
    known = {s.name: s for s in settings}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"unknown setting{suggest(key, known)}; allowed: {', '.join(known)}",
                key=f"{prefix}.{key}",
                file=file,
            )
    out: dict[str, Any] = {}
    for s in settings:
        key = f"{prefix}.{s.name}"
        if s.name not in data:
            if s.required:
                raise ConfigError("is required", key=key, file=file)
            out[s.name] = s.default
            continue
        value = data[s.name]
        types = s.type if isinstance(s.type, tuple) else (s.type,)
        if float in types:
            types = (*types, int)  # `rate = 0` is an integer in TOML
        ok = isinstance(value, types) and not (bool not in types and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"must be {_type_name(s.type)}, got {value!r}", key=key, file=file)
        problem = s.check_range(value)
        if problem:
            raise ConfigError(problem, key=key, file=file)
        if s.choices is not None and value not in s.choices:
            raise ConfigError(
                f"{value!r} is not allowed{suggest(str(value), s.choices)}; "
                f"choose one of: {', '.join(s.choices)}",
                key=key,
                file=file,
            )
        out[s.name] = value
    return out


def _parse_date(value: Any, key: str, file: str | None) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value == "auto":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f'{value!r} is not a date; write YYYY-MM-DD or "auto"', key=key, file=file
        ) from None


def _check_mapping(mapping: dict, allowed: list[str], key: str, file: str | None) -> dict[str, str]:
    for field_name, column in mapping.items():
        if field_name not in allowed:
            raise ConfigError(
                f"unknown field{suggest(field_name, allowed)}; fields: {', '.join(allowed)}",
                key=f"{key}.{field_name}",
                file=file,
            )
        if not isinstance(column, str) or not column:
            raise ConfigError(
                f"must name a source column, got {column!r}", key=f"{key}.{field_name}", file=file
            )
    return dict(mapping)


_LOADER_COLUMNS = {"source", "import_id", "updated_at"}


def mappable_fields(kind: str) -> list[str]:
    """Fields of the target table a source of ``kind`` may map."""
    return [c for c in SOURCE_TARGETS[kind].column_names if c not in _LOADER_COLUMNS]


def _parse_classify(rules: list, key: str, file: str | None) -> tuple[ClassifyRule, ...]:
    parsed = []
    for i, rule in enumerate(rules):
        rkey = f"{key}[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError("must be a table { event_type, column, ... }", key=rkey, file=file)
        for k in rule:
            if k not in CLASSIFY_KEYS:
                raise ConfigError(f"unknown key{suggest(k, CLASSIFY_KEYS)}", key=f"{rkey}.{k}", file=file)
        for k in ("event_type", "column"):
            if not isinstance(rule.get(k), str):
                raise ConfigError("is required (a string)", key=f"{rkey}.{k}", file=file)
        if rule["event_type"] not in EVENT_TYPES:
            raise ConfigError(
                f"{rule['event_type']!r} is not an event type{suggest(rule['event_type'], EVENT_TYPES)}",
                key=f"{rkey}.event_type",
                file=file,
            )
        tests = [k for k in ("starts_with", "equals", "in") if k in rule]
        if len(tests) != 1:
            raise ConfigError("needs exactly one of starts_with, equals, in", key=rkey, file=file)
        one_of = rule.get("in")
        if one_of is not None and (
            not isinstance(one_of, list) or not all(isinstance(v, str) for v in one_of)
        ):
            raise ConfigError("must be a list of strings", key=f"{rkey}.in", file=file)
        parsed.append(
            ClassifyRule(
                event_type=rule["event_type"],
                column=rule["column"],
                starts_with=rule.get("starts_with"),
                equals=rule.get("equals"),
                one_of=tuple(one_of) if one_of is not None else None,
            )
        )
    return tuple(parsed)


def _reader_settings(v: dict[str, Any], columns: dict[str, str], key: str, file: str | None) -> dict:
    """The checked reader and identity settings of one source, as SourceConfig fields."""
    delimiter = v["delimiter"]
    if delimiter not in ("auto", "whitespace") and len(delimiter) != 1:
        raise ConfigError(
            f'must be "auto", "whitespace" or one character, got {delimiter!r}',
            key=f"{key}.delimiter",
            file=file,
        )
    names = v["column_names"]
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ConfigError("must be a list of distinct, non-empty names", key=f"{key}.column_names", file=file)
    if not v["header"] and not names:
        raise ConfigError(
            "is needed when header = false: list the names of the columns in order",
            key=f"{key}.column_names",
            file=file,
        )
    try:
        codecs.lookup(v["encoding"])
    except LookupError:
        raise ConfigError(
            f'unknown encoding {v["encoding"]!r}; use a name such as "utf-8", "latin-1" or "cp1252"',
            key=f"{key}.encoding",
            file=file,
        ) from None
    event_key = v["event_key"]
    allowed = [f for f in mappable_fields(v["kind"]) if f != "event_id"]
    for item in event_key:
        if not isinstance(item, str) or item not in allowed:
            raise ConfigError(
                f"{item!r} is not an event field{suggest(str(item), allowed)}; "
                f"fields: {', '.join(allowed)} (event_id identifies events by itself: map columns.event_id)",
                key=f"{key}.event_key",
                file=file,
            )
    if event_key and "event_id" in columns:
        raise ConfigError(
            "set either event_key or columns.event_id, not both", key=f"{key}.event_key", file=file
        )
    return {
        "delimiter": delimiter,
        "header": v["header"],
        "column_names": tuple(names),
        "encoding": codecs.lookup(v["encoding"]).name,
        "compression": v["compression"],
        "sheet": v["sheet"],
        "decimal_separator": v["decimal_separator"],
        "event_key": tuple(event_key),
        "default_quantity": v["default_quantity"],
        "max_rejected_share": float(v["max_rejected_share"]),
    }


def parse_source(name: str, data: Any, file: str | None = None) -> SourceConfig:
    """Validate one ``[sources.<name>]`` table."""
    key = f"sources.{name}"
    v = _read_section(data, SOURCE_SETTINGS, key, file)
    kind = v["kind"]
    if kind != "events":
        for k in (
            "event_type",
            "classify",
            "customer_columns",
            "product_columns",
            "event_key",
            "default_quantity",
        ):
            if k in data:
                raise ConfigError(
                    f'only applies to kind = "events" (this source has kind = "{kind}")',
                    key=f"{key}.{k}",
                    file=file,
                )
    columns = _check_mapping(v["columns"], mappable_fields(kind), f"{key}.columns", file)
    if kind == "events" and v["event_type"] is not None and "event_type" in columns:
        raise ConfigError(
            "set either event_type or columns.event_type, not both",
            key=f"{key}.event_type",
            file=file,
        )
    for item in v["null_values"]:
        if not isinstance(item, str):
            raise ConfigError(f"must be strings, got {item!r}", key=f"{key}.null_values", file=file)
    try:
        zoneinfo.ZoneInfo(v["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f'unknown time zone {v["timezone"]!r}; use an IANA name such as "Europe/London"',
            key=f"{key}.timezone",
            file=file,
        ) from None
    if v["timestamp_format"] is not None and "%" not in v["timestamp_format"]:
        raise ConfigError(
            'must be a strptime format such as "%m/%d/%Y %H:%M"', key=f"{key}.timestamp_format", file=file
        )
    customer_fields = [c for c in mappable_fields("customers") if c != "customer_id"]
    product_fields = [c for c in mappable_fields("products") if c != "product_id"]
    return SourceConfig(
        name=name,
        path=v["path"],
        kind=kind,
        format=v["format"],
        columns=columns,
        event_type=v["event_type"],
        classify=_parse_classify(v["classify"], f"{key}.classify", file),
        customer_columns=_check_mapping(
            v["customer_columns"], customer_fields, f"{key}.customer_columns", file
        ),
        product_columns=_check_mapping(v["product_columns"], product_fields, f"{key}.product_columns", file),
        null_values=tuple(v["null_values"]),
        timestamp_format=v["timestamp_format"],
        timezone=v["timezone"],
        missing_customer=v["missing_customer"],
        allow_negative_prices=v["allow_negative_prices"],
        currency=v["currency"],
        channel=v["channel"],
        **_reader_settings(v, columns, key, file),
    )


SECTIONS = {
    "project": PROJECT_SETTINGS,
    "engine": ENGINE_SETTINGS,
    "clv": CLV_SETTINGS,
    "segments": SEGMENT_SETTINGS,
    "dynamics": DYNAMICS_SETTINGS,
    "sources": None,
    "attributes": None,
}


def parse_config(data: dict[str, Any], root: Path, file: str | None = None) -> ProjectConfig:
    """Validate a parsed ``microseg.toml`` document."""
    for section in data:
        if section not in SECTIONS:
            raise ConfigError(
                f"unknown section{suggest(section, SECTIONS)}; sections: {', '.join(SECTIONS)}",
                key=section,
                file=file,
            )
    project = _read_section(data.get("project", {}), PROJECT_SETTINGS, "project", file)
    engine = _read_section(data.get("engine", {}), ENGINE_SETTINGS, "engine", file)
    sources_data = data.get("sources", {})
    if not isinstance(sources_data, dict):
        raise ConfigError("must be a table of named sources", key="sources", file=file)
    sources = {name: parse_source(name, body, file) for name, body in sources_data.items()}
    clv = _read_section(data.get("clv", {}), CLV_SETTINGS, "clv", file)
    for name in ("discount_rate", "penalizer"):
        clv[name] = float(clv[name])
    segments = _parse_segments(data.get("segments", {}), file)
    attributes = _parse_attributes(data.get("attributes", {}), file)
    segments = dataclasses.replace(segments, attributes=attributes)
    dynamics = _parse_dynamics(data.get("dynamics", {}), file)
    return ProjectConfig(
        root=root,
        name=project["name"] or root.name,
        warehouse=root / project["warehouse"],
        analysis_date=_parse_date(project["analysis_date"], "project.analysis_date", file),
        currency=project["currency"],
        backend=engine["backend"],
        spark_master=engine["spark_master"],
        threads=engine["threads"],
        sources=sources,
        clv=ClvConfig(**clv),
        segments=segments,
        dynamics=dynamics,
        file=Path(file) if file else None,
        storage=engine["storage"],
        lake=root / engine["lake"],
        memory_limit=_memory_limit(engine["memory_limit"], file),
    )


#: A DuckDB memory size: a number and a unit.
_MEMORY = re.compile(r"^\s*(\d+(\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def _memory_limit(value: str, file) -> str:
    """``engine.memory_limit`` as DuckDB reads it ("" when not set)."""
    if not value.strip():
        return ""
    match = _MEMORY.match(value)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(
            f'must be a size such as "6GB" (a number and KB, MB, GB or TB), got {value!r}',
            key="engine.memory_limit",
            file=file,
        )
    return f"{match.group(1)}{match.group(3).upper().replace('I', 'i')}"


TIER_NAMES = ("clv", "rfm", "tenure", "engagement")


def _parse_segments(data: Any, file: str | None) -> SegmentConfig:
    v = _read_section(data, SEGMENT_SETTINGS, "segments", file)
    if v["k_max"] < v["k_min"]:
        raise ConfigError(f"must be >= segments.k_min ({v['k_min']})", key="segments.k_max", file=file)
    for name in ("at_risk_lateness", "churned_lateness"):
        v[name] = float(v[name])
    if v["churned_lateness"] <= v["at_risk_lateness"]:
        raise ConfigError(
            "must be above segments.at_risk_lateness", key="segments.churned_lateness", file=file
        )
    for name in ("at_risk_p_alive", "churned_p_alive"):
        value = float(v[name])
        if value != -1 and not 0 <= value <= 1:
            raise ConfigError(
                "must be between 0 and 1, or -1 to ignore P(alive)", key=f"segments.{name}", file=file
            )
        v[name] = None if value == -1 else value
    cuts = v["clv_tiers"]
    if (
        not cuts
        or not all(isinstance(c, (int, float)) and 0 < c < 1 for c in cuts)
        or sorted(cuts) != list(cuts)
    ):
        raise ConfigError(
            "must be increasing shares between 0 and 1, e.g. [0.01, 0.05, 0.2]",
            key="segments.clv_tiers",
            file=file,
        )
    bounds = v["tenure_days"]
    if (
        not bounds
        or not all(isinstance(b, int) and b > 0 for b in bounds)
        or sorted(set(bounds)) != list(bounds)
    ):
        raise ConfigError(
            "must be increasing whole days, e.g. [90, 365, 730]", key="segments.tenure_days", file=file
        )
    composites = {}
    for name, layers in v["composites"].items():
        key = f"segments.composites.{name}"
        if not isinstance(layers, dict) or not layers:
            raise ConfigError("must be a table of tier layer = [accepted tiers]", key=key, file=file)
        parsed = {}
        for layer, accepted in layers.items():
            base = layer.removesuffix("_tier")
            if base not in TIER_NAMES:
                raise ConfigError(
                    f"unknown tier layer{suggest(base, TIER_NAMES)}; layers: {', '.join(TIER_NAMES)}",
                    key=f"{key}.{layer}",
                    file=file,
                )
            values = [accepted] if isinstance(accepted, str) else accepted
            if not isinstance(values, list) or not values or not all(isinstance(x, str) for x in values):
                raise ConfigError("must be a tier name or a list of them", key=f"{key}.{layer}", file=file)
            parsed[base] = tuple(values)
        composites[name] = parsed
    for name in ("min_stability", "refit_margin"):
        v[name] = float(v[name])
    for table in ("rules", "page_flags", "category_nouns"):
        for name, value in v[table].items():
            if not isinstance(value, str) or not value.strip():
                raise ConfigError("must be a non-empty string", key=f"segments.{table}.{name}", file=file)
    v["clv_tiers"], v["tenure_days"], v["composites"] = tuple(cuts), tuple(bounds), composites
    return SegmentConfig(**v)


def _parse_attributes(data: Any, file: str | None) -> dict[str, AttributeConfig]:
    """Validate the ``[attributes]`` tables: one per declared attribute."""
    if not isinstance(data, dict):
        raise ConfigError("must be a table of named attributes", key="attributes", file=file)
    # the profile's own columns, and the values, stage and tiers the segmentation adds to it
    reserved = {c.name for c in (*PROFILE_FEATURES, *CUSTOMER_VALUES.columns)}
    reserved |= {"stage", "composite_code", *TIER_LAYERS}
    out = {}
    for name, body in data.items():
        key = f"attributes.{name}"
        if not name.isidentifier() or name != name.lower():
            raise ConfigError(
                "an attribute name must be lower case letters, digits and underscores (it becomes a "
                "profile column that rules can use)",
                key=key,
                file=file,
            )
        if name in reserved:
            raise ConfigError(
                "is already a column of the customer profile; choose another name and set `column`",
                key=key,
                file=file,
            )
        v = _read_section(body, ATTRIBUTE_SETTINGS, key, file)
        order = v["order"]
        if not all(isinstance(x, str) and x for x in order) or len(set(order)) != len(order):
            raise ConfigError("must be a list of distinct non-empty strings", key=f"{key}.order", file=file)
        if v["type"] == "ordinal" and len(order) < 2:
            raise ConfigError(
                'an ordinal attribute needs its bands in order, e.g. order = ["18-34", "35-54", "55+"]',
                key=f"{key}.order",
                file=file,
            )
        if v["type"] != "ordinal" and order:
            raise ConfigError('only applies to type = "ordinal"', key=f"{key}.order", file=file)
        label = v["label"]
        if label is not None:
            if "{value}" not in label:
                raise ConfigError("must contain {value}", key=f"{key}.label", file=file)
            try:
                label.format(name="n", value="v")
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(
                    f"may only use {{name}} and {{value}} ({exc})", key=f"{key}.label", file=file
                ) from None
        if v["column"] is not None and not v["column"]:
            raise ConfigError("must name a column or traits key", key=f"{key}.column", file=file)
        out[name] = AttributeConfig(
            name=name,
            type=v["type"],
            column=v["column"],
            order=tuple(order),
            weight=float(v["weight"]),
            label=v["label"],
        )
    return out


def _parse_dynamics(data: Any, file: str | None) -> DynamicsConfig:
    v = _read_section(data, DYNAMICS_SETTINGS, "dynamics", file)
    for name in ("alert_alpha", "alert_min_ratio", "forecast_smoothing"):
        v[name] = float(v[name])
    return DynamicsConfig(**v)


def load_config(project_dir: str | Path = ".") -> ProjectConfig:
    """Read and validate ``microseg.toml`` in ``project_dir``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "microseg.toml").write_text('[project]\\nname = "shop"\\n')
    >>> load_config(d).name
    'shop'
    """
    root = Path(project_dir).resolve()
    path = root / CONFIG_FILE
    if not path.exists():
        raise ProjectNotFoundError(f"no {CONFIG_FILE} in {root}; create a project with `microseg init`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    return parse_config(data, root, str(path))


def all_settings() -> list[tuple[str, Setting]]:
    """Every documented setting with its full dotted name (for docs and the docs test)."""
    out = [(f"project.{s.name}", s) for s in PROJECT_SETTINGS]
    out += [(f"engine.{s.name}", s) for s in ENGINE_SETTINGS]
    out += [(f"clv.{s.name}", s) for s in CLV_SETTINGS]
    out += [(f"segments.{s.name}", s) for s in SEGMENT_SETTINGS]
    out += [(f"dynamics.{s.name}", s) for s in DYNAMICS_SETTINGS]
    out += [(f"sources.<name>.{s.name}", s) for s in SOURCE_SETTINGS]
    out += [(f"attributes.<name>.{s.name}", s) for s in ATTRIBUTE_SETTINGS]
    return out


__all__ = [
    "CONFIG_FILE",
    "AttributeConfig",
    "ClassifyRule",
    "ProjectConfig",
    "Setting",
    "SourceConfig",
    "all_settings",
    "load_config",
    "mappable_fields",
    "parse_config",
    "parse_source",
]


def settings_markdown() -> str:
    """The configuration reference (``docs/configuration.md``), generated from the registry."""
    out = [
        "# Configuration: `microseg.toml`",
        "",
        "Generated from `microseg.config` by `make docs`; a test keeps it in step with the code.",
        "Paths are relative to the project folder.",
        "",
        "| setting | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, s in all_settings():
        default = "required" if s.required else f"`{json.dumps(s.default)}`"
        meaning = s.help + (f" One of: {', '.join(f'`{c}`' for c in s.choices)}." if s.choices else "")
        if s.minimum is not None or s.maximum is not None:
            meaning += f" Range: {s.range_text()}."
        out.append(f"| `{name}` | {_type_name(s.type)} | {default} | {meaning} |")
    return "\n".join(out) + "\n"

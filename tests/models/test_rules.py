"""Rule segments: compile declarative audiences to Ibis, and refuse anything but conditions."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from microseg.errors import ConfigError, MicrosegError, SchemaError
from microseg.features.profile import PROFILE_COLUMNS
from microseg.models.rules import (
    MAX_EXPRESSION_LENGTH,
    Rule,
    RuleError,
    evaluate_rules,
    parse_rule,
    parse_rules,
)

SCHEMA = {
    "customer_id": "string",
    "clv": "float64",
    "stage": "string",
    "visited_pricing_30d": "boolean",
    "top_category": "string",
    "days_since_last_purchase": "int64",
    "age": "int64",
    "gender": "string",
    "app_events_90d": "int64",
    "signup_date": "date",
    "last_event_at": "timestamp",
    "revenue": "float64",
    "tags": "array<string>",
}

ROWS = [
    # id, clv, stage, pricing, category, days, age, gender, app, signup, last event
    (
        "c1",
        800.0,
        "at_risk",
        True,
        "garden",
        200,
        25,
        "F",
        7,
        dt.date(2024, 3, 1),
        dt.datetime(2025, 5, 1, 10),
    ),
    (
        "c2",
        600.0,
        "at_risk",
        False,
        "garden",
        400,
        45,
        "M",
        0,
        dt.date(2023, 1, 15),
        dt.datetime(2024, 12, 1),
    ),
    ("c3", None, "at_risk", True, "kitchen", 10, 29, "X", 5, dt.date(2025, 2, 1), dt.datetime(2025, 6, 1)),
    ("c4", 120.0, "active", None, "Garden Tools", 365, None, "F", 12, None, None),
    ("c5", 50.0, None, True, None, 180, 31, None, 5, dt.date(2025, 1, 1), dt.datetime(2025, 1, 1)),
    ("c6", 950.0, "loyal", True, "garden", 181, 19, "F", 2, dt.date(2022, 6, 30), dt.datetime(2025, 6, 20)),
]

CONFIG_RULES = {
    "vip_at_risk": "clv > 500 and stage = 'at_risk' and visited_pricing_30d",
    "lapsed_gardeners": "top_category = 'garden' and days_since_last_purchase between 180 and 365",
    "young_app_fans": "age < 30 and app_events_90d >= 5 and gender in ('F', 'X')",
}


def _frame() -> pd.DataFrame:
    columns = [c for c in SCHEMA if c not in ("revenue", "tags")]
    frame = pd.DataFrame(ROWS, columns=columns)
    frame["revenue"] = frame["clv"].fillna(0.0)
    frame["tags"] = [["a"], [], None, ["b", "c"], None, ["a"]]
    return frame


@pytest.fixture(scope="module")
def profile() -> ibis.Table:
    return ibis.memtable(_frame(), schema=ibis.schema(SCHEMA))


def members(rule: Rule, table: ibis.Table) -> set[str]:
    return set(table.filter(rule.to_ibis(table)).customer_id.to_pyarrow().to_pylist())


# --------------------------------------------------------------------------------------------
# compile and evaluate


MEMBER_CASES = [
    (CONFIG_RULES["vip_at_risk"], {"c1"}),
    (CONFIG_RULES["lapsed_gardeners"], {"c1", "c6"}),
    (CONFIG_RULES["young_app_fans"], {"c1", "c3"}),
    # NULL handling: only a true condition counts; NULL is never a member
    ("clv is null or stage is null", {"c3", "c5"}),
    ("not (clv > 500)", {"c4", "c5"}),
    ("not visited_pricing_30d", {"c2"}),
    ("visited_pricing_30d is not true", {"c2", "c4"}),
    ("stage not in ('at_risk', 'loyal')", {"c4"}),
    # boolean column alone
    ("visited_pricing_30d", {"c1", "c3", "c5", "c6"}),
    # between / not between (inclusive)
    ("days_since_last_purchase not between 181 and 364", {"c2", "c3", "c4", "c5"}),
    # like is case-sensitive, ilike is not
    ("top_category like 'garden%'", {"c1", "c2", "c6"}),
    ("top_category ilike 'GARDEN%'", {"c1", "c2", "c4", "c6"}),
    ("top_category not like 'g%'", {"c3", "c4"}),
    # arithmetic and unary minus
    ("clv / 2 - 100 >= 300 and -age > -30", {"c1", "c6"}),
    ("clv * 2 + 1 = 1201", {"c2"}),
    # functions
    ("coalesce(clv, 0) < 100 and length(lower(coalesce(stage, 'unknown'))) = 7", {"c3", "c5"}),
    ("round(clv / 7) = 114", {"c1"}),
    ("round(clv / 3, 1) = 16.7", {"c5"}),
    ("abs(app_events_90d - 6) <= 1", {"c1", "c3", "c5"}),
    ("greatest(age, 30) = 30 and least(app_events_90d, 6) = 5", {"c3"}),
    ("upper(gender) = 'F' AND \"age\" IS NOT NULL", {"c1", "c6"}),
    # dates and timestamps
    ("signup_date >= '2025-01-01' or last_event_at < date '2025-01-01'", {"c2", "c3", "c5"}),
    ("signup_date between date '2023-01-01' and date '2024-12-31'", {"c1", "c2"}),
    ("last_event_at >= timestamp '2025-06-01 00:00:00'", {"c3", "c6"}),
    ("signup_date in ('2025-01-01', date '2022-06-30')", {"c5", "c6"}),
    # keywords in any case, unquoted names case-insensitive
    ("CLV > 700 AnD Stage <> 'loyal'", {"c1"}),
    ("age == 19 or age != age", {"c6"}),
    # a quote inside a literal stays a literal
    ("stage = 'x'' or 1=1 --'", set()),
    ("tags is not null and age > 40", {"c2"}),
]


@pytest.mark.parametrize(("expression", "expected"), MEMBER_CASES)
def test_rule_members(profile: ibis.Table, expression: str, expected: set[str]) -> None:
    rule = parse_rule("audience", expression, SCHEMA)
    assert members(rule, profile) == expected


def test_parse_returns_rule_with_columns() -> None:
    rule = parse_rule("vip_at_risk", CONFIG_RULES["vip_at_risk"], SCHEMA)
    assert rule == Rule(
        name="vip_at_risk",
        expression=CONFIG_RULES["vip_at_risk"],
        columns=frozenset({"clv", "stage", "visited_pricing_30d"}),
    )
    assert parse_rule("r", 'CLV > 1 and "age" < 3', ibis.schema(SCHEMA)).columns == {"clv", "age"}


def test_profile_schema_rules() -> None:
    rules = parse_rules({k: v for k, v in CONFIG_RULES.items() if k != "vip_at_risk"}, PROFILE_COLUMNS)
    assert [r.name for r in rules] == ["lapsed_gardeners", "young_app_fans"]
    with pytest.raises(RuleError, match=r"^segments\.rules\.vip_at_risk: unknown column 'clv'"):
        parse_rules(CONFIG_RULES, PROFILE_COLUMNS)


def test_to_ibis_is_boolean_column_without_nulls(profile: ibis.Table) -> None:
    condition = parse_rule("r", "clv > 500", SCHEMA).to_ibis(profile)
    assert condition.type().is_boolean()
    values = profile.select(condition).to_pyarrow().column(0).to_pylist()
    assert values == [True, True, False, False, False, True]


def test_several_rules_overlap(profile: ibis.Table) -> None:
    rules = parse_rules(CONFIG_RULES, SCHEMA)
    result = evaluate_rules(rules, profile)
    assert result.columns == ("customer_id", "segment")
    rows = result.to_pandas()
    assert sorted(rows.itertuples(index=False, name=None)) == sorted(
        [
            ("c1", "vip_at_risk"),
            ("c1", "lapsed_gardeners"),
            ("c6", "lapsed_gardeners"),
            ("c1", "young_app_fans"),
            ("c3", "young_app_fans"),
        ]
    )
    assert not rows.duplicated().any()


def test_evaluate_rules_edge_cases(profile: ibis.Table) -> None:
    empty = evaluate_rules([], profile).to_pandas()
    assert list(empty.columns) == ["customer_id", "segment"] and empty.empty
    single = evaluate_rules([parse_rule("fans", "app_events_90d > 10", SCHEMA)], profile).to_pandas()
    assert single.values.tolist() == [["c4", "fans"]]
    renamed = profile.rename(cid="customer_id")
    out = evaluate_rules([parse_rule("fans", "app_events_90d > 10", SCHEMA)], renamed, id_column="cid")
    assert out.to_pandas().values.tolist() == [["c4", "fans"]]
    rule = parse_rule("fans", "age > 1", SCHEMA)
    with pytest.raises(RuleError, match="defined twice"):
        evaluate_rules([rule, rule], profile)
    with pytest.raises(SchemaError, match="id column 'nope'"):
        evaluate_rules([rule], profile, id_column="nope")


def test_to_ibis_checks_the_table_again(profile: ibis.Table) -> None:
    with pytest.raises(RuleError, match=r"^segments\.rules\.handmade: '>' needs operands"):
        Rule("handmade", "clv > 'abc'", frozenset({"clv"})).to_ibis(profile)
    with pytest.raises(RuleError, match="unknown column 'clv'"):
        parse_rule("r", "clv > 1", SCHEMA).to_ibis(profile.drop("clv"))


def test_compiled_sql_touches_only_the_profile() -> None:
    con = ibis.duckdb.connect()
    con.create_table("profile", _frame(), schema=ibis.schema(SCHEMA))
    con.create_table("secrets", pd.DataFrame({"customer_id": ["c1"], "password": ["hunter2"]}))
    table = con.table("profile")
    rules = parse_rules(
        {
            **CONFIG_RULES,
            "functions": "coalesce(clv, 0) < 100 and length(lower(coalesce(stage, 'x'))) > 0",
            "quoted": "stage = 'x'' or customer_id in (select customer_id from secrets) --'",
        },
        table.schema(),
    )
    result = evaluate_rules(rules, table)
    sql = ibis.to_sql(result, dialect="duckdb")
    tree = sqlglot.parse_one(str(sql), read="duckdb")
    assert {t.name for t in tree.find_all(exp.Table)} == {"profile"}
    assert not list(tree.find_all(exp.Anonymous))  # no function outside sqlglot's known set
    assert "password" not in str(sql)
    segments = set(result.to_pandas().itertuples(index=False, name=None))
    assert ("c3", "functions") in segments and not any(s == "quoted" for _, s in segments)
    for hostile in (
        "secrets.password = 'x'",
        "password = 'hunter2'",
        "customer_id in (select customer_id from secrets)",
    ):
        with pytest.raises(RuleError, match=r"^segments\.rules\.steal: "):
            parse_rule("steal", hostile, table.schema())


# --------------------------------------------------------------------------------------------
# validation errors


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("1=1; drop table events", "';' is not allowed"),
        ("clv > 0; select * from events", "';' is not allowed"),
        ("(select count(*) from events) > 0", "subqueries"),
        ("exists (select 1)", "subqueries"),
        ("customer_id in (select customer_id from events)", "subqueries"),
        ("clv > 1 union select 1", "subqueries"),
        ("read_csv('/etc/passwd') is not null", "function read_csv() is not allowed"),
        ("read_parquet('x.parquet') = 1", "function read_parquet() is not allowed"),
        ("getenv('HOME') = 'x'", "function getenv() is not allowed"),
        ("current_setting('threads') = '1'", "function current_setting() is not allowed"),
        ("stage = 'a' or pg_read_file('x') = ''", "function pg_read_file() is not allowed"),
        ("system('ls') = 0", "function system() is not allowed"),
        ("glob('*') is null", "function glob() is not allowed"),
        ("query('select 1') is null", "function query() is not allowed"),
        ("nvl(clv, 0) > 1", "function nvl() is not allowed"),
        ("events.clv > 5", "table-qualified column 'events.clv'"),
        ("main.events.clv > 5", "table-qualified column"),
        ("* > 1", "'*' is not allowed"),
        ("events.* is null", "'*' is not allowed"),
        ("clv >", "syntax error"),
        ("clv > 1 and", "syntax error"),
        ("stage = 'unterminated", "syntax error"),
        ('"clv" > 1 --\'', "comments"),
        ("clv > 1 /* hidden */", "comments"),
        ("lower(stage, 'x') = 'a'", "lower() takes exactly 1 argument, got 2"),
        ("abs() > 1", "abs() takes exactly 1 argument, got 0"),
        ("round(clv, 1, 2) > 1", "round() takes 1 to 2 arguments, got 3"),
        ("coalesce(clv) > 1", "coalesce() takes at least 2 arguments, got 1"),
        ("sum(clv) > 0", "aggregate function sum() is not allowed"),
        ("row_number() over () > 1", "window functions are not allowed"),
        ("clv::varchar = '1'", "casts are not allowed"),
        ("cast(clv as int) > 1", "casts are not allowed"),
        ("try_cast(clv as int) > 1", "casts are not allowed"),
        ("clv > ?", "placeholders"),
        ("clv > $1", "placeholders"),
        ("clv > :limit", "placeholders"),
        ("clv > 'abc'", "'>' needs operands of the same type, got clv (number) and 'abc' (string)"),
        ("stage + 1 > 0", "'+' needs numbers, got stage (string)"),
        ("age and visited_pricing_30d", "'and' needs conditions (true/false), got age (number)"),
        ("not stage", "'not' needs conditions"),
        ("clv + 1", "must be a condition"),
        ("1 = 1", "reads no profile column"),
        ("stage = NULL or clv > 900", "use 'is null'"),
        ("stage in ('a', stage)", "list of literal values"),
        ("stage in ()", "non-empty list"),
        ("stage like stage", "literal pattern"),
        ("age like '1%'", "'like' needs a string, got age (number)"),
        ("lower(age) = 'a'", "lower() needs a string"),
        ("abs(stage) > 1", "'abs()' needs numbers"),
        ("round(clv, age) > 1", "digits must be an integer literal"),
        ("coalesce(clv, 'none') = 'x'", "coalesce() needs operands of the same type"),
        ("signup_date > 'yesterday'", "invalid date literal"),
        ("date '2025-13-45' < signup_date", "invalid date literal"),
        ("signup_date > 5", "needs operands of the same type"),
        ("tags = 'a'", "not supported"),
        ("clv % 2 = 1", "Mod is not part of the rule grammar"),
        ("stage || 'x' = 'ax'", "not part of the rule grammar"),
        ("stage similar to 'a'", "not part of the rule grammar"),
        ("stage not like 'a!%' escape '!'", "not part of the rule grammar"),
        ("clv between symmetric 1 and 2", "symmetric is not allowed"),
        ("clv is not distinct from 1", "not part of the rule grammar"),
        ("interval 1 day is null", "not part of the rule grammar"),
        ("clv > 1e400", "out of range"),
        ("drop table events", "not part of the rule grammar"),
        ("", "expression is empty"),
    ],
)
def test_hostile_and_invalid_expressions_are_rejected(expression: str, fragment: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("hostile", expression, SCHEMA)
    message = str(caught.value)
    assert message.startswith("segments.rules.hostile: ")
    assert fragment in message


def test_unknown_column_names_it_and_suggests() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule("typo", "unknown_field > 3", SCHEMA)
    error = caught.value
    assert str(error).startswith("segments.rules.typo: unknown column 'unknown_field'")
    assert "known columns: age, app_events_90d, clv" in str(error)  # nothing close: list them
    assert error.column == "unknown_field" and error.segment == "typo"
    with pytest.raises(RuleError, match=r"unknown column 'revenu'; did you mean 'revenue'\?"):
        parse_rule("typo", "revenu > 3", SCHEMA)
    with pytest.raises(RuleError, match="did you mean 'clv'"):
        parse_rule("typo", "cvl > 3", SCHEMA)
    with pytest.raises(RuleError, match="unknown column 'CLV'"):  # quoted names are exact
        parse_rule("typo", '"CLV" > 3', SCHEMA)


def test_size_limits() -> None:
    long = "clv > " + " + ".join(["1"] * 2_500)
    assert len(long) > 5_000
    with pytest.raises(
        RuleError, match=r"^segments\.rules\.big: expression is too long \(\d+ characters; at most 2000\)"
    ):
        parse_rule("big", long, SCHEMA)
    just_fits = "clv > 0" + " or clv > 0" * ((MAX_EXPRESSION_LENGTH - 7) // 11)
    assert len(just_fits) <= MAX_EXPRESSION_LENGTH
    with pytest.raises(RuleError, match="nested too deeply"):  # a valid but absurd chain
        parse_rule("big", just_fits, SCHEMA)
    assert parse_rule("ok", " and ".join(["clv > 0"] * 40), SCHEMA).columns == {"clv"}
    for deep in (
        "(" * 200 + "clv > 1" + ")" * 200,
        "(" * 25 + "clv > 1" + ")" * 25,
        "not " * 450 + "visited_pricing_30d",
        "- " * 700 + "clv > 1",
    ):
        with pytest.raises(RuleError, match=r"^segments\.rules\.deep: expression is nested too deeply"):
            parse_rule("deep", deep, SCHEMA)


@pytest.mark.parametrize("name", ["VIP", "1st", "vip-at-risk", "vip at risk", "", "a" * 64, "segments.x"])
def test_segment_names_are_lower_snake_case(name: str) -> None:
    with pytest.raises(RuleError, match="lower snake case"):
        parse_rule(name, "clv > 1", SCHEMA)


def test_rule_error_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rule("bad", "clv >", SCHEMA)
    error = caught.value
    assert isinstance(error, MicrosegError) and error.http_status == 400
    assert error.key == "segments.rules.bad"
    with pytest.raises(RuleError, match="must be a string"):
        parse_rule("bad", 42, SCHEMA)  # type: ignore[arg-type]


@pytest.mark.spark
def test_same_members_on_spark(spark, tmp_path) -> None:
    """Every member case, all rules at once, gives the same rows on Spark as on DuckDB."""
    path = tmp_path / "profile.parquet"
    ibis.memtable(_frame(), schema=ibis.schema(SCHEMA)).to_parquet(path)
    on_spark = ibis.pyspark.connect(spark).read_parquet(str(path))
    rules = [parse_rule(f"case_{i}", expression, SCHEMA) for i, (expression, _) in enumerate(MEMBER_CASES)]
    expected = {(c, f"case_{i}") for i, (_, members) in enumerate(MEMBER_CASES) for c in members}
    got = evaluate_rules(rules, on_spark).to_pandas()
    assert set(got.itertuples(index=False, name=None)) == expected
    assert len(got) == len(expected)

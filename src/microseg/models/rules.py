"""Rule segments ("audiences"): declarative conditions over the customer profile.

Users write audiences in the project config::

    [segments.rules]
    vip_at_risk = "clv > 500 and stage = 'at_risk' and visited_pricing_30d"
    lapsed_gardeners = "top_category = 'garden' and days_since_last_purchase between 180 and 365"

An expression is parsed with sqlglot and checked node by node against an explicit allow-list
(anything not listed below is rejected), against the profile's columns and against their types.
It is then compiled to an Ibis boolean expression, so it runs on whichever engine holds the
profile; the text is never pasted into SQL.

Allowed grammar (keywords are case-insensitive):

* column references: bare identifiers or ``"double quoted"`` (no ``table.column``, no ``*``);
* literals: numbers, ``'single quoted'`` strings, ``TRUE``/``FALSE``/``NULL`` (``NULL`` only
  after ``IS``), ``date '2025-01-01'`` and ``timestamp '2025-01-01 10:00:00'``. The only casts
  allowed are those of a string literal to a date or timestamp (``date '...'``,
  ``'...'::date``, ``cast('...' as date)``); a string literal compared with a date or
  timestamp column is read as an ISO date too;
* ``and``, ``or``, ``not``, parentheses; a boolean column alone is a condition;
* comparisons ``= == != <> < <= > >=``, ``between .. and ..``, ``[not] in (literal, ...)``,
  ``is [not] null``, ``is [not] true|false``, ``[not] like 'pattern'``, ``[not] ilike 'pattern'``;
* arithmetic ``+ - * /`` and unary minus on numbers (``/`` is true division, as in Ibis);
* functions: ``abs(x)``, ``coalesce(a, b, ...)``, ``lower(s)``, ``upper(s)``, ``length(s)``,
  ``least(a, b, ...)``, ``greatest(a, b, ...)``, ``round(x[, digits])``.

Rejected, among everything else: several statements, comments, subqueries, set operations,
``EXISTS``, table-qualified columns, ``*``, every other function (aggregates, window functions,
table functions such as ``read_csv``), other casts, parameters and placeholders, expressions
longer than ``MAX_EXPRESSION_LENGTH`` characters or nested deeper than ``MAX_PAREN_DEPTH``
parentheses / ``MAX_AST_DEPTH`` syntax-tree levels.

A customer is in a segment only when its expression is true: NULL counts as false.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir
import pandas as pd
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from microseg.errors import ConfigError, SchemaError

__all__ = [
    "FUNCTIONS",
    "MAX_AST_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_PAREN_DEPTH",
    "Rule",
    "RuleError",
    "evaluate_rules",
    "frame_schema",
    "parse_rule",
    "parse_rules",
]

#: Longest expression accepted, in characters.
MAX_EXPRESSION_LENGTH = 2_000
#: Deepest parenthesis nesting accepted.
MAX_PAREN_DEPTH = 20
#: Deepest syntax tree accepted (a chain of 60 ``and`` is fine, a pathological one is not).
MAX_AST_DEPTH = 64
#: Allowed functions and their arity as (minimum, maximum or None for no maximum).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "coalesce": (2, None),
    "greatest": (2, None),
    "least": (2, None),
    "length": (1, 1),
    "lower": (1, 1),
    "round": (1, 2),
    "upper": (1, 1),
}

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_DIALECT = Dialect.get_or_raise("duckdb")


class RuleError(ConfigError):
    """A rule segment is badly named or its expression is invalid.

    The message starts with the config key ``segments.rules.<name>:``; ``segment`` is the name
    and ``column`` the unknown column, when that is the problem.
    """

    def __init__(self, segment: str, message: str, *, column: str | None = None) -> None:
        super().__init__(message, key=f"segments.rules.{segment}")
        self.segment = segment
        self.column = column


@dataclass(frozen=True)
class Rule:
    """A validated rule segment: its name, its expression and the profile columns it reads."""

    name: str
    expression: str
    columns: frozenset[str]

    def to_ibis(self, table: ir.Table) -> ir.BooleanColumn:
        """The condition over ``table`` (NULL becomes False), checked again against its schema."""
        typed = _compile(self.name, self.expression, table.schema())
        return typed.build(table).fill_null(False).name(self.name)


def parse_rule(name: str, expression: str, schema: Mapping[str, str] | ibis.Schema) -> Rule:
    """Validate ``expression`` against the profile ``schema`` and return the ``Rule``.

    Raises ``RuleError`` for a bad name, a syntax error, a construct outside the allow-list, an
    unknown column or operands of the wrong type.
    """
    schema = schema if isinstance(schema, ibis.Schema) else ibis.schema(dict(schema))
    typed = _compile(name, expression, schema)
    return Rule(name=name, expression=expression, columns=frozenset(typed.columns))


def parse_rules(rules: Mapping[str, str], schema: Mapping[str, str] | ibis.Schema) -> list[Rule]:
    """Parse every ``name = expression`` of a ``[segments.rules]`` table, in order."""
    return [parse_rule(name, expression, schema) for name, expression in rules.items()]


def frame_schema(frame: pd.DataFrame, known: ibis.Schema | None = None) -> ibis.Schema:
    """The types rules see in a pandas ``frame``: its own dtypes, except that a column of Python
    objects (dates arrive from Arrow as ``datetime.date`` objects) is typed by its first value,
    and a column without any value by ``known`` (a table contract), else as a string.

    >>> import datetime as dt
    >>> frame = pd.DataFrame({"signup_date": [None, dt.date(2024, 5, 1)], "empty": [None, None]})
    >>> schema = frame_schema(frame, ibis.schema({"empty": "date"}))
    >>> str(schema["signup_date"]), str(schema["empty"])
    ('date', 'date')
    """
    inferred = ibis.memtable(frame.head(0)).schema()
    types = {}
    for column, dtype in inferred.items():
        if dtype.is_null() or frame[column].dtype == object:
            first = frame[column].first_valid_index()
            if first is not None:
                dtype = ibis.memtable(frame.loc[[first], [column]]).schema()[column]
            elif known is not None and column in known:
                dtype = known[column]
            else:
                dtype = idt.string
        types[column] = dtype
    return ibis.schema(types)


def evaluate_rules(rules: Sequence[Rule], table: ir.Table, id_column: str = "customer_id") -> ir.Table:
    """Members of every rule: one ``(customer_id, segment)`` row per customer per rule it satisfies."""
    if id_column not in table.columns:
        raise SchemaError(f"rule segments need an id column {id_column!r}; the table has {table.columns}")
    seen: set[str] = set()
    parts = []
    for rule in rules:
        if rule.name in seen:
            raise RuleError(rule.name, "segment is defined twice")
        seen.add(rule.name)
        members = table.filter(rule.to_ibis(table))
        parts.append(
            members.select(
                customer_id=members[id_column],
                segment=ibis.literal(rule.name, type="string"),
            )
        )
    if not parts:
        return table.select(customer_id=table[id_column], segment=ibis.literal("", type="string")).limit(0)
    return ibis.union(*parts, distinct=False) if len(parts) > 1 else parts[0]


# ---------------------------------------------------------------------------------------------
# compilation: text -> checked tokens -> sqlglot tree -> typed tree of Ibis builders

_NO_VALUE = object()

Builder = Callable[[ir.Table], ir.Value]


@dataclass(frozen=True)
class _Typed:
    """One checked sub-expression: its kind, how to build it in Ibis and its source text."""

    kind: str  # number, string, boolean, date, timestamp, null, other
    build: Builder
    text: str
    columns: frozenset[str] = frozenset()
    value: Any = _NO_VALUE  # the Python value of a literal

    @property
    def is_literal(self) -> bool:
        return self.value is not _NO_VALUE

    def describe(self) -> str:
        return f"{self.text} ({self.kind})"


def _kind(dtype: idt.DataType) -> str:
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_string():
        return "string"
    if dtype.is_date():
        return "date"
    if dtype.is_timestamp():
        return "timestamp"
    return "other"


def _compile(name: str, expression: str, schema: ibis.Schema) -> _Typed:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RuleError(
            str(name),
            "segment names must be lower snake case: a letter, then letters, digits or '_' "
            "(at most 63 characters)",
        )
    if not isinstance(expression, str):
        raise RuleError(name, f"the expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise RuleError(
            name, f"expression is too long ({len(expression)} characters; at most {MAX_EXPRESSION_LENGTH})"
        )
    if not expression.strip():
        raise RuleError(name, "expression is empty")
    tokens = _tokenize(name, expression)
    tree = _parse(name, expression, tokens)
    _check_depth(name, tree)
    typed = _Checker(name, schema).check(tree)
    if typed.kind != "boolean":
        raise RuleError(name, f"the expression must be a condition (true/false), got {typed.describe()}")
    if not typed.columns:
        raise RuleError(name, "the expression reads no profile column")
    _check_function_names(name, tokens)
    return typed


def _tokenize(name: str, expression: str) -> list[Token]:
    try:
        tokens = _DIALECT.tokenize(expression)
    except TokenError:
        raise RuleError(
            name, "syntax error: unterminated string or quoted name, or invalid character"
        ) from None
    if not tokens:
        raise RuleError(name, "expression is empty")
    depth = 0
    for i, token in enumerate(tokens):
        if token.comments:
            raise RuleError(name, "comments ('--', '/* */') are not allowed")
        kind = token.token_type
        if kind == TokenType.SEMICOLON:
            raise RuleError(name, "';' is not allowed: an expression is a single condition, not statements")
        if kind in (TokenType.PLACEHOLDER, TokenType.PARAMETER) or (
            kind == TokenType.COLON and i + 1 < len(tokens) and tokens[i + 1].token_type == TokenType.VAR
        ):
            raise RuleError(name, f"parameters and placeholders are not allowed (near column {token.col})")
        if kind == TokenType.L_PAREN:
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                raise RuleError(
                    name, f"expression is nested too deeply (more than {MAX_PAREN_DEPTH} parentheses)"
                )
        elif kind == TokenType.R_PAREN:
            depth -= 1
        if kind in (TokenType.VAR, TokenType.IDENTIFIER) and token.text.lower() in FUNCTIONS:
            _check_arity(name, tokens, i)
    return tokens


def _calls(tokens: list[Token]) -> Iterator[tuple[int, str]]:
    """(index, lower-case name) of every name token directly followed by '('."""
    for i, token in enumerate(tokens[:-1]):
        if (
            token.token_type in (TokenType.VAR, TokenType.IDENTIFIER)
            and tokens[i + 1].token_type == TokenType.L_PAREN
        ):
            yield i, token.text.lower()


def _check_arity(name: str, tokens: list[Token], i: int) -> None:
    """Count the top-level arguments of the allowed function called at token ``i``."""
    if i + 1 >= len(tokens) or tokens[i + 1].token_type != TokenType.L_PAREN:
        return
    function = tokens[i].text.lower()
    depth, commas, empty = 0, 0, True
    for token in tokens[i + 1 :]:
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
            if depth == 1:
                continue
        elif kind == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                break
        elif kind == TokenType.COMMA and depth == 1:
            commas += 1
        empty = False
    else:
        return  # unbalanced: the parser reports it
    count = 0 if empty and commas == 0 else commas + 1
    low, high = FUNCTIONS[function]
    if count < low or (high is not None and count > high):
        if high is None:
            wanted = f"at least {low} arguments"
        elif low == high:
            wanted = f"exactly {low} argument" + ("s" if low != 1 else "")
        else:
            wanted = f"{low} to {high} arguments"
        raise RuleError(name, f"function {function}() takes {wanted}, got {count}")


def _check_function_names(name: str, tokens: list[Token]) -> None:
    """Second line of defence: every call written in the text names an allowed function (no
    alias that sqlglot would map onto an allowed node, such as nvl or char_length)."""
    for _, function in _calls(tokens):
        if function not in FUNCTIONS:
            raise RuleError(name, _function_not_allowed(function))


def _function_not_allowed(function: str) -> str:
    return f"function {function}() is not allowed; allowed functions: {', '.join(sorted(FUNCTIONS))}"


_SQLGLOT_CLASS = re.compile(r"<class 'sqlglot\.[\w.]*?(\w+)'>")


def _parse(name: str, expression: str, tokens: list[Token]) -> exp.Expression:
    try:
        trees = _DIALECT.parser().parse(tokens, expression)
    except ParseError as error:
        detail = error.errors[0] if error.errors else {}
        description = _SQLGLOT_CLASS.sub(r"\1", str(detail.get("description") or error).splitlines()[0])
        where = f" at column {detail['col']}" if detail.get("col") else ""
        raise RuleError(name, f"syntax error{where}: {description}") from None
    except RecursionError:
        raise RuleError(name, "expression is nested too deeply") from None
    except SqlglotError as error:
        raise RuleError(name, f"syntax error: {str(error).splitlines()[0]}") from None
    trees = [tree for tree in trees if tree is not None]
    if len(trees) != 1:
        raise RuleError(name, "an expression must be exactly one condition")
    return trees[0]


def _check_depth(name: str, tree: exp.Expression) -> None:
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise RuleError(name, f"expression is nested too deeply (more than {MAX_AST_DEPTH} levels)")
        for child in node.iter_expressions():
            stack.append((child, depth + 1))


_COMPARISONS: dict[type[exp.Expression], tuple[str, Callable[[Any, Any], Any]]] = {
    exp.EQ: ("=", lambda a, b: a == b),
    exp.NEQ: ("!=", lambda a, b: a != b),
    exp.LT: ("<", lambda a, b: a < b),
    exp.LTE: ("<=", lambda a, b: a <= b),
    exp.GT: (">", lambda a, b: a > b),
    exp.GTE: (">=", lambda a, b: a >= b),
}
_ARITHMETIC: dict[type[exp.Expression], tuple[str, Callable[[Any, Any], Any]]] = {
    exp.Add: ("+", lambda a, b: a + b),
    exp.Sub: ("-", lambda a, b: a - b),
    exp.Mul: ("*", lambda a, b: a * b),
    exp.Div: ("/", lambda a, b: a / b),
}
_SUBQUERIES = (exp.Select, exp.Subquery, exp.Union, exp.Intersect, exp.Except, exp.Exists, exp.Query)
_ORDERED = ("number", "string", "boolean", "date", "timestamp")


class _Checker:
    """Walks a sqlglot tree with an explicit allow-list of node types, checking columns and
    types, and returns a ``_Typed`` whose builder makes the Ibis expression."""

    def __init__(self, name: str, schema: ibis.Schema) -> None:
        self.name = name
        self.schema = schema
        self.kinds = {column: _kind(dtype) for column, dtype in schema.items()}

    def fail(self, message: str, column: str | None = None) -> RuleError:
        return RuleError(self.name, message, column=column)

    # -- dispatch ----------------------------------------------------------------------------
    def check(self, node: exp.Expression) -> _Typed:
        kind = type(node)  # exact types only: a subclass is not implicitly allowed
        if kind is exp.Paren:
            self._only(node, "this")
            inner = self.check(node.this)
            return _Typed(inner.kind, inner.build, f"({inner.text})", inner.columns, inner.value)
        if kind is exp.Column:
            return self._column(node)
        if kind in (exp.Literal, exp.Boolean, exp.Null):
            return self._literal(node)
        if kind is exp.Cast:
            return self._cast(node)
        if kind in (exp.And, exp.Or):
            return self._logical(node)
        if kind is exp.Not:
            return self._not(node)
        if kind in _COMPARISONS:
            return self._comparison(node)
        if kind is exp.Between:
            return self._between(node)
        if kind is exp.In:
            return self._in(node)
        if kind is exp.Is:
            return self._is(node)
        if kind in (exp.Like, exp.ILike):
            return self._like(node)
        if kind in _ARITHMETIC:
            return self._arithmetic(node)
        if kind is exp.Neg:
            return self._neg(node)
        if kind in _FUNCTION_NODES:
            return self._function(node)
        raise self.fail(self._rejection(node))

    def _rejection(self, node: exp.Expression) -> str:
        text = _snippet(node)
        if isinstance(node, _SUBQUERIES) or node.find(exp.Select) is not None:
            return f"queries, subqueries and set operations are not allowed ({text})"
        if isinstance(node, exp.Star):
            return "'*' is not allowed: name profile columns"
        if isinstance(node, exp.Window):
            return f"window functions are not allowed ({text})"
        if isinstance(node, exp.AggFunc):
            return f"aggregate function {_function_name(node)}() is not allowed"
        if isinstance(node, exp.Cast):  # TryCast and friends
            return f"casts are not allowed ({text}); only date '...' and timestamp '...' literals"
        if isinstance(node, (exp.Placeholder, exp.Parameter)):
            return f"parameters and placeholders are not allowed ({text})"
        if isinstance(node, (exp.Func, exp.Anonymous)):
            return _function_not_allowed(_function_name(node))
        if isinstance(node, exp.Table):
            return f"table access is not allowed ({text})"
        return f"{text!r} is not allowed here ({type(node).__name__} is not part of the rule grammar)"

    def _only(self, node: exp.Expression, *allowed: str) -> None:
        """Reject a node that carries arguments other than ``allowed`` (e.g. ESCAPE, SYMMETRIC)."""
        extra = [
            key for key, value in node.args.items() if key not in allowed and value not in (None, [], False)
        ]
        for key in extra:
            value = node.args[key]
            if isinstance(value, exp.Expression) and (
                isinstance(value, _SUBQUERIES) or value.find(exp.Select) is not None
            ):
                raise self.fail(f"queries, subqueries and set operations are not allowed ({_snippet(value)})")
        if extra:
            raise self.fail(f"{_snippet(node)!r}: {', '.join(extra)} is not allowed here")

    # -- leaves ------------------------------------------------------------------------------
    def _column(self, node: exp.Column) -> _Typed:
        if not isinstance(node.this, exp.Identifier):
            raise self.fail(self._rejection(node.this))
        if any(node.args.get(part) for part in ("table", "db", "catalog")):
            raise self.fail(
                f"table-qualified column {node.sql(dialect='duckdb')!r} is not allowed; "
                "rules read profile columns by name only"
            )
        self._only(node, "this")
        identifier: exp.Identifier = node.this
        written = identifier.this
        column = self._resolve(written, quoted=bool(identifier.args.get("quoted")))
        kind = self.kinds[column]
        return _Typed(kind, lambda t: t[column], column, frozenset({column}))

    def _resolve(self, written: str, quoted: bool) -> str:
        if written in self.kinds:
            return written
        if not quoted:
            folded = [c for c in self.kinds if c.lower() == written.lower()]
            if len(folded) == 1:
                return folded[0]
        close = difflib.get_close_matches(written, list(self.kinds), n=3, cutoff=0.6)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
        else:
            known = sorted(self.kinds)
            listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
            hint = f"no similar column (known columns: {listed})"
        raise self.fail(f"unknown column {written!r}; {hint}", column=written)

    def _literal(self, node: exp.Expression) -> _Typed:
        text = node.sql(dialect="duckdb")
        if type(node) is exp.Null:
            return _Typed("null", lambda t: ibis.null(), "NULL", value=None)
        if type(node) is exp.Boolean:
            self._only(node, "this")
            value = bool(node.this)
            return _literal("boolean", value, text)
        self._only(node, "this", "is_string")
        if node.is_string:
            return _literal("string", node.this, text)
        return _literal("number", self._number(node.this), text)

    def _number(self, text: str) -> int | float:
        try:
            value: int | float = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise self.fail(f"invalid number {text!r}") from None
        if (
            isinstance(value, float)
            and not math.isfinite(value)
            or (isinstance(value, int) and not -(2**63) <= value < 2**63)
        ):
            raise self.fail(f"number {text} is out of range")
        return value

    def _cast(self, node: exp.Cast) -> _Typed:
        """Only a string literal cast to a date or timestamp: ``date '2025-01-01'``."""
        self._only(node, "this", "to", "_type")
        target = node.args.get("to")
        literal = node.this
        if (
            type(literal) is not exp.Literal
            or not literal.is_string
            or not isinstance(target, exp.DataType)
            or target.expressions
            or target.this not in _DATE_TYPES
        ):
            raise self.fail(
                f"casts are not allowed ({_snippet(node)}); only date '...' and timestamp '...' literals"
            )
        kind = _DATE_TYPES[target.this]
        return self._temporal(literal.this, kind, node.sql(dialect="duckdb"))

    def _temporal(self, text: str, kind: str, source: str) -> _Typed:
        try:
            value = dt.date.fromisoformat(text) if kind == "date" else dt.datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"invalid {kind} literal {source}: expected ISO format like 2025-01-31") from None
        return _literal(kind, value, source)

    # -- conditions --------------------------------------------------------------------------
    def _condition(self, typed: _Typed, operator: str) -> _Typed:
        if typed.kind != "boolean":
            raise self.fail(f"'{operator}' needs conditions (true/false), got {typed.describe()}")
        return typed

    def _logical(self, node: exp.Expression) -> _Typed:
        self._only(node, "this", "expression")
        operator = "and" if type(node) is exp.And else "or"
        left = self._condition(self.check(node.this), operator)
        right = self._condition(self.check(node.expression), operator)
        if operator == "and":
            return _combine("boolean", (left, right), f"{left.text} AND {right.text}", lambda a, b: a & b)
        return _combine("boolean", (left, right), f"{left.text} OR {right.text}", lambda a, b: a | b)

    def _not(self, node: exp.Not) -> _Typed:
        self._only(node, "this")
        inner = self._condition(self.check(node.this), "not")
        return _combine("boolean", (inner,), f"NOT {inner.text}", lambda a: ~a)

    def _comparison(self, node: exp.Expression) -> _Typed:
        self._only(node, "this", "expression")
        symbol, operation = _COMPARISONS[type(node)]
        operands = self._unify([self.check(node.this), self.check(node.expression)], f"'{symbol}'")
        left, right = operands
        return _combine("boolean", operands, f"{left.text} {symbol} {right.text}", operation)

    def _between(self, node: exp.Between) -> _Typed:
        self._only(node, "this", "low", "high")
        operands = self._unify(
            [self.check(node.this), self.check(node.args["low"]), self.check(node.args["high"])], "'between'"
        )
        value, low, high = operands
        return _combine(
            "boolean",
            operands,
            f"{value.text} BETWEEN {low.text} AND {high.text}",
            lambda v, lo, hi: v.between(lo, hi),
        )

    def _in(self, node: exp.In) -> _Typed:
        self._only(node, "this", "expressions")
        if not node.expressions:
            raise self.fail("'in' needs a non-empty list of literals, e.g. gender in ('F', 'X')")
        value = self.check(node.this)
        items = [self.check(item) for item in node.expressions]
        for item in items:
            if not item.is_literal or item.kind == "null":
                raise self.fail(f"'in' takes a list of literal values, got {item.describe()}")
        value, *items = self._unify([value, *items], "'in'")
        values = [item.value for item in items]
        text = f"{value.text} IN ({', '.join(item.text for item in items)})"
        build = value.build
        return _Typed("boolean", lambda t: build(t).isin(values), text, value.columns)

    def _is(self, node: exp.Is) -> _Typed:
        self._only(node, "this", "expression")
        value = self.check(node.this)
        target = node.expression
        build = value.build
        if type(target) is exp.Null:
            return _Typed("boolean", lambda t: build(t).isnull(), f"{value.text} IS NULL", value.columns)
        if type(target) is exp.Boolean:
            self._condition(value, "is")
            if target.this:
                return _Typed(
                    "boolean", lambda t: build(t).fill_null(False), f"{value.text} IS TRUE", value.columns
                )
            return _Typed(
                "boolean", lambda t: (~build(t)).fill_null(False), f"{value.text} IS FALSE", value.columns
            )
        raise self.fail(f"'is' must be followed by null, true or false, got {_snippet(target)!r}")

    def _like(self, node: exp.Expression) -> _Typed:
        self._only(node, "this", "expression", "negate")
        operator = "like" if type(node) is exp.Like else "ilike"
        value = self.check(node.this)
        pattern = self.check(node.expression)
        if value.kind != "string":
            raise self.fail(f"'{operator}' needs a string, got {value.describe()}")
        if not (pattern.is_literal and pattern.kind == "string"):
            raise self.fail(f"'{operator}' needs a literal pattern like 'garden%', got {pattern.describe()}")
        build, text = value.build, pattern.value
        method = "like" if operator == "like" else "ilike"
        keyword = operator.upper()
        if node.args.get("negate"):
            return _Typed(
                "boolean",
                lambda t: ~getattr(build(t), method)(text),
                f"{value.text} NOT {keyword} {pattern.text}",
                value.columns,
            )
        return _Typed(
            "boolean",
            lambda t: getattr(build(t), method)(text),
            f"{value.text} {keyword} {pattern.text}",
            value.columns,
        )

    # -- arithmetic and functions ------------------------------------------------------------
    def _number_operand(self, typed: _Typed, operator: str) -> _Typed:
        if typed.kind != "number":
            raise self.fail(f"'{operator}' needs numbers, got {typed.describe()}")
        return typed

    def _arithmetic(self, node: exp.Expression) -> _Typed:
        self._only(node, "this", "expression", "typed", "safe")
        symbol, operation = _ARITHMETIC[type(node)]
        left = self._number_operand(self.check(node.this), symbol)
        right = self._number_operand(self.check(node.expression), symbol)
        return _combine("number", (left, right), f"{left.text} {symbol} {right.text}", operation)

    def _neg(self, node: exp.Neg) -> _Typed:
        self._only(node, "this")
        inner = self._number_operand(self.check(node.this), "-")
        if inner.is_literal:
            return _literal("number", -inner.value, f"-{inner.text}")
        return _combine("number", (inner,), f"-{inner.text}", lambda a: -a)

    def _function(self, node: exp.Expression) -> _Typed:
        function, allowed = _FUNCTION_NODES[type(node)]
        self._only(node, *allowed)
        args = [self.check(arg) for arg in _function_args(node)]
        low, high = FUNCTIONS[function]
        if len(args) < low or (high is not None and len(args) > high):
            raise self.fail(f"function {function}() takes {low}..{high or 'n'} arguments, got {len(args)}")
        text = f"{function}({', '.join(a.text for a in args)})"
        if function in ("abs", "round"):
            value = self._number_operand(args[0], f"{function}()")
            if function == "abs":
                return _combine("number", (value,), text, lambda a: a.abs())
            digits = 0
            if len(args) == 2:
                if not (args[1].is_literal and isinstance(args[1].value, int)):
                    raise self.fail(f"round() digits must be an integer literal, got {args[1].describe()}")
                digits = args[1].value
            return _combine("number", (value,), text, lambda a: a.round(digits))
        if function in ("lower", "upper", "length"):
            if args[0].kind != "string":
                raise self.fail(f"function {function}() needs a string, got {args[0].describe()}")
            if function == "length":
                return _combine("number", args, text, lambda a: a.length())
            return _combine(
                "string", args, text, (lambda a: a.lower()) if function == "lower" else (lambda a: a.upper())
            )
        # coalesce, least, greatest
        args = self._unify(args, f"{function}()")
        combine = {"coalesce": ibis.coalesce, "least": ibis.least, "greatest": ibis.greatest}[function]
        return _combine(args[0].kind, args, text, lambda *values: combine(*values))

    # -- types -------------------------------------------------------------------------------
    def _unify(self, operands: list[_Typed], operator: str) -> list[_Typed]:
        """Make operands comparable, or fail naming the operator and the mismatched operands."""
        for operand in operands:
            if operand.kind == "null":
                raise self.fail(
                    f"{operator} cannot take NULL (the result would never be true); use 'is null' / 'is not null'"
                )
            if operand.kind == "other":
                raise self.fail(f"{operator} cannot use {operand.text}: its type is not supported in rules")
        kinds = {operand.kind for operand in operands}
        temporal = kinds & {"date", "timestamp"}
        if temporal:
            target = "timestamp" if "timestamp" in temporal else "date"
            converted = []
            for operand in operands:
                if operand.kind == "string" and operand.is_literal:
                    operand = self._temporal(operand.value, target, operand.text)
                elif operand.kind == "date" and target == "timestamp":
                    operand = _as_timestamp(operand)
                converted.append(operand)
            operands = converted
            kinds = {operand.kind for operand in operands}
        if len(kinds) > 1 or not kinds <= set(_ORDERED):
            first = operands[0]
            other = next(operand for operand in operands if operand.kind != first.kind)
            raise self.fail(
                f"{operator} needs operands of the same type, got {first.describe()} and {other.describe()}"
            )
        return operands


_DATE_TYPES = {
    exp.DataType.Type.DATE: "date",
    exp.DataType.Type.TIMESTAMP: "timestamp",
    exp.DataType.Type.TIMESTAMPNTZ: "timestamp",
    exp.DataType.Type.DATETIME: "timestamp",
}

#: Allowed function nodes: the function's name and the node arguments it may carry.
_FUNCTION_NODES: dict[type[exp.Expression], tuple[str, tuple[str, ...]]] = {
    exp.Abs: ("abs", ("this",)),
    exp.Coalesce: ("coalesce", ("this", "expressions")),
    exp.Lower: ("lower", ("this",)),
    exp.Upper: ("upper", ("this",)),
    exp.Length: ("length", ("this",)),
    exp.Least: ("least", ("this", "expressions", "ignore_nulls")),
    exp.Greatest: ("greatest", ("this", "expressions", "ignore_nulls")),
    exp.Round: ("round", ("this", "decimals")),
}


def _function_args(node: exp.Expression) -> list[exp.Expression]:
    args = [node.this]
    if node.args.get("decimals") is not None:
        args.append(node.args["decimals"])
    args.extend(node.expressions)
    return [arg for arg in args if arg is not None]


def _function_name(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Window):
        return _function_name(node.this)
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def _snippet(node: exp.Expression, limit: int = 60) -> str:
    try:
        text = node.sql(dialect="duckdb")
    except Exception:  # a node sqlglot cannot print: name it by type
        text = type(node).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _literal(kind: str, value: Any, text: str) -> _Typed:
    ibis_type = {
        "number": "int64" if isinstance(value, int) else "float64",
        "string": "string",
        "boolean": "boolean",
        "date": "date",
        "timestamp": "timestamp",
    }[kind]
    return _Typed(kind, lambda t: ibis.literal(value, type=ibis_type), text, value=value)


def _as_timestamp(operand: _Typed) -> _Typed:
    if operand.is_literal:
        value = dt.datetime.combine(operand.value, dt.time())
        return _literal("timestamp", value, operand.text)
    build = operand.build
    return _Typed("timestamp", lambda t: build(t).cast("timestamp"), operand.text, operand.columns)


def _combine(kind: str, operands: Sequence[_Typed], text: str, operation: Callable[..., Any]) -> _Typed:
    builders = [operand.build for operand in operands]
    columns = frozenset().union(*(operand.columns for operand in operands))
    return _Typed(kind, lambda t: operation(*(build(t) for build in builders)), text, columns)

"""Persona statistics computed by the engine: the aggregates every segment card is written from.

A run describes every segment of every layer (``microseg.segments.segmentation``). The cards
need, per segment, only sums, counts and medians of the members' profile: sizes and revenue,
the count, sum, sum of squares, least and greatest value of every numeric feature, the spend
and spend shares per category, member counts per stage, gender, region, country and banded
attribute, and the median CLV. Here the engine computes them for all layers at once from the
run's per-customer table, so the profile is never held as arrays (``personas.persona_context``
does that for a profile given as a DataFrame); the cards are then written from the aggregates
alone (``personas.cards_of``), the same way for either source.

Each layer is grouped by ``(scope, segment)``: the scope is the set of customers a segment is
compared with, all customers for most layers, the stage for the layers clustered within stages
(``behaviour``, ``micro``), the segment itself for layers whose segments overlap (``composite``,
``rule``). One scan serves every layer (``GROUPING SETS``). Numeric features are summed as
differences from their mean over all customers, so that variances keep their precision
whatever a feature's scale, and every sum is taken over fixed-point decimals with more
digits than a float carries: sums do not depend on the order rows reach the engine, so a
run stores the same cards however its tables were built.

>>> import ibis
>>> con = ibis.duckdb.connect()
>>> customers = con.create_table("c", ibis.memtable({"customer": [0, 1, 2, 3],
...     "stage": ["active", "active", "new", "new"], "revenue": [10.0, 30.0, 5.0, None],
...     "orders": [1, 3, 1, 1]}))
>>> spend = con.create_table("s", ibis.memtable({"customer": [0, 1, 2],
...     "category": ["garden", "garden", "toys"], "spend": [10.0, 30.0, 5.0]}))
>>> context, layers = PersonaStatistics(customers, spend).layers({"lifecycle": ("stage", None)})
>>> stages = layers[("lifecycle", ALL)]
>>> sorted(zip(stages.segment_ids, stages.sizes.tolist()))
[('active', 2), ('new', 2)]
>>> float(stages.stats.column(context, "orders")[stages.segment_ids.index("active")])
2.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from microseg.segments.personas import (
    CATEGORY_PREFIX,
    CardColumns,
    LayerStats,
    PersonaContext,
    _Stats,
)
from microseg.warehouse.duckdb import quote_ident

#: Scope of the segments of a layer over all customers.
ALL = "all"
#: Digits of a value summed as a fixed-point decimal: 18 (a 64-bit integer) keep as many
#: significant digits as a float; squares, whose sizes span twice the range, get 38 (the
#: widest) less ``HEADROOM`` for the sum's own growth (up to 10^9 customers). The engine adds
#: them up exactly.
DIGITS, WIDE, HEADROOM = 18, 38, 9


def _exact_sum(value: str, magnitude: float, wide: bool = False) -> str:
    """SQL of the sum of ``value`` (a float expression whose values are at most ``magnitude``
    in size) taken over decimals: exact, so independent of the order of the rows. A float sum
    where the values are too large for the decimals (then the last digits may vary)."""
    if not math.isfinite(magnitude):
        return f"sum({value})"
    whole = max(math.floor(math.log10(magnitude)) + 1, 1) if magnitude > 0 else 1
    digits = WIDE if wide else DIGITS
    scale = (WIDE - HEADROOM if wide else DIGITS) - whole
    if scale < 0:
        return f"sum({value})"
    return f"CAST(sum(CAST({value} AS DECIMAL({digits}, {scale}))) AS DOUBLE)"


def _number(value: ir.Value) -> ir.FloatingValue:
    """A column as a float, NaN as missing (what the cards average)."""
    kind = value.type()
    if kind.is_string():
        value = value.try_cast("float64")
    elif kind.is_boolean() or kind.is_numeric():
        value = value.cast("float64")
    else:
        return ibis.null("float64")
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value)


class _Dialect:
    """What differs between the engines' SQL here: quoting, the grouping-set id, unpivoting,
    and how a result is read."""

    def __init__(self, backend) -> None:
        self.spark = backend.name == "pyspark"
        self.backend = backend

    def quote(self, name: str) -> str:
        return f"`{name}`" if self.spark else quote_ident(name)

    def grouping(self, keys: str) -> str:
        return f"grouping_id({keys})" if self.spark else f"GROUPING({keys})"

    def unpivot(self, relation: str, columns: list[str], name: str, value: str) -> str:
        """``relation`` with one row per non-null value of ``columns``: ``name`` says which."""
        listed = ", ".join(self.quote(c) for c in columns)
        if self.spark:
            return f"(SELECT * FROM {relation} UNPIVOT ({value} FOR {name} IN ({listed})))"
        return f"(UNPIVOT {relation} ON {listed} INTO NAME {name} VALUE {value})"

    def fetch(self, sql: str) -> pd.DataFrame:
        if self.spark:
            return self.backend._session.sql(sql).toPandas()
        return self.backend.con.execute(sql).df()


class _Sets:
    """The grouping sets of one query: per layer, its key columns; ``GROUPING(keys)`` tells
    which set a result row belongs to."""

    def __init__(self, sets: dict[Any, list[str]]) -> None:
        # every key column, in order of first use (the order Spark's grouping id follows)
        self.keys = list(dict.fromkeys(k for columns in sets.values() for k in columns))
        self.sets = sets

    def sql(self, dialect: _Dialect, table: str, aggregates: list[str]) -> str:
        keys = ", ".join(dialect.quote(k) for k in self.keys)
        sets = ", ".join("(" + ", ".join(dialect.quote(k) for k in s) + ")" for s in self.sets.values())
        return (
            f"SELECT {dialect.grouping(keys)} AS __set, {keys}, {', '.join(aggregates)} FROM {table} "
            f"GROUP BY GROUPING SETS ({sets})"
        )

    def rows(self, result: pd.DataFrame) -> dict[Any, pd.DataFrame]:
        """The result rows of each set."""
        out = {}
        for name, columns in self.sets.items():
            bits = sum(1 << (len(self.keys) - 1 - i) for i, k in enumerate(self.keys) if k not in columns)
            out[name] = result[result["__set"] == bits]
        return out


class PersonaStatistics:
    """The per-segment aggregates of a run's layers, computed by the engine (DuckDB).

    ``customers`` has one row per customer: ``customer`` (a number), the profile and value
    columns, ``stage`` and the column of every layer described; ``spend`` is
    ``customer, category, spend`` (each customer's spend per product category); ``attributes``
    are the declared attributes (``microseg.config.AttributeConfig`` by name).
    """

    def __init__(
        self, customers: ir.Table, spend: ir.Table | None = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        columns = set(customers.columns)
        read = CardColumns.of(columns, attributes)  # what the cards read, as from a DataFrame
        self.attributes, self.feature_names, self.numeric = read.declared, read.features, read.averaged
        self.present = [j for j, c in enumerate(self.numeric) if c in columns]
        self.mix_columns = read.mixes
        self.customers = customers
        self.spend = spend
        self.dialect = _Dialect(customers._find_backend())

    def layers(
        self, layers: Mapping[str, tuple[str, str | None]], members: ir.Table | None = None
    ) -> tuple[PersonaContext, dict[tuple[str, str], LayerStats]]:
        """The aggregates of every segment, by (layer, scope).

        ``layers`` maps a layer to the column of its segment ids and its scope (None: all
        customers; ``"stage"``: each stage); ``members`` (``customer, kind, segment_id``) lists
        the members of the layers whose segments overlap (each segment is its own scope)."""
        narrow, spend = self._narrow([column for column, _ in layers.values()])
        kept = [narrow.cache()]  # every query below reads them: computed once
        if spend is not None:
            kept.append(spend.cache())
        try:
            t = kept[0].get_name()
            s = kept[1].get_name() if spend is not None else None
            m = None
            if members is not None:
                m = members.select("customer", "kind", segment_id=members.segment_id.cast("string")).cache()
                kept.append(m)
            centers, largest = self._centers(t)
            parts = self._query(layers, t, s, m.get_name() if m is not None else None, centers, largest)
        finally:
            for table in kept:
                table.release()
        numeric, categories, mixes = parts
        # segments in a fixed order: what is added up over them does not depend on the engine's
        numeric = numeric.sort_values(["kind", "scope", "segment_id"], ignore_index=True)
        names = sorted(set(categories["category"])) if len(categories) else []
        context = self._context(centers, names)
        spent = dict(iter(categories.groupby(["kind", "scope"], sort=False)))
        counted = dict(iter(mixes.groupby(["kind", "scope"], sort=False)))
        out = {}
        for (kind, scope), rows in numeric.groupby(["kind", "scope"], sort=False):
            out[(kind, scope)] = self._layer(
                context,
                rows.reset_index(drop=True),
                spent.get((kind, scope), categories.iloc[:0]),
                counted.get((kind, scope), mixes.iloc[:0]),
            )
        return context, out

    # -- the queries -----------------------------------------------------------------------
    def _narrow(self, layer_columns: list[str]) -> tuple[ir.Table, ir.Table | None]:
        """The customers with only what the aggregates read (``__x<j>``: numeric column ``j``
        as a float; ``__m_<column>``: a mix column as text), and the spend lines with each
        customer's share of spend."""
        t, spend = self.customers, self.spend
        if spend is not None:
            given = spend.share if "share" in spend.columns else None
            spend = spend.select(
                "customer",
                category=spend.category.cast("string").fill_null("unknown"),
                spend=_number(spend.spend).fill_null(0.0),
                given=_number(given) if given is not None else ibis.null("float64"),
            )
            # spend is money: its decimal total is exact
            totals = spend.group_by("customer").aggregate(
                spend_total=spend.spend.cast("decimal(38, 4)").sum()
            )
            spend = spend.join(totals, "customer")
            total = spend.spend_total.cast("float64")
            share = spend.given.fill_null(spend.spend / total) if given is not None else spend.spend / total
            share = ibis.ifelse(spend.spend_total > 0, share, ibis.null("float64"))
            spend = spend.select("customer", "category", "spend", share=share)
            t = t.left_join(totals, "customer").drop("customer_right")
            spender = (t.spend_total > 0).fill_null(False)
        else:
            spender = ibis.literal(False)
        columns = t.columns
        narrow = t.select(
            "customer",
            *dict.fromkeys(c for c in ("stage", *layer_columns) if c in columns),
            **{f"__x{j}": _number(t[self.numeric[j]]) for j in self.present},
            # money: a decimal, summed exactly
            __revenue=_number(t.revenue).fill_null(0.0).cast("decimal(38, 4)")
            if "revenue" in columns
            else ibis.literal(0, type="decimal(38, 4)"),
            __clv=_number(t.clv) if "clv" in columns else ibis.null("float64"),
            __spender=spender.cast("int64"),
            __once=(t.transactions == 1).fill_null(False).cast("int64")
            if "transactions" in columns
            else ibis.literal(0, type="int64"),
            **{
                f"__m_{c}": t[c].cast("string") if missing is None else t[c].cast("string").fill_null(missing)
                for c, missing in self.mix_columns.items()
            },
        )
        return narrow, spend

    def _fetch(self, sql: str) -> pd.DataFrame:
        return self.dialect.fetch(sql)

    def _centers(self, t: str) -> tuple[np.ndarray, np.ndarray]:
        """The mean of every numeric column over all customers (0 where none is known), and the
        largest size of the column's values."""
        centers, largest = np.zeros(len(self.numeric)), np.zeros(len(self.numeric))
        if not self.present:
            return centers, largest
        row = self._fetch(f"SELECT {', '.join(f'max(abs(__x{j}))' for j in self.present)} FROM {t}").iloc[0]
        for i, j in enumerate(self.present):
            largest[j] = 0.0 if pd.isna(row.iloc[i]) else float(row.iloc[i])
        means = [f"{_exact_sum(f'__x{j}', largest[j])} / nullif(count(__x{j}), 0)" for j in self.present]
        row = self._fetch(f"SELECT {', '.join(means)} FROM {t}").iloc[0]
        for i, j in enumerate(self.present):
            centers[j] = 0.0 if pd.isna(row.iloc[i]) else float(row.iloc[i])
        return centers, largest

    def _numeric_aggregates(self, centers: np.ndarray, largest: np.ndarray) -> list[str]:
        out = [
            "count(*) AS size",
            "CAST(sum(__revenue) AS DOUBLE) AS revenue",
            "median(__clv) AS median_clv",
            "sum(__spender) AS spenders",
            "sum(__once) AS once",
        ]
        for j in self.present:
            d = f"(__x{j} - {float(centers[j])!r})"
            spread = largest[j] + abs(centers[j])  # the largest size of a difference
            out += [
                f"count(__x{j}) AS n{j}",
                f"{_exact_sum(d, spread)} AS s{j}",
                f"{_exact_sum(f'{d} * {d}', spread * spread, wide=True)} AS q{j}",
                f"min(__x{j}) AS lo{j}",
                f"max(__x{j}) AS hi{j}",
            ]
        return out

    def _query(
        self,
        layers: Mapping[str, tuple[str, str | None]],
        t: str,
        s: str | None,
        m: str | None,
        centers: np.ndarray,
        largest: np.ndarray,
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(kind, scope, segment_id, ...) rows: the numeric aggregates, the spend per category
        and the member counts per value of each mix column."""
        numeric = self._numeric_aggregates(centers, largest)
        scoped = {k: ([c] if scope is None else ["stage", c]) for k, (c, scope) in layers.items()}
        keys = list(dict.fromkeys(k for columns in scoped.values() for k in columns))

        def tagged(result: pd.DataFrame, sets: _Sets, drop: list[str]) -> pd.DataFrame:
            """The rows of every set with the layer, scope and segment they describe."""
            frames = []
            for name, rows in sets.rows(result).items():
                kind = name
                segment_column, scope = layers[kind]
                rows = rows[rows[segment_column].notnull()]
                frame = rows.drop(columns=["__set", *drop]).assign(
                    kind=kind,
                    scope=rows["stage"].astype(str) if scope == "stage" else ALL,
                    segment_id=rows[segment_column].astype(str),
                )
                frames.append(frame)
            return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

        by_layer = _Sets(scoped)
        dialect = self.dialect
        results = [tagged(self._fetch(by_layer.sql(dialect, t, numeric)), by_layer, keys)]
        mixes, categories = [], []
        if self.mix_columns:
            # one row per customer and known value of a mix column (UNPIVOT leaves missing ones out)
            values = [f"__m_{c}" for c in self.mix_columns]
            selected = ", ".join(dialect.quote(c) for c in (*keys, *values))
            long = dialect.unpivot(f"(SELECT {selected} FROM {t})", values, "__column", "__value")
            by_value = _Sets({k: [*c, "__column", "__value"] for k, c in scoped.items()})
            counts = tagged(self._fetch(by_value.sql(dialect, long, ["count(*) AS n"])), by_value, keys)
            prefix = len("__m_")
            mixes.append(counts.assign(column=counts["__column"].str[prefix:], value=counts["__value"]))
        if s is not None:
            by_category = _Sets({k: [*c, "category"] for k, c in scoped.items()})
            lines = f"(SELECT s.category, s.spend, s.share, t.* FROM {s} s JOIN {t} t USING (customer))"
            sums = [f"{_exact_sum('spend', 1e12)} AS spend", f"{_exact_sum('share', 1.0)} AS share"]
            categories.append(tagged(self._fetch(by_category.sql(dialect, lines, sums)), by_category, keys))
        if m is not None:  # overlapping segments: each is its own scope
            joined = f"(SELECT m.kind, m.segment_id, m.segment_id AS scope, t.* FROM {m} m JOIN {t} t USING (customer))"
            segment = "kind, scope, segment_id"
            results.append(self._fetch(f"SELECT {segment}, {', '.join(numeric)} FROM {joined} GROUP BY ALL"))
            for column in self.mix_columns:
                value = dialect.quote(f"__m_{column}")
                counts = self._fetch(
                    f"SELECT {segment}, {value} AS __value, count(*) AS n "
                    f"FROM {joined} WHERE {value} IS NOT NULL GROUP BY ALL"
                )
                mixes.append(counts.assign(column=column, value=counts["__value"]))
            if s is not None:
                lines = (
                    f"(SELECT m.kind, m.segment_id, m.segment_id AS scope, s.category, s.spend, s.share "
                    f"FROM {m} m JOIN {s} s USING (customer))"
                )
                sums = f"{_exact_sum('spend', 1e12)} AS spend, {_exact_sum('share', 1.0)} AS share"
                categories.append(
                    self._fetch(f"SELECT {segment}, category, {sums} FROM {lines} GROUP BY ALL")
                )
        return (
            pd.concat(results, ignore_index=True),
            _concat(categories, ["kind", "scope", "segment_id", "category", "spend", "share"]),
            _concat(mixes, ["kind", "scope", "segment_id", "column", "value", "n"]),
        )

    # -- from aggregates to what the cards read --------------------------------------------
    def _context(self, centers: np.ndarray, category_names: list[str]) -> PersonaContext:
        """The names the cards read (features, categories, attributes); no per-customer arrays."""
        columns = {c: j for j, c in enumerate(self.numeric + [CATEGORY_PREFIX + c for c in category_names])}
        empty = np.empty((0, len(columns)))
        return PersonaContext(
            index=pd.Index([]),
            feature_names=list(self.feature_names),
            category_names=list(category_names),
            columns=columns,
            center=np.concatenate([centers, np.zeros(len(category_names))]),
            filled=empty,
            known=empty,
            revenue=np.empty(0),
            clv=np.empty(0),
            spend=np.empty((0, len(category_names))),
            codes={c: (np.empty(0, dtype=np.int64), []) for c in self.mix_columns},
            attributes=self.attributes,
        )

    def _layer(
        self, context: PersonaContext, rows: pd.DataFrame, categories: pd.DataFrame, mixes: pd.DataFrame
    ) -> LayerStats:
        ids = rows["segment_id"].tolist()
        k, width, first = len(ids), len(context.columns), len(self.numeric)
        sums, squares, count = np.zeros((k, width)), np.zeros((k, width)), np.zeros((k, width))
        constant = np.zeros(width, dtype=bool)
        for j in self.present:
            count[:, j] = rows[f"n{j}"].to_numpy(float)
            sums[:, j] = rows[f"s{j}"].fillna(0.0).to_numpy(float)
            squares[:, j] = rows[f"q{j}"].fillna(0.0).to_numpy(float)
            constant[j] = rows[f"lo{j}"].min() >= rows[f"hi{j}"].max()
        code = {sid: i for i, sid in enumerate(ids)}
        spend = np.zeros((k, len(context.category_names)))
        if len(categories):
            at = categories["segment_id"].map(code).to_numpy()
            j = np.searchsorted(context.category_names, categories["category"].to_numpy())
            spend[at, j] = categories["spend"].to_numpy(float)
            # a share is known for each member who spent anything (0 in the categories not bought)
            sums[at, first + j] = categories["share"].fillna(0.0).to_numpy(float)
        count[:, first:] = rows["spenders"].to_numpy(float)[:, None]
        mixes_of = {}
        by_column = dict(iter(mixes.groupby("column", sort=False)))
        for column in self.mix_columns:
            part = by_column.get(column, mixes.iloc[:0])
            names = sorted(set(part["value"]))
            table = np.zeros((k, len(names)), dtype=np.int64)
            if len(part):
                at = part["segment_id"].map(code).to_numpy()
                table[at, np.searchsorted(names, part["value"].to_numpy())] = part["n"].to_numpy()
            mixes_of[column] = (table, names)
        return LayerStats(
            segment_ids=ids,
            sizes=rows["size"].to_numpy(np.int64),
            revenue=rows["revenue"].fillna(0.0).to_numpy(float),
            stats=_Stats.from_sums(context.center, sums, squares, count, constant),
            median_clv=rows["median_clv"].to_numpy(float),
            spend=spend,
            mixes=mixes_of,
            once=rows["once"].to_numpy(float),
        )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f[columns] for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)

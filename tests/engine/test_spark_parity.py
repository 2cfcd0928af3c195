"""The same pipeline on DuckDB and Spark gives identical per-customer results."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from microseg.features.summary import customer_summary
from microseg.features.valuation import rfm_table
from microseg.project import Project
from microseg.schema import EVENT_TYPES, EVENTS
from tests.conftest import shared_file

pytestmark = pytest.mark.spark


def random_events(n: int = 20_000, seed: int = 7) -> pd.DataFrame:
    """Events of every type, with ties, nulls, anonymous rows and refunds."""
    rng = np.random.default_rng(seed)
    types = np.array(list(EVENT_TYPES))
    kind = types[rng.integers(0, len(types), n)]
    kind[: n // 2] = "purchase"
    start = np.datetime64("2023-01-01T00:00:00")
    ts = start + rng.integers(0, 400 * 86400, n).astype("timedelta64[s]")
    customer = np.char.add("c", rng.integers(0, 800, n).astype(str)).astype(object)
    customer[rng.random(n) < 0.05] = None
    commerce = np.isin(kind, ["purchase", "refund", "cancellation"])
    quantity = np.where(commerce, rng.integers(1, 5, n), 0)
    quantity = np.where(np.isin(kind, ["refund", "cancellation"]), -quantity, quantity)
    cents = rng.integers(1, 100_000, n)
    order = np.char.add("o", rng.integers(0, 6000, n).astype(str)).astype(object)
    order[rng.random(n) < 0.1] = None
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "event_type": kind,
            "ts": ts,
            "customer_id": customer,
            "source": "test",
            "order_id": np.where(commerce, order, None),
            "product_id": np.where(commerce, np.char.add("p", rng.integers(0, 50, n).astype(str)), None),
            "quantity": pd.Series(quantity, dtype="Int64").mask(~commerce),
            "amount": [
                Decimal(int(c) * int(q)) / 100 if m else None
                for c, q, m in zip(cents, quantity, commerce, strict=True)
            ],
            "import_id": "i",
        }
    )
    for c in EVENTS.column_names:
        if c not in frame:
            frame[c] = None
    return frame[EVENTS.column_names]


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.sort_values("customer_id").reset_index(drop=True)
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].astype("datetime64[us]")
    return out


def on_both_engines(warehouse, spark, tmp_path, build) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``build(events, customers)`` (or ``build(events, customers, products)`` when it takes
    three tables) evaluated on DuckDB and on Spark, rows in the same order."""
    import inspect

    import ibis

    names = ("events", "customers", "products")[: len(inspect.signature(build).parameters)]
    spark_con = ibis.pyspark.connect(spark)
    tables = {}
    for name in names:
        path = tmp_path / f"{name}.parquet"
        warehouse.sql(f"COPY {name} TO '{path}' (FORMAT parquet)")
        tables[name] = spark_con.read_parquet(str(path))
    on_duckdb = build(*(warehouse.table(n) for n in names)).to_pandas()
    on_spark = build(*(tables[n] for n in names)).to_pandas()
    return normalized(on_duckdb), normalized(on_spark[on_duckdb.columns])


def summaries_on_both(warehouse, spark, tmp_path, as_of: dt.date):
    return on_both_engines(warehouse, spark, tmp_path, lambda e, c: customer_summary(e, as_of, c))


def rfm_on_both(warehouse, spark, tmp_path, as_of: dt.date, period: str):
    return on_both_engines(warehouse, spark, tmp_path, lambda e, _: rfm_table(e, as_of, period))


def test_summary_parity_on_events_of_every_type(warehouse, spark, tmp_path):
    frame = random_events()
    warehouse.con.register("frame", frame)
    warehouse.sql("INSERT INTO events SELECT * FROM frame")
    # customers c800..c899 have no events; half signed up after the as-of date
    warehouse.sql(
        "INSERT INTO customers (customer_id, signup_date, source, updated_at) "
        "SELECT 'c' || i, DATE '2023-09-01' + CAST(i % 60 AS INTEGER), 'crm', TIMESTAMP '2024-01-01' "
        "FROM range(800, 900) t(i)"
    )
    duck, spk = summaries_on_both(warehouse, spark, tmp_path, dt.date(2023, 10, 1))
    silent = duck[duck.customer_id.isin([f"c{i}" for i in range(800, 900)])]
    assert len(silent) == 42 and (silent.orders == 0).all() and silent.first_event_at.isna().all()
    assert duck["revenue"].map(type).eq(Decimal).all()
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)
    duck, spk = rfm_on_both(warehouse, spark, tmp_path, dt.date(2023, 10, 1), "week")
    assert len(duck) > 700 and duck.frequency.sum() > 1000
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)


def shop_with_products(warehouse) -> None:
    """Random events of every type, customers with traits, and products in five categories."""
    frame = random_events()
    views = frame.event_type == "page_view"
    frame.loc[views, "url"] = [f"/product/p{i % 50}" for i in range(int(views.sum()))]
    frame.loc[frame.event_type.isin(["purchase", "page_view"]), "channel"] = np.resize(
        ["web", "pos", "app"], int(frame.event_type.isin(["purchase", "page_view"]).sum())
    )
    warehouse.con.register("frame", frame)
    warehouse.sql("INSERT INTO events SELECT * FROM frame")
    warehouse.sql(
        "INSERT INTO customers (customer_id, signup_date, gender, birth_year, region, source, updated_at) "
        "SELECT 'c' || i, DATE '2022-09-01' + CAST(i % 400 AS INTEGER), ['f', 'm', NULL][1 + i % 3], "
        "1950 + i % 50, 'r' || (i % 4), 'crm', TIMESTAMP '2024-01-01' FROM range(0, 900) t(i)"
    )
    warehouse.sql(
        "INSERT INTO products (product_id, category, source, updated_at) "
        "SELECT 'p' || i, CASE WHEN i % 6 = 5 THEN NULL ELSE 'k' || (i % 6) END, 'catalog', "
        "TIMESTAMP '2024-01-01' FROM range(0, 50) t(i)"
    )


def assert_same(duck: pd.DataFrame, spk: pd.DataFrame) -> None:
    """Equal row by row: text, counts and dates exactly, floats to 1e-9 relative (a column with
    no value is empty on both, whatever each engine calls its type)."""
    empty = [c for c in duck.columns if duck[c].isna().all()]
    assert spk[empty].isna().all().all()
    duck, spk = duck.drop(columns=empty), spk.drop(columns=empty)
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False, check_exact=False, rtol=1e-9, atol=0)


def test_profile_and_category_tables_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    from microseg.features.asof import AsOf
    from microseg.features.profile import browsing_of, profile_of, spend_of

    shop_with_products(warehouse)
    as_of = dt.date(2023, 10, 1)

    def snapshot(e, c, p):
        return AsOf(e, as_of, customers=c, products=p, page_flags={"sale": "/product/"})

    duck, spk = on_both_engines(warehouse, spark, tmp_path, lambda e, c, p: profile_of(snapshot(e, c, p)))
    assert len(duck) > 800 and duck["visited_sale_90d"].any() and duck["top_category"].notna().sum() > 500
    assert_same(duck, spk)
    for table in (spend_of, browsing_of):
        duck, spk = on_both_engines(warehouse, spark, tmp_path, lambda e, c, p, f=table: f(snapshot(e, c, p)))
        duck, spk = (f.sort_values(["customer_id", "category"], ignore_index=True) for f in (duck, spk))
        assert len(duck) > 600 and duck["category"].nunique() >= 5
        assert_same(duck, spk)


def test_stages_and_tiers_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    """The lifecycle rules (with the typical rhythm each engine learns) and the tiers, whose
    ranks have ties, give every customer the same stage and tiers on both engines."""
    import ibis

    from microseg.features.asof import AsOf
    from microseg.features.profile import profile_of
    from microseg.models.lifecycle import LifecycleModel
    from microseg.models.tiers import tier_expressions

    shop_with_products(warehouse)
    as_of = dt.date(2023, 10, 1)

    def segments(e, c, p):
        profile = profile_of(AsOf(e, as_of, customers=c, products=p))
        table = profile.mutate(
            clv=ibis.ifelse(profile.orders > 0, (profile.revenue / 500).floor() * 10.0, None),  # ties
            p_alive=ibis.ifelse(profile.orders > 6, 0.9, 0.2),
            rfm_segment=ibis.ifelse(profile.orders > 4, "loyal", ibis.null("string")),
        )
        model = LifecycleModel(new_days=30).fit(table)
        return table.select("customer_id", stage=model.expression(table), **tier_expressions(table))

    duck, spk = on_both_engines(warehouse, spark, tmp_path, segments)
    assert duck["stage"].nunique() >= 4 and duck["clv_tier"].nunique() == 5
    assert duck["engagement_tier"].nunique() == 4 and duck["tenure_tier"].nunique() >= 3
    assert_same(duck, spk)


def test_cluster_assignment_from_fixed_centres_is_the_same_on_both_engines(warehouse, spark, tmp_path):
    """Features built from a kept model's recipe and the nearest of its centres, on both
    engines: every customer gets the same centre."""
    from microseg.features.asof import AsOf
    from microseg.features.layers import behaviour_expressions
    from microseg.features.profile import browsing_of, profile_of, spend_of
    from microseg.models.clustering import ClusterModel

    shop_with_products(warehouse)
    as_of = dt.date(2023, 10, 1)
    columns = [
        "browse_k2",
        "browse_other",
        "cat_k0",
        "cat_k1",
        "cat_other",
        "order_value",
        "orders",
        "rhythm",
    ]
    spec = {
        "rhythm_fill": 9.5,
        "cat": ["k0", "k1"],
        "browse": ["k2"],
        "sources": ["activity", "cat", "browse"],
    }
    rng = np.random.default_rng(3)
    high = np.array([1, 1, 1, 1, 1, 7, 3, 5], dtype=float)
    model = ClusterModel(
        tuple(columns),
        rng.uniform(0, 0.5, 8) * high,
        rng.uniform(0.5, 2, 8) * high,
        rng.uniform(0, 1, (5, 8)) * high,
    )

    def assigned(e, c, p):
        snapshot = AsOf(e, as_of, customers=c, products=p)
        features = behaviour_expressions(
            profile_of(snapshot), spend_of(snapshot), browsing_of(snapshot), spec, columns
        )
        return features.mutate(centre=model.expression({c: features[c] for c in columns}))

    duck, spk = on_both_engines(warehouse, spark, tmp_path, assigned)
    assert len(duck) > 800 and duck["centre"].nunique() >= 3
    assert_same(duck, spk)
    in_memory = model.assign(duck[columns].to_numpy(float))
    assert (in_memory == duck["centre"].to_numpy()).all()


@pytest.mark.realdata
def test_summary_parity_on_online_retail(warehouse, spark, tmp_path):
    from microseg.config import parse_source
    from microseg.warehouse.ingest.files import import_file

    path = shared_file("online_retail_2010_2011.parquet")
    source = parse_source(
        "retail",
        {
            "path": str(path),
            "event_type": "purchase",
            "null_values": ["", "nan"],
            "classify": [{"event_type": "cancellation", "column": "InvoiceNo", "starts_with": "C"}],
            "columns": {
                "customer_id": "CustomerID",
                "ts": "InvoiceDate",
                "order_id": "InvoiceNo",
                "product_id": "StockCode",
                "quantity": "Quantity",
                "unit_price": "UnitPrice",
            },
        },
    )
    import_file(warehouse, source, path)
    duck, spk = summaries_on_both(warehouse, spark, tmp_path, dt.date(2011, 12, 9))
    assert len(duck) == 4_372
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)
    duck, spk = rfm_on_both(warehouse, spark, tmp_path, dt.date(2011, 12, 9), "day")
    assert len(duck) == 4_339  # customers with a purchase (the rest only cancelled)
    pd.testing.assert_frame_equal(duck, spk, check_dtype=False)


def test_project_runs_on_the_spark_backend(spark, tmp_path):
    root = tmp_path / "shop"
    Project.init(root)
    frame = random_events(3_000, seed=11)
    frame = frame.drop(columns=["source", "import_id"]).dropna(axis="columns", how="all")
    frame.to_parquet(root / "data" / "events.parquet")
    base = (root / "microseg.toml").read_text()
    source = '\n[sources.app]\npath = "data/events.parquet"\n'
    results = {}
    for backend in ("duckdb", "spark"):
        text = base.replace('backend = "duckdb"', f'backend = "{backend}"') + source
        (root / "microseg.toml").write_text(text)
        with Project(root) as project:
            project.import_sources()
            run = project.run(dt.date(2023, 12, 31))
            assert run.backend == backend
            results[backend] = project.customer_summary(dt.date(2023, 12, 31))
    assert len(results["duckdb"]) > 700
    pd.testing.assert_frame_equal(results["duckdb"], results["spark"])


def test_transitions_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    """Who moved from which segment to which between two snapshots, with the CLV and revenue
    they carry, for a layer with one segment per customer and for rule segments."""
    import ibis

    from microseg.warehouse.movement import transitions_relation

    rng = np.random.default_rng(5)
    start, end = dt.date(2024, 1, 31), dt.date(2024, 2, 29)
    stages = np.array(["new", "active", "at_risk", "churned"])
    rows = []
    for day, n in ((start, 900), (end, 950)):  # some leave, some arrive
        ids = rng.choice(1000, n, replace=False)
        rows += [(f"c{i}", day, "lifecycle", s) for i, s in zip(ids, rng.choice(stages, n), strict=True)]
        rows += [(f"c{i}", day, "rule", r) for i in ids for r in ("vip", "lapsed") if rng.random() < 0.4]
    members = pd.DataFrame(rows, columns=["customer_id", "as_of", "kind", "segment_id"])
    warehouse.con.register("m", members)
    warehouse.sql("INSERT INTO segment_memberships (customer_id, as_of, kind, segment_id) SELECT * FROM m")
    for table, column, numbers in (
        ("customer_values", "clv", lambda: rng.gamma(2, 50, 1000)),
        ("customer_summary", "net_revenue", lambda: rng.integers(0, 100_000, 1000) / 100),
    ):
        for day in (start, end):
            frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1000)], column: numbers()})
            warehouse.con.register("v", frame)
            warehouse.sql(
                f"INSERT INTO {table} (customer_id, as_of, {column}) SELECT customer_id, DATE '{day}', {column} FROM v"
            )
            warehouse.con.unregister("v")
    spark_con = ibis.pyspark.connect(spark)
    names = ("segment_memberships", "customer_values", "customer_summary")
    on_spark = {}
    for name in names:
        path = tmp_path / f"{name}.parquet"
        warehouse.sql(f"COPY {name} TO '{path}' (FORMAT parquet)")
        on_spark[name] = spark_con.read_parquet(str(path))
    for kind in ("lifecycle", "rule"):
        duck = transitions_relation(*(warehouse.table(n) for n in names), kind, start, end).to_pandas()
        spk = transitions_relation(*(on_spark[n] for n in names), kind, start, end).to_pandas()
        keys = ["segment", "source", "target"] if kind == "rule" else ["source", "target"]
        duck, spk = (f.sort_values(keys, ignore_index=True) for f in (duck, spk))
        assert duck["customers"].sum() >= 950 and {"(new)", "(gone)", "(out)"} & set(duck["source"]) | set(
            duck["target"]
        )
        assert_same(duck, spk)


def test_base_table_rule_segments_and_memberships_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    """The run's per-customer base (profile, values, stage, tiers, customer number), the members
    of rule segments evaluated on it, and the memberships of the stage and tier layers written
    from it: the same on both engines."""
    import ibis

    from microseg.config import SegmentConfig
    from microseg.features.asof import AsOf
    from microseg.features.profile import profile_of
    from microseg.segments.base import VALUE_COLUMNS, rule_members, segment_base
    from microseg.warehouse.segments import BASE_LAYERS

    shop_with_products(warehouse)
    as_of = dt.date(2023, 10, 1)
    rules = {
        "big_spenders": "revenue > 400 AND clv_tier <> 'none'",
        "lapsing_loyal": "stage IN ('at_risk', 'churned') AND orders >= 3",
        "mailable_women": "gender = 'f' AND email_opens_90d > 0",
    }
    settings = SegmentConfig(new_days=30, rules=rules)

    def base_of(e, c, p):
        profile = profile_of(AsOf(e, as_of, customers=c, products=p))
        values = profile.select(
            "customer_id",
            clv=ibis.ifelse(profile.orders > 0, (profile.revenue / 500).floor() * 10.0, None),
            p_alive=ibis.ifelse(profile.orders > 6, 0.9, 0.2),
            rfm_segment=ibis.ifelse(profile.orders > 4, "loyal", ibis.null("string")),
            **{c: ibis.null("float64") for c in VALUE_COLUMNS if c not in ("clv", "p_alive", "rfm_segment")},
        )
        return segment_base(profile, values.filter(values.customer_id != "c3"), settings)

    def memberships(e, c, p):
        base = base_of(e, c, p)
        parts = [
            base.select("customer_id", kind=ibis.literal(kind), segment_id=base[column])
            for kind, column in BASE_LAYERS.items()
        ]
        rules_ = rule_members(base, rules)
        named = rules_.join(base.select("customer", "customer_id"), "customer")
        parts.append(named.select("customer_id", kind=ibis.literal("rule"), segment_id=named.segment_id))
        return ibis.union(*parts)

    duck, spk = on_both_engines(warehouse, spark, tmp_path, base_of)
    assert duck["customer"].tolist() == list(range(len(duck)))  # numbered by sorted id
    assert duck["stage"].nunique() >= 4 and duck["clv_tier"].nunique() == 5 and duck["clv"].isna().any()
    assert_same(duck, spk)
    duck, spk = on_both_engines(warehouse, spark, tmp_path, memberships)
    keys = ["customer_id", "kind", "segment_id"]
    duck, spk = (f.sort_values(keys, ignore_index=True) for f in (duck, spk))
    sizes = duck[duck["kind"] == "rule"]["segment_id"].value_counts()
    assert set(sizes.index) == set(rules) and (sizes > 10).all()
    assert (duck["kind"] == "lifecycle").sum() == len(duck[duck["kind"] == "clv_tier"]) > 800
    assert_same(duck, spk)


def test_history_intervals_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    """Stays in segments over five snapshots (customers who leave, come back, change segment):
    the same intervals on both engines, and the same as the history the warehouse keeps up to
    date snapshot by snapshot."""
    import ibis

    from microseg.warehouse.history import history_intervals, update_history

    rng = np.random.default_rng(11)
    days = [dt.date(2024, m, 28) for m in range(1, 6)]
    for day in days:
        ids = rng.choice(400, 330, replace=False)
        rows = [
            (f"c{i}", day, "lifecycle", s) for i, s in zip(ids, rng.choice(["a", "b", "c"], 330), strict=True)
        ]
        rows += [(f"c{i}", day, "rule", "vip") for i in ids if i % 3 == 0]
        frame = pd.DataFrame(rows, columns=["customer_id", "as_of", "kind", "segment_id"])
        warehouse.con.register("m", frame)
        warehouse.sql(
            "INSERT INTO segment_memberships (customer_id, as_of, kind, segment_id) SELECT * FROM m"
        )
        warehouse.con.unregister("m")
        update_history(warehouse, day)
    path = tmp_path / "memberships.parquet"
    warehouse.sql(f"COPY segment_memberships TO '{path}' (FORMAT parquet)")
    on_spark = ibis.pyspark.connect(spark).read_parquet(str(path))
    keys = ["customer_id", "kind", "segment_id", "valid_from"]
    duck, spk, kept = (
        f.to_pandas().sort_values(keys, ignore_index=True)
        for f in (
            history_intervals(warehouse.table("segment_memberships")),
            history_intervals(on_spark),
            warehouse.table("segment_history"),
        )
    )
    assert duck["valid_to"].notna().sum() > 300 and duck["valid_to"].isna().sum() > 300
    assert duck.groupby(["customer_id", "kind"]).size().max() >= 3  # someone came back or moved
    assert_same(duck, spk[duck.columns])
    assert_same(duck, kept[duck.columns])


def test_persona_statistics_are_the_same_on_both_engines(warehouse, spark, tmp_path):
    """The aggregates every segment card is written from (``warehouse.persona_stats``), for
    layers over everybody, layers within stages and overlapping segments: the same on both
    engines (counts and mixes exactly, sums and spreads to 1e-9; the engines round a float to a
    decimal alike but for the last digit, so a mean of zero may come out as 1e-16 on one)."""
    import ibis

    from microseg.config import SegmentConfig
    from microseg.features.asof import AsOf
    from microseg.features.profile import profile_of, spend_of
    from microseg.segments.base import VALUE_COLUMNS, rule_members, segment_base
    from microseg.warehouse.persona_stats import PersonaStatistics

    shop_with_products(warehouse)
    as_of = dt.date(2023, 10, 1)
    settings = SegmentConfig(new_days=30)
    layers = {
        "lifecycle": ("stage", None),
        "clv_tier": ("clv_tier", None),
        "behaviour": ("behaviour", "stage"),
        "demographic": ("demographic", None),
    }
    rules = {"big_spenders": "revenue > 400", "lapsing": "stage IN ('at_risk', 'churned')"}

    def statistics(e, c, p):
        snapshot = AsOf(e, as_of, customers=c, products=p)
        profile = profile_of(snapshot)
        values = profile.select(
            "customer_id",
            clv=ibis.ifelse(profile.orders > 0, (profile.revenue / 500).floor() * 10.0 + 0.5, None),
            p_alive=ibis.ifelse(profile.orders > 6, 0.9, 0.25),
            **{c: ibis.null("float64") for c in VALUE_COLUMNS if c not in ("clv", "p_alive")},
        )
        base = segment_base(profile, values, settings)
        base = base.mutate(
            behaviour=base.stage.concat(".b", (base.orders % 2).cast("string")),
            demographic=ibis.literal("d").concat((base.customer % 3).cast("string")),
        )
        numbers = base.select("customer_id", "customer")
        spend = (
            spend_of(snapshot).join(numbers, "customer_id").select("customer", "category", "spend", "share")
        )
        members = rule_members(base, rules).select(
            "customer", kind=ibis.literal("rule"), segment_id="segment_id"
        )
        return PersonaStatistics(base, spend).layers(layers, members)

    spark_con = ibis.pyspark.connect(spark)
    tables = {}
    for name in ("events", "customers", "products"):
        path = tmp_path / f"{name}.parquet"
        warehouse.sql(f"COPY {name} TO '{path}' (FORMAT parquet)")
        tables[name] = spark_con.read_parquet(str(path))
    duck_context, duck = statistics(*(warehouse.table(n) for n in ("events", "customers", "products")))
    spark_context, spk = statistics(tables["events"], tables["customers"], tables["products"])

    assert duck_context.columns == spark_context.columns
    assert duck_context.category_names == spark_context.category_names
    np.testing.assert_allclose(duck_context.center, spark_context.center, rtol=1e-12)
    assert set(duck) == set(spk)
    assert {kind for kind, _ in duck} == {*layers, "rule"}
    assert len({scope for kind, scope in duck if kind == "behaviour"}) >= 4  # within each stage
    for key, one in duck.items():
        other = spk[key]
        order = [other.segment_ids.index(s) for s in one.segment_ids]
        assert one.sizes.tolist() == other.sizes[order].tolist(), key
        assert one.once.tolist() == other.once[order].tolist(), key
        for name in ("revenue", "median_clv", "spend"):
            np.testing.assert_allclose(
                getattr(one, name), getattr(other, name)[order], rtol=1e-9, err_msg=str(key)
            )
        for name in ("mean", "count"):
            np.testing.assert_allclose(
                getattr(one.stats, name),
                getattr(other.stats, name)[order],
                rtol=1e-9,
                atol=1e-9,
                err_msg=str(key),
            )
        for name in ("base_mean", "base_sd"):
            np.testing.assert_allclose(
                getattr(one.stats, name), getattr(other.stats, name), rtol=1e-9, atol=1e-9
            )
        assert one.mixes.keys() == other.mixes.keys()
        for column, (table, names) in one.mixes.items():
            other_table, other_names = other.mixes[column]
            assert names == other_names and table.tolist() == other_table[order].tolist(), (key, column)

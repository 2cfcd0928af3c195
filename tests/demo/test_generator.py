"""Tests of the demo-data generator: determinism, formats, file contracts and the planted truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest

from microseg import schema
from microseg.demo import GROUPS, DemoManifest, Shock, generate_demo
from microseg.demo import generator as gen
from microseg.demo.events import _APP_EVENTS, _CRM_STATES
from microseg.demo.groups import _CRM_SHARE, _KIND_LETTER
from microseg.demo.tables import _scramble

AS_OF = dt.date(2025, 12, 31)
WINDOW_END = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
DAY = pd.Timedelta(days=1)


def read(paths: list[Path]) -> pd.DataFrame:
    """Read files of any of the three formats into one DataFrame with comparable types."""
    tables = []
    for path in paths:
        if path.suffix == ".parquet":
            tables.append(pq.read_table(path))
        elif path.suffix == ".csv":
            # Empty CSV fields are nulls (the generator never writes empty strings).
            options = pa_csv.ConvertOptions(strings_can_be_null=True)
            tables.append(pa_csv.read_csv(path, convert_options=options))
        else:
            tables.append(pa_json.read_json(path))
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    for column in df.columns:
        if column in ("ts", "dropout_at", "first_purchase_at", "last_purchase_at"):
            df[column] = pd.to_datetime(df[column]).astype("datetime64[s]")
        elif column in ("unit_price", "price"):
            df[column] = df[column].astype(float)
        elif column == "signup_date":
            df[column] = pd.to_datetime(df[column]).dt.date
    return df


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> DemoManifest:
    """A 20k-customer, 3-year parquet demo shared by the tests of the planted truth."""
    return generate_demo(tmp_path_factory.mktemp("demo"), 20_000, seed=11, as_of=AS_OF)


@pytest.fixture(scope="module")
def truth(demo) -> pd.DataFrame:
    return demo.truth()


@pytest.fixture(scope="module")
def purchases(demo) -> pd.DataFrame:
    return read(demo.files["purchases"])


@pytest.fixture(scope="module")
def bought(purchases) -> pd.DataFrame:
    """Purchased lines with their money."""
    lines = purchases[purchases.event_type == "purchase"].copy()
    lines["amount"] = lines.quantity * lines.unit_price
    return lines


# --- API, arguments and files --------------------------------------------------------------------


def test_manifest_lists_files_counts_and_sources(demo, tmp_path):
    out = demo.out_dir
    assert set(demo.files) == {"customers", "products", "truth", "truth_pairs", *gen.KINDS}
    for kind, paths in demo.files.items():
        assert paths and all(p.exists() and p.parent == out for p in paths), kind
        assert demo.counts[kind] == sum(pq.ParquetFile(p).metadata.num_rows for p in paths), kind
    assert demo.counts["customers"] == demo.counts["truth"] == 20_000
    assert [p.name for p in demo.files["purchases"]] == ["purchases-00000.parquet"]

    sources = demo.sources()
    assert sources["customers"] == {"path": "customers*.parquet", "kind": "customers"}
    assert sources["products"] == {"path": "products.parquet", "kind": "products"}
    assert sources["web"] == {"path": "web-*.parquet", "kind": "events"}
    assert set(sources) == {"customers", "products", *gen.KINDS}
    for name, source in sources.items():
        matched = sorted(out.glob(source["path"]))
        expected = demo.files[name]
        assert matched == sorted(expected), name

    loaded = DemoManifest.load(out)
    assert loaded == demo


def test_columns_are_canonical(demo):
    allowed = {
        "customers": set(schema.CUSTOMERS.column_names),
        "products": set(schema.PRODUCTS.column_names),
        **{kind: set(schema.EVENTS.column_names) for kind in gen.KINDS},
    }
    for kind, names in allowed.items():
        columns = pq.read_schema(demo.files[kind][0]).names
        assert set(columns) <= names, (kind, set(columns) - names)
        assert not {"source", "import_id", "updated_at"} & set(columns)
    events = read(demo.files["purchases"][:1])
    assert set(events.event_type) <= set(schema.EVENT_TYPES)


def test_every_event_is_unique_and_inside_the_window(demo):
    window_start = WINDOW_END - pd.Timedelta(days=round(3 * 365.25))
    ids = []
    for kind in gen.KINDS:
        events = read(demo.files[kind])
        assert len(events) > 0, kind
        assert events.ts.min() >= window_start, kind
        assert events.ts.max() < WINDOW_END, kind
        assert events.event_type.isin(list(schema.EVENT_TYPES)).all(), kind
        assert events.event_id.str.startswith("E" + _KIND_LETTER[kind]).all(), kind
        ids.append(events.event_id)
    ids = pd.concat(ids)
    assert ids.is_unique


def test_event_sources_look_like_their_kind(demo, truth):
    web = read(demo.files["web"])
    assert (web.event_type == "page_view").all() and (web.channel == "web").all()
    anonymous = web.customer_id.isna()
    assert 0.05 < anonymous.mean() < 0.5
    assert web.anonymous_id.notna().all()
    assert web.url.str.startswith("/").all()
    assert web.url.str.match(r"^/product/P\d{4}$").any() and (web.url == "/cart").any()

    email = read(demo.files["email"])
    counts = email.event_type.value_counts()
    assert counts["email_sent"] > counts["email_open"] > counts["email_click"] > 0
    assert email.campaign_id.notna().all()
    assert email.url.notna().eq(email.event_type == "email_click").all()
    sends = email[email.event_type == "email_sent"].set_index(["customer_id", "campaign_id"]).ts
    opens = email[email.event_type == "email_open"].set_index(["customer_id", "campaign_id"]).ts
    assert (opens >= sends.reindex(opens.index)).all()  # every open follows its send

    social = read(demo.files["social"])
    assert set(social.name) == {"instagram", "facebook", "tiktok", "x"}

    crm = read(demo.files["crm"])
    assert set(zip(crm.name, crm.status, strict=True)) <= set(_CRM_STATES)
    leads = crm[crm.name == "lead"]
    converted = leads[leads.status == "converted"].customer_id
    assert not set(converted) & set(truth.customer_id[truth.stage == "prospect"])
    # Statuses move forward in time: new, qualified, converted; open, then won or lost.
    step = crm.status.map({s: i for i, (_, s) in enumerate(_CRM_STATES)})
    steps = crm.assign(step=step).sort_values(["customer_id", "name", "step"])
    same_record = steps.customer_id.eq(steps.customer_id.shift()) & steps.name.eq(steps.name.shift())
    assert (steps.ts.diff()[same_record] >= pd.Timedelta(0)).all()
    assert (steps.step.diff()[same_record] > 0).all()

    app = read(demo.files["app"])
    assert set(app.name) == set(_APP_EVENTS)
    assert (app.channel == np.where(app.name == "device_heartbeat", "iot", "app")).all()
    assert app.product_id.notna().eq(app.name.isin(["add_to_cart", "wishlist_add"])).all()


def test_customers_and_products(demo, truth):
    customers = read(demo.files["customers"])
    assert customers.customer_id.is_unique and len(customers) == 20_000
    assert customers.customer_id.iloc[0] == "C00000001"
    assert (customers.customer_id == truth.customer_id).all()
    assert customers.email.is_unique and customers.email.str.endswith("@example.com").all()
    assert set(customers.gender.dropna()) == {"F", "M"}
    assert customers.birth_year.between(1930, AS_OF.year - 18).all()
    assert customers.signup_date.max() <= AS_OF
    assert customers.crm_id.notna().mean() == pytest.approx(_CRM_SHARE, abs=0.03)

    products = read(demo.files["products"])
    assert products.product_id.is_unique and products.name.is_unique
    assert 8 <= products.category.nunique() <= 12 and 200 <= len(products) <= 500
    assert (products.price > 0).all()
    assert np.allclose(products.price * 100, np.round(products.price * 100))
    assert pq.read_schema(demo.files["products"][0]).field("price").type == pa.decimal128(12, 2)

    # Buyers sign up no later than their first purchase.
    first = truth.set_index("customer_id").first_purchase_at.dt.normalize()
    signup = pd.to_datetime(customers.set_index("customer_id").signup_date)
    assert (signup[first.notna()] <= first.dropna()).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customers": 0}, r"customers .* got 0$"),
        ({"customers": 2.5}, r"customers .* got 2\.5$"),
        ({"customers": True}, r"customers .* got True$"),
        ({"seed": -1}, r"seed .* got -1$"),
        ({"as_of": "2025-12-31"}, r"as_of .* got '2025-12-31'$"),
        ({"years": 0}, r"years .* got 0$"),
        ({"years": float("nan")}, r"years .* got nan$"),
        ({"fmt": "xlsx"}, r"fmt .* got 'xlsx'$"),
        ({"kinds": "web"}, r"kinds .* 'web'$"),
        ({"kinds": ["web", "tweets"]}, r"kinds .*\['tweets'\]"),
        ({"kinds": ["web", "web"]}, r"kinds lists a kind twice"),
    ],
)
def test_bad_arguments_raise_clear_errors(tmp_path, kwargs, message):
    args = {"customers": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate_demo(tmp_path, **args)
    assert not list(tmp_path.iterdir())  # nothing written


def test_public_names_stay_importable():
    import microseg.demo

    assert set(microseg.demo.__all__) == {"GROUPS", "DemoManifest", "Shock", "generate_demo"}
    for name in gen.__all__:
        assert getattr(gen, name) is not None, name
    assert gen.generate_demo is generate_demo and gen.DemoManifest is DemoManifest and gen.GROUPS is GROUPS
    assert gen.SLEEPING_DOG_SHARE > 0 and gen.Buying is type(GROUPS[0].buying)


def test_out_dir_must_be_a_folder(tmp_path):
    file = tmp_path / "taken.txt"
    file.write_text("not a folder")
    with pytest.raises(ValueError, match="out_dir"):
        generate_demo(file, 10)


def test_progress_and_blocks_with_small_block_size(tmp_path, monkeypatch):
    # generate_demo reads BLOCK_SIZE from the generator module, so that is where to patch it.
    monkeypatch.setattr(gen, "BLOCK_SIZE", 1_000)
    calls = []
    manifest = generate_demo(
        tmp_path, 3_500, seed=5, kinds=["purchases", "web"], progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(1_000, 3_500), (2_000, 3_500), (3_000, 3_500), (3_500, 3_500)]
    assert [p.name for p in manifest.files["web"]] == [f"web-{b:05d}.parquet" for b in range(4)]
    assert "email" not in manifest.files and not list(tmp_path.glob("email-*"))
    customers = read(manifest.files["customers"])
    assert customers.customer_id.is_unique and len(customers) == 3_500
    for kind in ("purchases", "web"):
        events = read(manifest.files[kind])
        assert events.event_id.is_unique
        assert set(events.customer_id.dropna()) <= set(customers.customer_id)
    orders = read(manifest.files["purchases"]).groupby("order_id").customer_id.nunique()
    assert (orders == 1).all()  # order ids never collide across blocks

    # A later, smaller run into the same folder leaves no stale part files behind.
    generate_demo(tmp_path, 1_500, seed=5, kinds=["web"])
    assert sorted(p.name for p in tmp_path.glob("web-*")) == ["web-00000.parquet", "web-00001.parquet"]
    assert not list(tmp_path.glob("purchases-*"))


# --- determinism and formats ---------------------------------------------------------------------


def _file_bytes(manifest: DemoManifest) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for paths in manifest.files.values() for p in paths}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    first = generate_demo(tmp_path / "a", 2_000, seed=3)
    again = generate_demo(tmp_path / "b", 2_000, seed=3)
    other = generate_demo(tmp_path / "c", 2_000, seed=4)
    assert _file_bytes(first) == _file_bytes(again)
    assert first.counts == again.counts
    differing = [name for name, data in _file_bytes(first).items() if data != _file_bytes(other).get(name)]
    assert {"customers.parquet", "truth.parquet", "purchases-00000.parquet"} <= set(differing)
    assert not read(first.files["truth"]).equals(read(other.files["truth"]))


def test_leaving_kinds_out_does_not_change_the_others(tmp_path):
    everything = generate_demo(tmp_path / "all", 2_000, seed=8)
    some = generate_demo(tmp_path / "some", 2_000, seed=8, kinds=["app", "purchases"])
    assert some.kinds == ("purchases", "app")
    full, part = _file_bytes(everything), _file_bytes(some)
    assert set(part) < set(full)
    assert all(full[name] == data for name, data in part.items())


@pytest.fixture(scope="module")
def formats(tmp_path_factory) -> dict[str, DemoManifest]:
    root = tmp_path_factory.mktemp("formats")
    return {fmt: generate_demo(root / fmt, 2_000, seed=21, fmt=fmt) for fmt in gen.FORMATS}


def test_formats_round_trip_to_the_same_content(formats):
    parquet = formats["parquet"]
    for fmt in ("csv", "jsonl"):
        manifest = formats[fmt]
        assert manifest.counts == parquet.counts
        assert all(p.suffix == f".{gen.FORMATS[fmt]}" for ps in manifest.files.values() for p in ps)
        for kind in parquet.files:
            expected, actual = read(parquet.files[kind]), read(manifest.files[kind])
            assert list(actual.columns) == list(expected.columns), (fmt, kind)
            pd.testing.assert_frame_equal(actual, expected, check_dtype=False, obj=f"{fmt} {kind}")


def test_text_formats_write_plain_timestamps_and_money(formats):
    csv_lines = formats["csv"].files["purchases"][0].read_text().splitlines()
    assert csv_lines[0].startswith('"event_id","event_type","ts","customer_id"')
    first_row = csv_lines[1].split(",")
    assert len(first_row[2].strip('"')) == len("2025-01-01 00:00:00")
    pd.Timestamp(first_row[2].strip('"'))  # parses
    json_line = formats["jsonl"].files["purchases"][0].read_text().splitlines()[0]
    row = json.loads(json_line)
    assert set(row) == set(pq.read_schema(formats["parquet"].files["purchases"][0]).names)
    assert len(row["ts"]) == 19 and row["ts"][10] == " "
    assert round(row["unit_price"], 2) == row["unit_price"]


def test_truth_reads_back_in_every_format(formats):
    expected = formats["parquet"].truth()
    required = {
        "customer_id", "group", "stage", "rhythm_days", "lam", "p_drop", "alive", "dropout_at",
        "first_purchase_at", "n_orders", "spend_mean", "base_response", "uplift_email",
        "uplift_discount", "shocked",
    }  # fmt: skip
    assert required <= set(expected.columns)
    assert list(expected.columns)[-1] == "shocked"  # added last, after the columns it joined
    for fmt in ("csv", "jsonl"):
        truth = formats[fmt].truth()
        assert len(truth) == len(expected)
        assert truth.shocked.dtype == bool and not truth.shocked.any()  # no shock, nobody shocked
        assert (truth.stage == expected.stage).all() and np.allclose(truth.lam, expected.lam)
        pairs = formats[fmt].truth_pairs()
        assert list(pairs.columns) == ["product_a", "product_b", "strength"]


# --- the planted truth ---------------------------------------------------------------------------


def test_group_and_stage_shares(truth):
    groups = truth.group.value_counts(normalize=True)
    for group in GROUPS:
        assert groups[group.name] == pytest.approx(group.share, abs=0.02)
    stages = truth.stage.value_counts(normalize=True)
    assert set(stages.index) == set(gen.STAGES)
    planted = {
        "prospect": gen.PROSPECT_SHARE,
        "new": gen.NEW_SHARE,
        "active": gen.ACTIVE_SHARE,
        "at_risk": gen.AT_RISK_SHARE,
        "churned": gen.CHURNED_SHARE,
        "reactivated": gen.REACTIVATED_SHARE,
    }
    assert sum(planted.values()) == pytest.approx(1.0)
    for stage, share in planted.items():
        assert stages[stage] == pytest.approx(share, abs=0.012), stage


def test_mean_orders_per_customer_is_calibrated(truth, bought):
    # the benchmarks quote 1M customers ~ 2.9M purchases over three years
    assert bought.order_id.nunique() / len(truth) == pytest.approx(2.9, rel=0.15)
    orders = bought.groupby("customer_id").order_id.nunique()
    n_orders = truth.set_index("customer_id").n_orders
    assert (orders.reindex(n_orders.index, fill_value=0) == n_orders).all()


def test_groups_buy_differently(truth, bought, demo):
    per_group = truth.groupby("group")
    rhythm = per_group.rhythm_days.mean()
    assert rhythm.idxmax() == "occasional_gifters"
    for frequent in ("loyal_big_spenders", "bargain_hunters"):
        for rare in ("fashion_fans", "home_gardeners", "occasional_gifters"):
            assert rhythm[frequent] < 0.85 * rhythm[rare], (frequent, rare)
    orders = per_group.n_orders.mean()
    assert orders["loyal_big_spenders"] > orders["fashion_fans"] > orders["occasional_gifters"]
    assert orders["bargain_hunters"] > 1.1 * orders["home_gardeners"]
    assert orders.idxmin() == "occasional_gifters"

    order_value = bought.groupby(["customer_id", "order_id"]).amount.sum().groupby("customer_id").mean()
    realised = truth.set_index("customer_id").join(order_value.rename("aov"))
    aov = realised.groupby("group").aov.mean()
    assert aov["loyal_big_spenders"] > aov["home_gardeners"] > aov["fashion_fans"]
    assert aov["fashion_fans"] > aov["bargain_hunters"] * 2
    # The realised mean order value tracks the planted Gamma-Gamma spend_mean.
    buyers = realised.dropna(subset=["aov"])
    assert np.corrcoef(np.log(buyers.spend_mean), np.log(buyers.aov))[0, 1] > 0.8
    assert (buyers.aov / buyers.spend_mean).median() == pytest.approx(1.0, abs=0.1)
    group_ratio = buyers.groupby("group").aov.mean() / buyers.groupby("group").spend_mean.mean()
    assert group_ratio.between(0.85, 1.25).all()

    products = read(demo.files["products"])[["product_id", "category"]]
    lines = bought.merge(products, on="product_id").merge(truth[["customer_id", "group"]])
    spend = lines.groupby(["group", "category"]).amount.sum().unstack(fill_value=0)
    shares = spend.div(spend.sum(axis=1), axis=0)
    for group in GROUPS:
        assert shares.loc[group.name].idxmax() in group.planted_categories
        assert shares.loc[group.name, list(group.planted_categories)].sum() > 0.8

    channels = bought.merge(truth[["customer_id", "group"]]).groupby("group").channel
    app_share = channels.apply(lambda c: (c == "app").mean())
    assert app_share.idxmax() == "fashion_fans"


def test_occasional_gifters_buy_before_christmas(truth, bought):
    # 2024, a full year before the last one (whose months are dominated by recent buyers)
    orders = bought.drop_duplicates("order_id").merge(truth[["customer_id", "group"]])
    orders = orders[orders.ts.dt.year == 2024]
    december = orders.assign(december=orders.ts.dt.month == 12).groupby("group").december.mean()
    assert december["occasional_gifters"] > 0.15
    assert december["occasional_gifters"] > 1.5 * december.drop("occasional_gifters").max()


def test_demographics_correlate_with_group(demo, truth):
    customers = read(demo.files["customers"]).merge(truth[["customer_id", "group"]])
    age = AS_OF.year - customers.groupby("group").birth_year.mean()
    assert age["fashion_fans"] < age["bargain_hunters"] < age["occasional_gifters"]
    female = customers.assign(f=customers.gender == "F").groupby("group").f.mean()
    assert female.idxmax() == "fashion_fans"


def test_planted_pairs_are_bought_together(demo, bought):
    pairs = demo.truth_pairs()
    assert 20 <= len(pairs) <= 200 and pairs.strength.between(0.4, 0.9).all()
    baskets = bought[["order_id", "product_id"]].drop_duplicates()
    n_orders = baskets.order_id.nunique()
    orders_of = baskets.groupby("product_id").order_id.apply(set)
    lifts = []
    for a, b in zip(pairs.product_a, pairs.product_b, strict=True):
        with_a, with_b = orders_of.get(a, set()), orders_of.get(b, set())
        if len(with_a) < 30:
            continue  # too rare in this sample to measure
        both = len(with_a & with_b)
        lifts.append(both * n_orders / (len(with_a) * len(with_b)))
    assert len(lifts) >= 10
    assert min(lifts) > 5


def test_refunds_and_cancellations(purchases):
    returned = purchases[purchases.event_type.isin(["refund", "cancellation"])]
    assert 0.01 < len(returned) / len(purchases) < 0.1
    assert (returned.quantity < 0).all()
    assert (purchases[purchases.event_type == "purchase"].quantity > 0).all()
    assert (purchases.unit_price > 0).all() and (purchases.currency == "GBP").all()
    lines = purchases[purchases.event_type == "purchase"]
    matched = returned.merge(lines, on=["order_id", "product_id"], suffixes=("", "_bought"))
    matched = matched[matched.ts_bought <= matched.ts]
    assert set(returned.event_id) == set(matched.event_id)  # each refers to an earlier purchase
    assert matched.event_id.is_unique  # ... a single line: orders list a product once
    assert (matched.quantity.abs() <= matched.quantity_bought).all()
    cancelled = matched[matched.event_type == "cancellation"]
    assert (cancelled.quantity == -cancelled.quantity_bought).all()
    assert (cancelled.ts - cancelled.ts_bought < DAY).all()


def stage_facts(truth: pd.DataFrame, bought: pd.DataFrame) -> pd.DataFrame:
    """Per customer: planted truth and what the purchases show (days measured to the window end)."""
    orders = bought.drop_duplicates("order_id").sort_values(["customer_id", "ts"])[["customer_id", "ts"]]
    gaps = orders.groupby("customer_id").ts.diff() / DAY
    by_customer = orders.groupby("customer_id").ts
    facts = truth.set_index("customer_id").join(
        pd.DataFrame(
            {
                "orders": by_customer.size(),
                "first": by_customer.min(),
                "last": by_customer.max(),
                "longest_gap": gaps.groupby(orders.customer_id).max(),
            }
        )
    )
    facts["orders"] = facts.orders.fillna(0).astype(int)
    facts["since_first"] = (WINDOW_END - facts["first"]) / DAY
    facts["since_last"] = (WINDOW_END - facts["last"]) / DAY
    return facts


@pytest.fixture(scope="module")
def facts(truth, bought) -> pd.DataFrame:
    return stage_facts(truth, bought)


def simple_stage_rule(facts: pd.DataFrame) -> np.ndarray:
    """A plain observable rule: each customer's own rhythm and recency, first purchase and gaps."""
    rhythm = (facts.since_first - facts.since_last) / (facts.orders - 1)
    ratio = facts.since_last / rhythm
    return np.select(
        [
            facts.orders == 0,
            facts.since_first <= 90,
            (facts.longest_gap >= 365) & (facts.since_last <= 90),
            (facts.orders == 1) & (facts.since_last >= 200),
            facts.orders == 1,
            ratio < 1.6,
            ratio < 4,
        ],
        ["prospect", "new", "reactivated", "churned", "new", "active", "at_risk"],
        "churned",
    )


def test_truth_matches_the_purchases(facts):
    assert (facts.orders == facts.n_orders).all()
    buyers = facts[facts.stage != "prospect"]
    assert (buyers["first"] == buyers.first_purchase_at).all()
    assert (buyers["last"] == buyers.last_purchase_at).all()
    assert buyers.rhythm_days.between(gen.RHYTHM_MIN_DAYS, gen.RHYTHM_MAX_DAYS).all()
    assert np.allclose(buyers.lam, 1.0 / buyers.rhythm_days)
    assert (buyers.first_purchase_at >= WINDOW_END - pd.Timedelta(days=round(3 * 365.25))).all()
    alive = facts.stage.isin(["new", "active", "at_risk", "reactivated"])
    assert (facts.alive == alive).all()
    assert facts.dropout_at.notna().eq(facts.stage == "churned").all()
    churned = facts[facts.stage == "churned"]
    assert (churned.dropout_at == churned.last_purchase_at).all()
    # only reactivated customers ever wait a year between two purchases
    assert (facts.longest_gap[facts.stage != "reactivated"].dropna() < 365).all()


def test_prospects_never_buy(truth, purchases):
    prospects = truth[truth.stage == "prospect"]
    assert not set(prospects.customer_id) & set(purchases.customer_id)
    assert (prospects.n_orders == 0).all() and prospects.first_purchase_at.isna().all()
    assert prospects.rhythm_days.isna().all() and (prospects.lam == 0).all()
    assert not prospects.alive.any()


def test_every_customer_shows_their_planted_stage(facts):
    stage, mu = facts.stage, facts.rhythm_days

    new = facts[stage == "new"]
    assert (new.since_first <= 90).all() and new.orders.between(1, gen.NEW_MAX_ORDERS).all()

    others = facts[stage.isin(["active", "at_risk", "churned", "reactivated"])]
    assert (others.since_first > 90).all()  # only new customers started within 90 days

    active = facts[stage == "active"]
    assert (active.since_last < active.rhythm_days).all()
    assert (active.since_first >= np.maximum(2.5 * active.rhythm_days, 120)).all()
    assert (active.orders >= 2).all()

    at_risk = facts[stage == "at_risk"]
    assert (at_risk.since_last > 2.2 * at_risk.rhythm_days).all()
    assert (at_risk.since_last < 3.2 * at_risk.rhythm_days).all()
    assert (at_risk.orders >= 1 + gen.AT_RISK_MIN_EARLIER).all()

    churned = facts[stage == "churned"]
    assert (churned.since_last >= np.maximum(5 * churned.rhythm_days, 200)).all()
    one_time = churned[churned.orders == 1]
    assert 0.3 < len(one_time) / len(churned) < 0.9  # one-time churned buyers are common

    reactivated = facts[stage == "reactivated"]
    assert (reactivated.longest_gap >= 365).all() and (reactivated.since_last <= 90).all()
    assert (reactivated.orders >= 3).all()  # two before the gap, one after it at least
    assert len(mu) == len(facts)


def test_the_rhythm_shows_in_the_gaps(facts):
    # Active and at-risk customers' histories reach back a set time or number of purchases, so
    # their average gap estimates the planted rhythm without selection.
    regular = facts[facts.stage.isin(["active", "at_risk"])]
    observed = (regular.since_first - regular.since_last) / (regular.orders - 1)
    ratio = observed / regular.rhythm_days
    assert ratio.median() == pytest.approx(1.0, abs=0.05)
    assert ratio.between(0.5, 1.6).mean() > 0.95
    assert np.corrcoef(np.log(observed), np.log(regular.rhythm_days))[0, 1] > 0.85


def test_a_simple_rule_recovers_the_planted_stages(facts):
    rule = simple_stage_rule(facts)
    agreement = (rule == facts.stage).mean()
    assert agreement >= 0.97
    per_stage = pd.Series(rule == facts.stage.to_numpy(), index=facts.index).groupby(facts.stage).mean()
    # At risk is the hardest: a rhythm estimated from 3-4 gaps can make 3 missed purchases look
    # like 4 or more (about 90% agree); every other stage agrees for 99% or more.
    assert per_stage["at_risk"] >= 0.85, per_stage.to_dict()
    assert (per_stage.drop("at_risk") >= 0.97).all(), per_stage.to_dict()


def test_engagement_fades_after_churn_and_slows_when_at_risk(demo, facts):
    web = read(demo.files["web"])
    app = read(demo.files["app"])
    activity = pd.concat(
        [
            web.loc[web.customer_id.notna(), ["customer_id", "ts"]],
            app.loc[app.name != "device_heartbeat", ["customer_id", "ts"]],
        ]
    ).join(facts[["stage", "last", "rhythm_days"]], on="customer_id")

    def rate(stage: str, since: pd.Series) -> float:
        """Events per customer-year after ``since`` (per customer of the stage)."""
        members = facts[facts.stage == stage]
        start = since.reindex(members.index)
        rows = activity[activity.stage == stage]
        after = rows.ts > start.reindex(rows.customer_id).to_numpy()
        years = ((WINDOW_END - start) / DAY).clip(lower=1).sum() / 365.25
        return after.sum() / years

    active = rate("active", pd.Series(WINDOW_END - 365 * DAY, index=facts.index))
    long_gone = facts.last + 180 * DAY
    churned = rate("churned", long_gone.where(long_gone < WINDOW_END - 30 * DAY))
    slowed = rate("at_risk", facts["last"] + facts.rhythm_days * DAY)
    assert churned < 0.1 * active
    assert slowed < 0.5 * active


def test_campaign_response_truth(truth):
    by_group = truth.groupby("group")[["uplift_email", "uplift_email_xmas", "uplift_discount"]].mean()
    assert by_group.uplift_discount.idxmax() == "bargain_hunters"
    assert by_group.uplift_discount.idxmin() == "loyal_big_spenders"
    assert by_group.uplift_email_xmas.idxmax() == "occasional_gifters"
    probabilities = truth.base_response + truth[["uplift_email", "uplift_discount"]].max(axis=1)
    assert truth.base_response.between(0, 1).all() and probabilities.between(0, 1).all()
    dogs = truth[truth.sleeping_dog]
    assert len(dogs) / len(truth) == pytest.approx(gen.SLEEPING_DOG_SHARE, abs=0.01)
    assert (dogs.uplift_email <= 0).all() and (truth[~truth.sleeping_dog].uplift_email >= 0).all()
    base = truth.groupby("stage").base_response.mean()
    assert base["active"] > base["at_risk"] > base["churned"]
    assert (truth.base_response[truth.stage == "churned"] < 0.01).all()
    # the base response follows the current buying rate: 1 / rhythm for active customers
    active = truth[truth.stage == "active"]
    assert np.allclose(active.base_response, 1 - np.exp(-14 / active.rhythm_days))


def test_short_history_shrinks_gracefully(tmp_path):
    # Half a year: too short for churned (200 days) and reactivated (a year's gap) customers; the
    # other buyer stages take their share and short rhythms make them fit.
    manifest = generate_demo(tmp_path, 3_000, seed=2, years=0.5, kinds=["purchases"])
    truth = manifest.truth()
    assert set(truth.stage) == {"prospect", "new", "active", "at_risk"}
    assert (truth.stage == "prospect").mean() == pytest.approx(gen.PROSPECT_SHARE, abs=0.015)
    events = read(manifest.files["purchases"])
    assert events.ts.min() >= WINDOW_END - pd.Timedelta(days=183)
    facts = stage_facts(truth, events[events.event_type == "purchase"])
    active = facts[facts.stage == "active"]
    assert (active.since_last < active.rhythm_days).all()
    assert (active.since_first >= np.maximum(2.5 * active.rhythm_days, 120)).all()
    at_risk = facts[facts.stage == "at_risk"]
    assert ((at_risk.since_last / at_risk.rhythm_days).between(2.2, 3.2)).all()
    assert (at_risk.orders >= 4).all()
    assert (simple_stage_rule(facts) == facts.stage).mean() >= 0.95

    # A month: every buyer is new.
    month = generate_demo(tmp_path / "month", 500, seed=2, years=1 / 12, kinds=["purchases"]).truth()
    assert set(month.stage) == {"prospect", "new"}
    assert (month.first_purchase_at.dropna() >= WINDOW_END - pd.Timedelta(days=30)).all()


# --- the planted shock ---------------------------------------------------------------------------

SHOCK_START = dt.date(2025, 7, 1)
SHOCK = Shock(SHOCK_START, share=0.5)


@pytest.fixture(scope="module")
def shock_runs(tmp_path_factory) -> tuple[DemoManifest, DemoManifest]:
    """The same 3,000 customers without and with a shock on 1 July 2025."""
    root = tmp_path_factory.mktemp("shock")
    plain = generate_demo(root / "plain", 3_000, seed=13, as_of=AS_OF)
    shocked = generate_demo(root / "shocked", 3_000, seed=13, as_of=AS_OF, shock=SHOCK)
    return plain, shocked


@pytest.fixture(scope="module")
def cohort(shock_runs) -> set[str]:
    truth = shock_runs[1].truth()
    return set(truth.customer_id[truth.shocked])


def test_shock_cohort_stops_buying_from_its_start(shock_runs, cohort):
    plain, shocked = shock_runs
    start = pd.Timestamp(SHOCK_START)
    truth = shocked.truth().set_index("customer_id")
    assert truth.shocked.dtype == bool and 50 < len(cohort) < 300
    # Frequent buyers: a planted rate of at least min_orders_per_month orders per 30 days.
    assert (30 * truth.lam[truth.shocked] >= SHOCK.min_orders_per_month).all()

    purchases = read(shocked.files["purchases"])
    members = purchases[purchases.customer_id.isin(cohort)]
    assert not (members.ts >= start).any()  # no purchase, refund or cancellation from the start on
    lines = members[members.event_type == "purchase"]
    just_before = lines[lines.ts.between(start - 60 * DAY, start, inclusive="left")]
    assert just_before.customer_id.nunique() / len(cohort) > 0.9
    # ... and, without the shock, they would have bought again.
    before = read(plain.files["purchases"])
    assert set(before.customer_id[(before.ts >= start) & before.customer_id.isin(cohort)]) == cohort

    # Their web visits from the start on drop to about a quarter.
    def member_page_views_after_start(manifest: DemoManifest) -> int:
        web = read(manifest.files["web"])
        return (web.customer_id.isin(cohort) & (web.ts >= start)).sum()

    ratio = member_page_views_after_start(shocked) / member_page_views_after_start(plain)
    assert 0.1 < ratio < 0.4


def test_shock_changes_nothing_for_anybody_else(shock_runs, cohort):
    plain, shocked = shock_runs
    plain_bytes, shocked_bytes = _file_bytes(plain), _file_bytes(shocked)
    changed = {name for name, data in shocked_bytes.items() if plain_bytes[name] != data}
    assert changed == {"purchases-00000.parquet", "web-00000.parquet", "truth.parquet"}
    pd.testing.assert_frame_equal(plain.truth(), shocked.truth().assign(shocked=False))

    # Every event row of the shocked run, event id included, is a row of the plain run; the rows
    # that went are the cohort's (web: their logged-in or anonymous page views) from the start on
    # (checkout pages of orders that are gone may come minutes before it).
    start = pd.Timestamp(SHOCK_START)
    for kind in ("purchases", "web"):
        before, after = read(plain.files[kind]), read(shocked.files[kind])
        kept = before[before.event_id.isin(after.event_id)].reset_index(drop=True)
        pd.testing.assert_frame_equal(kept, after, obj=kind)
        gone = before[~before.event_id.isin(after.event_id)]
        assert len(gone) > 0
        if kind == "web":
            numbers = np.array(sorted(int(c[1:]) for c in cohort))
            cookies = {f"A{n:010d}" for n in _scramble(numbers, 0)}  # the cohort's web cookies
            assert gone.anonymous_id.isin(cookies).all()
            assert (gone.ts >= start - pd.Timedelta(hours=1)).all()
        else:
            assert gone.customer_id.isin(cohort).all() and (gone.ts >= start).all()


def test_no_shock_leaves_the_data_as_it_was(tmp_path, truth):
    assert truth.shocked.dtype == bool and not truth.shocked.any()
    default = generate_demo(tmp_path / "default", 1_500, seed=4)
    none = generate_demo(tmp_path / "none", 1_500, seed=4, shock=None)
    empty = generate_demo(tmp_path / "empty", 1_500, seed=4, shock=Shock(SHOCK_START, share=0.0))
    assert _file_bytes(default) == _file_bytes(none) == _file_bytes(empty)
    assert "shock" not in json.loads((default.out_dir / DemoManifest.MANIFEST_FILE).read_text())
    assert DemoManifest.load(default.out_dir).shock is None


def test_shock_is_deterministic_and_recorded(tmp_path, shock_runs, cohort):
    again = generate_demo(tmp_path / "again", 3_000, seed=13, as_of=AS_OF, shock=SHOCK)
    assert _file_bytes(again) == _file_bytes(shock_runs[1])
    loaded = DemoManifest.load(again.out_dir)
    assert loaded == again and loaded.shock == SHOCK

    # A smaller share keeps part of the same cohort; another seed picks other customers.
    def cohort_of(shock: Shock, seed: int = 13) -> set[str]:
        run = generate_demo(tmp_path / f"{seed}-{shock.share}", 3_000, seed=seed, shock=shock, kinds=[])
        truth = run.truth()
        return set(truth.customer_id[truth.shocked])

    smaller = cohort_of(Shock(SHOCK_START, share=0.25))
    assert smaller < cohort and len(smaller) == pytest.approx(len(cohort) / 2, abs=2)
    assert cohort_of(SHOCK, seed=14) != cohort


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Shock("2025-07-01"), r"shock start must be a datetime.date, got '2025-07-01'"),
        (lambda: Shock(SHOCK_START, share=1.5), r"shock share .* got 1.5"),
        (lambda: Shock(SHOCK_START, share=True), r"shock share .* got True"),
        (lambda: Shock(SHOCK_START, min_orders_per_month=0), r"min_orders_per_month .* got 0"),
    ],
)
def test_bad_shocks_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("start", [dt.date(2026, 1, 1), dt.date(2023, 1, 1)])
def test_shock_must_start_inside_the_history(tmp_path, start):
    with pytest.raises(ValueError, match=rf"shock start must lie after .* got {start}$"):
        generate_demo(tmp_path, 10, shock=Shock(start))
    with pytest.raises(ValueError, match="shock must be a Shock or None"):
        generate_demo(tmp_path, 10, shock={"start": SHOCK_START})
    assert not list(tmp_path.iterdir())  # nothing written

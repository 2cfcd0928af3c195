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
from microseg.demo import GROUPS, DemoManifest, generate_demo
from microseg.demo import generator as gen
from microseg.demo.events import _APP_EVENTS, _CRM_STATES
from microseg.demo.groups import _CRM_SHARE, _KIND_LETTER

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

    assert set(microseg.demo.__all__) == {"GROUPS", "DemoManifest", "generate_demo"}
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
        "customer_id", "group", "stage", "lam", "p_drop", "alive", "dropout_at",
        "first_purchase_at", "n_orders", "spend_mean", "base_response", "uplift_email",
        "uplift_discount",
    }  # fmt: skip
    assert required <= set(expected.columns)
    for fmt in ("csv", "jsonl"):
        truth = formats[fmt].truth()
        assert len(truth) == len(expected)
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
    assert stages["prospect"] == pytest.approx(gen.PROSPECT_SHARE, abs=0.01)
    assert stages["reactivated"] == pytest.approx(gen.REACTIVATED_SHARE, abs=0.01)
    assert stages["at_risk"] == pytest.approx(gen.AT_RISK_SHARE, abs=0.012)
    assert 0.2 < stages["churned"] < 0.55
    assert 0.03 < stages["new"] < 0.15


def test_mean_orders_per_customer_is_calibrated(truth, bought):
    assert bought.order_id.nunique() / len(truth) == pytest.approx(2.9, rel=0.15)
    orders = bought.groupby("customer_id").order_id.nunique()
    n_orders = truth.set_index("customer_id").n_orders
    assert (orders.reindex(n_orders.index, fill_value=0) == n_orders).all()


def test_groups_buy_differently(truth, bought, demo):
    per_group = truth.groupby("group")
    orders = per_group.n_orders.mean()
    assert orders["loyal_big_spenders"] > orders["fashion_fans"] > orders["occasional_gifters"]
    assert orders["bargain_hunters"] > 1.4 * orders["home_gardeners"]
    assert orders["occasional_gifters"] < 1.7

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


def test_prospects_never_buy(truth, purchases):
    prospects = truth[truth.stage == "prospect"]
    assert not set(prospects.customer_id) & set(purchases.customer_id)
    assert (prospects.n_orders == 0).all() and prospects.first_purchase_at.isna().all()
    assert not prospects.alive.any()


def _purchase_times(bought: pd.DataFrame, customers: pd.Series) -> pd.DataFrame:
    orders = bought[bought.customer_id.isin(customers)].drop_duplicates("order_id")
    return orders.sort_values(["customer_id", "ts"])[["customer_id", "ts"]]


def test_reactivated_customers_came_back_after_a_long_gap(truth, bought):
    reactivated = truth[truth.stage == "reactivated"]
    orders = _purchase_times(bought, reactivated.customer_id)
    gap = orders.groupby("customer_id").ts.diff()
    longest = gap.groupby(orders.customer_id).max()
    last = orders.groupby("customer_id").ts.max()
    assert len(last) == len(reactivated)
    assert (longest >= 365 * DAY).all()
    assert (last >= WINDOW_END - 90 * DAY).all()
    assert reactivated.alive.all()


def test_churned_customers_do_not_buy_after_dropout(truth, bought):
    churned = truth[truth.stage == "churned"].set_index("customer_id")
    assert churned.dropout_at.notna().all() and not churned.alive.any()
    last = bought[bought.customer_id.isin(churned.index)].groupby("customer_id").ts.max()
    assert (last.reindex(churned.index) <= churned.dropout_at).all()
    alive = truth[truth.stage.isin(["new", "active", "at_risk", "reactivated"])]
    assert alive.alive.all() and alive.dropout_at.isna().all()


def test_new_customers_started_recently(truth):
    new = truth[truth.stage == "new"]
    assert (new.first_purchase_at >= WINDOW_END - 90 * DAY).all()
    active = truth[truth.stage == "active"]
    assert (active.first_purchase_at < WINDOW_END - 90 * DAY).all()


def test_at_risk_customers_slowed_down(truth, bought):
    def recent_to_usual_rate(stage: str) -> float:
        members = truth[truth.stage == stage]
        orders = _purchase_times(bought, members.customer_id)
        cutoff = WINDOW_END - 180 * DAY
        first = members.set_index("customer_id").first_purchase_at
        recent = (orders.ts >= cutoff).sum() / (180 * len(members))
        earlier = orders[orders.ts < cutoff]
        days_before = ((cutoff - first).dt.total_seconds() / 86_400).clip(lower=1).sum()
        return recent / (len(earlier) / days_before)

    assert recent_to_usual_rate("at_risk") < 0.4
    assert recent_to_usual_rate("active") > 0.7


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
    assert base["active"] > base["churned"]


def test_short_history_has_no_reactivated_cohort(tmp_path):
    manifest = generate_demo(tmp_path, 2_000, seed=2, years=0.5, kinds=["purchases"])
    truth = manifest.truth()
    assert "reactivated" not in set(truth.stage) and "at_risk" not in set(truth.stage)
    events = read(manifest.files["purchases"])
    assert events.ts.min() >= WINDOW_END - pd.Timedelta(days=183)

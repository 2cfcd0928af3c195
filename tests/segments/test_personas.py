"""Personas: segment cards, labels and customer cards on a synthetic profile with planted segments."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from microseg.errors import MicrosegError
from microseg.features.profile import PROFILE_COLUMNS
from microseg.segments.personas import (
    CARD_COLUMNS,
    MAX_LABEL_WORDS,
    UnknownCustomerError,
    customer_card,
    format_card,
    label_segment,
    segment_cards,
)

CATEGORIES = (
    "electronics",
    "fashion",
    "beauty",
    "home",
    "garden",
    "grocery",
    "household",
    "toys",
    "books",
    "sports",
)

#: Planted segments: size, main category, mean order value, mean orders, stage mix, app heaviness.
PLANTED = {
    "big": dict(n=500, category="electronics", aov=350.0, orders=5, stages={"active": 0.8, "new": 0.2}),
    "bargain": dict(n=700, category="grocery", aov=15.0, orders=22, stages={"active": 0.5, "new": 0.5}),
    "app": dict(
        n=600, category="fashion", aov=60.0, orders=6, stages={"active": 0.8, "reactivated": 0.2}, app=True
    ),
    "lapsed": dict(n=600, category="gift", aov=50.0, orders=1, stages={"churned": 0.8, "at_risk": 0.2}),
    "prospects": dict(n=300, category=None, aov=math.nan, orders=0, stages={"prospect": 1.0}),
    "outside": dict(n=300, category="home", aov=70.0, orders=4, stages={"active": 0.6, "new": 0.4}),
}
#: Expected sign of the planted features of each segment (category shares and behaviour).
PLANTED_SIGNS = {
    "big": {"average_order_value": 1, "category:electronics": 1, "clv": 1, "revenue": 1},
    "bargain": {"orders": 1, "category:grocery": 1, "average_order_value": -1, "expected_purchases": 1},
    "app": {"app_share": 1, "app_events_90d": 1, "category:fashion": 1, "pos_share": -1, "web_share": -1},
    "lapsed": {
        "orders": -1,
        "p_alive": -1,
        "expected_purchases": -1,
        "clv": -1,
        "days_since_last_purchase": 1,
        "days_since_first_purchase": 1,
        "category:toys": 1,
        "category:books": 1,
    },
    # prospects never bought: no orders, revenue or returns, and they read their emails
    "prospects": {"email_open_rate": 1, "orders": -1, "revenue": -1, "returned": -1, "distinct_products": -1},
}


def _build(seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frames, spend_rows, truth = [], [], []
    start = 0
    for name, spec in PLANTED.items():
        n = spec["n"]
        ids = [f"C{start + i:05d}" for i in range(n)]
        start += n
        truth += [name] * n
        buyer = spec["orders"] > 0
        orders = rng.poisson(spec["orders"], n) + 1 if buyer else np.zeros(n, int)
        aov = rng.lognormal(np.log(spec["aov"]), 0.25, n) if buyer else np.full(n, np.nan)
        revenue = np.where(orders > 0, orders * np.nan_to_num(aov), 0.0)
        stages = rng.choice(list(spec["stages"]), n, p=list(spec["stages"].values()))
        lapsed = name == "lapsed"
        p_alive = np.full(n, np.nan) if not buyer else rng.beta(1, 8, n) if lapsed else rng.beta(8, 2, n)
        expected = np.where(orders > 0, orders * 0.3 * np.nan_to_num(p_alive), np.nan)
        clv = expected * np.nan_to_num(aov) if buyer else np.full(n, np.nan)
        if spec.get("app"):
            channels = rng.dirichlet([1, 1, 8], n)
            app_events = rng.poisson(60, n)
        else:
            channels = rng.dirichlet([4, 4, 1], n)
            app_events = rng.poisson(4, n)
        if not buyer:
            channels = np.full((n, 3), np.nan)
        days_last = rng.integers(400, 700, n) if lapsed else rng.integers(1, 120, n)
        emails_sent = rng.integers(5, 40, n)
        open_rate = rng.beta(6, 4, n) if name == "prospects" else rng.beta(2, 6, n)
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "as_of": pd.Timestamp("2025-01-01"),
                "gender": rng.choice(["F", "M", "X"], n, p=[0.5, 0.45, 0.05]),
                "age": rng.integers(18, 80, n),
                "region": rng.choice(["North", "South", "East", "West"], n),
                "country": "GB",
                "acquisition_channel": rng.choice(["organic", "paid", "referral"], n),
                "signup_date": pd.Timestamp("2022-01-01"),
                "orders": orders,
                "transactions": orders,
                "revenue": revenue,
                "returned": rng.exponential(5, n) * (orders > 0),
                "average_order_value": aov,
                "items": orders * 2,
                "distinct_products": np.minimum(orders, rng.poisson(4, n) + 1),
                "first_purchase": pd.NaT,
                "last_purchase": pd.NaT,
                "days_since_first_purchase": np.where(
                    orders > 0, days_last + rng.integers(30, 900, n), np.nan
                ),
                "days_since_last_purchase": np.where(orders > 0, days_last, np.nan),
                "rhythm_days": np.where(orders > 1, rng.uniform(20, 60, n), np.nan),
                "longest_gap_days": np.where(orders > 1, 100, np.nan),
                "last_return_after_gap": pd.NaT,
                "page_views": rng.poisson(30, n),
                "page_views_30d": rng.poisson(5, n),
                "page_views_90d": rng.poisson(12, n),
                "emails_sent": emails_sent,
                "email_opens": np.round(emails_sent * open_rate).astype(int),
                "email_clicks": 0,
                "email_open_rate": open_rate,
                "email_click_rate": 0.0,
                "email_opens_90d": rng.poisson(3, n),
                "app_events": app_events * 3,
                "app_events_90d": app_events,
                "social_follows": rng.poisson(0.2, n),
                "crm_updates": 0,
                "last_event_at": pd.Timestamp("2024-12-01"),
                "pos_share": channels[:, 0],
                "web_share": channels[:, 1],
                "app_share": channels[:, 2],
                "clv": clv,
                "p_alive": p_alive,
                "churn_risk": 1 - p_alive,
                "expected_purchases": expected,
                "expected_spend": clv,
                "rfm_segment": (["lost"] if lapsed else ["loyal"]) * n if buyer else [None] * n,
                "r_score": rng.integers(1, 6, n).astype(float) if buyer else np.nan,
                "f_score": rng.integers(1, 6, n).astype(float) if buyer else np.nan,
                "m_score": rng.integers(1, 6, n).astype(float) if buyer else np.nan,
                "stage": stages,
                "clv_tier": rng.choice(["top_5", "top_20", "rest"], n) if buyer else "none",
                "tenure_tier": "1y+",
                "engagement_tier": rng.choice(["high", "medium", "low"], n),
            }
        )
        for i, cid in enumerate(ids):
            if not buyer:
                continue
            main = spec["category"]
            if main == "gift":
                main = "toys" if i % 2 else "books"
            others = rng.choice([c for c in CATEGORIES if c != main], 2, replace=False)
            shares = [0.8, 0.12, 0.08]
            for category, share in zip((main, *others), shares, strict=True):
                spend_rows.append((cid, category, revenue[i] * share))
        frames.append(frame)
    profile = pd.concat(frames, ignore_index=True)
    for column in PROFILE_COLUMNS:  # columns the profile gains later are present, empty
        if column not in profile.columns:
            profile[column] = np.nan
    categories = pd.DataFrame(spend_rows, columns=["customer_id", "category", "spend"])
    categories["share"] = categories["spend"] / categories.groupby("customer_id")["spend"].transform("sum")
    top = categories.sort_values(["customer_id", "spend"], ascending=[True, False]).drop_duplicates(
        "customer_id"
    )
    profile["top_category"] = profile["customer_id"].map(top.set_index("customer_id")["category"])
    truth = pd.Series(truth, index=profile["customer_id"], name="planted")
    return profile, categories, truth


@pytest.fixture(scope="module")
def data():
    profile, categories, truth = _build()
    membership = truth[truth != "outside"]
    cards = segment_cards(profile, categories, membership, kind="planted")
    return profile, categories, truth, membership, cards


def _card(cards: pd.DataFrame, segment: str) -> pd.Series:
    return cards.set_index("segment_id").loc[segment]


def test_synthetic_profile_has_every_profile_column(data):
    profile = data[0]
    assert set(PROFILE_COLUMNS) <= set(profile.columns)
    assert len(profile) == 3000


def test_sizes_and_shares_add_up(data):
    profile, _, _, membership, cards = data
    assert list(cards.columns) == list(CARD_COLUMNS)
    assert set(cards["segment_id"]) == set(membership.unique())
    assert cards["size"].sum() == len(membership) == 2700
    assert cards.set_index("segment_id")["size"].to_dict() == membership.value_counts().to_dict()
    assert cards["share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert cards["revenue_share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (cards["kind"] == "planted").all()
    assert list(cards["size"]) == sorted(cards["size"], reverse=True)  # largest first
    # revenue share is of the layer's revenue (the outside segment does not count)
    revenue = profile.set_index("customer_id")["revenue"]
    big = _card(cards, "big")
    assert big["revenue_share"] == pytest.approx(
        revenue[membership.index[membership == "big"]].sum() / revenue[membership.index].sum()
    )


def test_card_contents(data):
    profile, _, _, membership, cards = data
    prof = profile.set_index("customer_id")
    for segment, card in cards.set_index("segment_id").iterrows():
        mine = prof.loc[membership.index[membership == segment]]
        assert sum(card["stage_mix"].values()) == pytest.approx(1.0)
        if mine["clv"].notna().any():
            assert card["mean_clv"] == pytest.approx(mine["clv"].mean())
            assert card["median_clv"] == pytest.approx(mine["clv"].median())
            assert card["mean_p_alive"] == pytest.approx(mine["p_alive"].mean())
        assert card["demographics"]["mean_age"] == pytest.approx(mine["age"].mean())
        assert sum(card["demographics"]["gender"].values()) == pytest.approx(1.0)
        assert len(card["demographics"]["top_regions"]) == 3
        tops = card["top_categories"]
        assert len(tops) <= 3
        assert [s for _, s in tops] == sorted((s for _, s in tops), reverse=True)
    big = _card(cards, "big")
    assert big["top_categories"][0][0] == "electronics"
    assert big["top_categories"][0][1] == pytest.approx(0.8)
    assert big["stage_mix"]["active"] > 0.7
    assert _card(cards, "app")["channels"]["app"] > 0.6
    assert set(_card(cards, "app")["channels"]) == {"pos", "web", "app"}
    prospects = _card(cards, "prospects")
    assert prospects["top_categories"] == []
    assert prospects["stage_mix"] == {"prospect": 1.0}
    assert math.isnan(prospects["mean_clv"]) and math.isnan(prospects["mean_p_alive"])
    assert all(v is None for v in prospects["channels"].values())


@pytest.mark.parametrize("segment", sorted(PLANTED_SIGNS))
def test_distinguishing_features_are_the_planted_ones(data, segment):
    cards = data[4]
    card = _card(cards, segment)
    distinguishing = card["distinguishing"]
    assert 1 <= len(distinguishing) <= 5
    planted = PLANTED_SIGNS[segment]
    found = {d["feature"]: d for d in distinguishing}
    # the two strongest features are planted ones, and every planted feature listed has the right sign
    assert all(d["feature"] in planted for d in distinguishing[:2]), [d["feature"] for d in distinguishing]
    for feature, d in found.items():
        assert set(d) >= {"feature", "segment_mean", "base_mean", "effect_size"}
        assert all(math.isfinite(d[k]) for k in ("segment_mean", "base_mean", "effect_size"))
        if feature in planted:
            assert np.sign(d["effect_size"]) == planted[feature], feature
            assert np.sign(d["segment_mean"] - d["base_mean"]) == planted[feature]
    # every planted feature points the right way in the full table of effects
    for feature, sign in planted.items():
        assert np.sign(card["effects"][feature]) == sign, feature
    # ranked by strength (|d| for numbers; shares use Cohen's h, so only check numbers among themselves)
    numeric = [abs(d["effect_size"]) for d in distinguishing if not d["feature"].startswith("category:")]
    assert numeric == sorted(numeric, reverse=True)


def test_category_effect_is_a_difference_in_proportion(data):
    cards = data[4]
    d = next(d for d in _card(cards, "bargain")["distinguishing"] if d["feature"] == "category:grocery")
    assert d["segment_mean"] == pytest.approx(0.8)
    assert d["effect_size"] == pytest.approx(d["segment_mean"] - d["base_mean"])


def test_numeric_effect_is_a_standardized_mean_difference(data):
    profile, _, _, membership, cards = data
    orders = profile.set_index("customer_id").loc[membership.index, "orders"].astype(float)
    mine = orders[membership == "bargain"]
    expected = (mine.mean() - orders.mean()) / orders.std(ddof=1)
    assert _card(cards, "bargain")["effects"]["orders"] == pytest.approx(expected)


def test_labels_are_readable_unique_and_planted(data):
    cards = data[4]
    labels = cards.set_index("segment_id")["label"]
    assert labels.is_unique
    for label in labels:
        assert 1 <= len(label.split()) <= MAX_LABEL_WORDS
        assert label[0].isupper()
    assert "big-spending" in labels["big"].lower() and "tech buyers" in labels["big"]
    assert "bargain" in labels["bargain"].lower() and "grocery" in labels["bargain"]
    assert "app-first" in labels["app"].lower() and "fashion" in labels["app"]
    assert labels["app"].startswith("Active")
    assert labels["lapsed"].split()[0] in {"Lost", "Lapsing"}
    assert "occasional" in labels["lapsed"] and "gift" in labels["lapsed"]
    assert labels["prospects"].startswith("Prospective") and labels["prospects"].endswith("customers")
    assert "email-engaged" in labels["prospects"]
    # label_segment on a card row gives the same label when there is no clash
    for _, card in cards.iterrows():
        assert label_segment(card) == card["label"]


def test_identical_segments_get_distinct_labels(data):
    profile, categories, truth, _, _ = data
    membership = truth[truth.isin(["bargain", "big"])].copy()
    bargain = membership.index[membership == "bargain"]
    membership[bargain[::2]] = "bargain_a"
    membership[bargain[1::2]] = "bargain_b"
    cards = segment_cards(profile, categories, membership, kind="split")
    labels = cards.set_index("segment_id")["label"]
    assert labels.is_unique
    for segment in ("bargain_a", "bargain_b"):
        assert "grocery" in labels[segment] and len(labels[segment].split()) <= MAX_LABEL_WORDS
    # the bigger half keeps the plain label
    assert label_segment(_card(cards, cards.iloc[0]["segment_id"])) == cards.iloc[0]["label"]


def test_segments_that_nothing_tells_apart_get_no_numeral():
    rows = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(6)], "revenue": [10.0] * 6, "orders": [1] * 6}
    )
    membership = pd.Series(["a", "a", "b", "b", "c", "c"], index=rows["customer_id"])
    cards = segment_cards(
        rows, pd.DataFrame(columns=["customer_id", "category", "spend"]), membership, kind="flat"
    )
    assert list(cards["label"]) == ["Customers", "Customers, a second group", "Customers, a third group"]
    assert all(d == [] for d in cards["distinguishing"])


def test_look_alike_segments_are_contrasted():
    """Two segments that would both read "Garden lovers" say how they differ: one has bought for
    years, the other only recently (no label word speaks of tenure)."""
    n = 200
    rng = np.random.default_rng(3)
    rows = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(2 * n)],
            "orders": 3,
            "revenue": 100.0,
            "days_since_first_purchase": np.r_[rng.normal(900, 50, n), rng.normal(120, 20, n)],
        }
    )
    categories = pd.DataFrame({"customer_id": rows["customer_id"], "category": "garden", "spend": 1.0})
    membership = pd.Series(["old"] * n + ["recent"] * n, index=rows["customer_id"])
    labels = segment_cards(rows, categories, membership, kind="x").set_index("segment_id")["label"]
    assert labels.to_dict() == {
        "old": "Garden lovers of long standing",
        "recent": "Garden lovers who joined recently",
    }


def test_source_codes_stay_out_of_labels():
    assert label_segment({"top_categories": [("DRUG GM", 0.6)]}) == "Customers"
    assert label_segment({"top_categories": [("MEAT-PCKGD", 0.6)]}) == "Customers"
    assert label_segment({"top_categories": [("P0012", 0.6)]}) == "Customers"
    assert label_segment({"top_categories": [("GARDEN", 0.6)]}) == "Garden lovers"
    assert label_segment({"top_categories": [("BAKERY", 0.6)]}) == "Bakery shoppers"
    # a configured noun makes a code readable
    assert label_segment({"top_categories": [("DRUG GM", 0.6)]}, {"DRUG GM": "pharmacy shoppers"}) == (
        "Pharmacy shoppers"
    )
    # an over-represented code is passed over for the next category with a noun
    row = {"top_categories": [("garden", 0.5)], "effects": {"category:DRUG GM": 0.4, "category:toys": 0.2}}
    assert label_segment(row) == "Gift shoppers"


def test_names_override_and_are_kept(data):
    profile, categories, _, membership, cards = data
    generated = _card(cards, "app")["label"]
    named = segment_cards(profile, categories, membership, kind="planted", names={"big": generated})
    labels = named.set_index("segment_id")["label"]
    assert labels["big"] == generated
    assert labels.is_unique  # the app segment moved aside
    assert labels["app"] != generated


def test_deterministic_and_profile_index_or_column(data):
    profile, categories, _, membership, cards = data
    again = segment_cards(profile.set_index("customer_id"), categories, membership, kind="planted")
    pd.testing.assert_frame_equal(cards, again)


def test_label_rules_by_hand():
    assert label_segment({}) == "Customers"
    assert label_segment({"top_categories": [("garden", 0.6)]}) == "Garden lovers"
    assert label_segment({"top_categories": [("stationery_and_more", 0.6)]}) == "Stationery shoppers"
    assert label_segment({"stage_mix": {"at_risk": 0.61, "active": 0.39}}) == "Lapsing customers"
    assert label_segment({"stage_mix": {"churned": 0.59, "active": 0.41}}) == "Customers"
    assert label_segment({"stage_mix": {"reactivated": 0.9}, "top_categories": [("toys", 1.0)]}) == (
        "Returning gift shoppers"
    )
    loyal_big = {
        "stage_mix": {"active": 0.9},
        "top_categories": [("electronics", 0.7)],
        "effects": {"orders": 1.2, "p_alive": 1.5, "average_order_value": 1.0, "app_share": 2.0},
    }
    label = label_segment(loyal_big)
    assert len(label.split()) <= MAX_LABEL_WORDS
    assert label.startswith("Active loyal") and label.endswith("tech buyers")
    # the over-represented category wins over the top spend category
    row = {
        "top_categories": [("grocery", 0.5)],
        "effects": {"category:garden": 0.3, "category:grocery": 0.05},
    }
    assert label_segment(row) == "Garden lovers"
    # effects may come from the distinguishing list alone
    row = {"distinguishing": [{"feature": "orders", "segment_mean": 1, "base_mean": 5, "effect_size": -0.9}]}
    assert label_segment(row) == "Occasional customers"
    bargain = {"effects": {"orders": 1.0, "average_order_value": -0.7, "category:grocery": 0.5}}
    assert label_segment(bargain) == "Bargain grocery regulars"


def test_membership_checks(data):
    profile, categories, truth, _, _ = data
    with pytest.raises(ValueError, match="more than once"):
        segment_cards(profile, categories, pd.concat([truth[:5], truth[:1]]), kind="x")
    with pytest.raises(ValueError, match="not in the profile"):
        segment_cards(profile, categories, pd.Series(["a"], index=["nobody"]), kind="x")
    empty = segment_cards(profile, categories, pd.Series([], dtype=object), kind="x")
    assert empty.empty and list(empty.columns) == list(CARD_COLUMNS)
    # missing segment ids are not members
    partial = truth[:10].astype(object)
    partial.iloc[:4] = None
    assert segment_cards(profile, categories, partial, kind="x")["size"].sum() == 6


def test_nan_heavy_layer(data):
    profile, categories, truth, _, _ = data
    prospects = truth[truth == "prospects"].copy()
    prospects[prospects.index[:100]] = "p1"
    prof = profile.copy()
    prof["clv"] = np.nan
    prof["age"] = pd.array([pd.NA] * len(prof), dtype="Int64")
    cards = segment_cards(prof, categories, prospects, kind="nan")
    assert cards["size"].sum() == 300 and cards["share"].sum() == pytest.approx(1.0)
    assert cards["revenue_share"].isna().all()  # no revenue at all in the layer
    assert cards["mean_clv"].isna().all()
    for _, card in cards.iterrows():
        assert card["demographics"]["mean_age"] is None
        assert card["top_categories"] == []
        for d in card["distinguishing"]:
            assert math.isfinite(d["effect_size"])
        assert card["label"].startswith("Prospective")
        assert "nothing stands out" in format_card(card) or "what sets them apart" in format_card(card)
    assert cards["label"].is_unique


def test_customer_card_values(data):
    profile, categories, truth, membership, cards = data
    customer = membership.index[membership == "bargain"][3]
    memberships = pd.DataFrame(
        {"customer_id": [customer, customer], "kind": ["planted", "rfm"], "segment_id": ["bargain", "loyal"]}
    )
    labels = {f"planted:{sid}": label for sid, label in zip(cards["segment_id"], cards["label"], strict=True)}
    card = customer_card(customer, profile, categories, memberships, labels)
    row = profile.set_index("customer_id").loc[customer]
    assert card["customer_id"] == customer
    assert card["stage"] == row["stage"]
    assert card["orders"] == row["orders"] and isinstance(card["orders"], int)
    for key in (
        "revenue",
        "average_order_value",
        "clv",
        "p_alive",
        "expected_purchases",
        "days_since_last_purchase",
    ):
        assert card[key] == pytest.approx(row[key]), key
    assert card["tiers"] == {
        "clv_tier": row["clv_tier"],
        "tenure_tier": "1y+",
        "engagement_tier": row["engagement_tier"],
    }
    assert card["rfm"]["segment"] == "loyal"
    assert card["segments"] == [
        {"kind": "planted", "segment_id": "bargain", "label": _card(cards, "bargain")["label"]},
        {"kind": "rfm", "segment_id": "loyal", "label": None},
    ]
    mine = categories[categories["customer_id"] == customer].sort_values("spend", ascending=False)
    assert [c for c, _ in card["favourite_categories"]] == mine["category"].tolist()[:3]
    assert [s for _, s in card["favourite_categories"]] == pytest.approx(mine["share"].tolist()[:3])
    shares = {c: row[f"{c}_share"] for c in ("pos", "web", "app")}
    assert card["preferred_channel"] == max(shares, key=shares.get)
    assert card["engagement"]["page_views_90d"] == row["page_views_90d"]
    assert card["engagement"]["email_open_rate"] == pytest.approx(row["email_open_rate"])
    assert card["engagement"]["app_events_90d"] == row["app_events_90d"]
    text = format_card(card)
    assert customer in text and _card(cards, "bargain")["label"] in text and "grocery" in text


def test_customer_card_of_a_prospect(data):
    profile, categories, truth, _, _ = data
    customer = truth.index[truth == "prospects"][0]
    card = customer_card(customer, profile.set_index("customer_id"), categories)
    assert card["stage"] == "prospect"
    assert card["orders"] == 0
    assert card["average_order_value"] is None and card["clv"] is None and card["p_alive"] is None
    assert card["days_since_last_purchase"] is None
    assert card["favourite_categories"] == [] and card["preferred_channel"] is None
    assert card["segments"] == []
    assert card["rfm"] == {"segment": None, "r_score": None, "f_score": None, "m_score": None}
    assert "stage prospect" in format_card(card)


def test_unknown_customer_raises(data):
    profile, categories, *_ = data
    with pytest.raises(KeyError, match="NOPE-1"):
        customer_card("NOPE-1", profile, categories)
    with pytest.raises(UnknownCustomerError) as info:
        customer_card("NOPE-1", profile, categories)
    assert isinstance(info.value, MicrosegError) and info.value.customer_id == "NOPE-1"


def test_format_segment_card(data):
    cards = data[4]
    card = _card(cards, "big").to_dict() | {"segment_id": "big"}
    text = format_card(card)
    assert text.splitlines()[0] == f"Segment big (planted): {card['label']}"
    assert "500 customers" in text and "electronics" in text and "average_order_value" in text
    assert format_card(cards.iloc[0]).startswith("Segment ")
    with pytest.raises(ValueError, match="not a card"):
        format_card({"what": 1})


def test_integer_and_categorical_segment_ids(data):
    profile, categories, truth, membership, cards = data
    codes = {name: i for i, name in enumerate(sorted(PLANTED))}
    numbered = membership.map(codes)
    by_number = segment_cards(
        profile, categories, numbered, kind="kmeans", names={str(codes["app"]): "App crowd"}
    )
    assert set(by_number["segment_id"]) == {codes[s] for s in membership.unique()}
    labels = by_number.set_index("segment_id")["label"]
    assert labels[codes["app"]] == "App crowd"
    assert labels[codes["big"]] == _card(cards, "big")["label"]
    categorical = segment_cards(profile, categories, membership.astype("category"), kind="planted")
    assert (
        categorical.set_index("segment_id")["label"].to_dict()
        == cards.set_index("segment_id")["label"].to_dict()
    )
    assert categorical["size"].sum() == len(membership)


def test_two_value_words_in_reading_order(data):
    profile, categories, truth, _, _ = data
    # against bargain buyers only, the big spenders also buy rarely
    membership = truth[truth.isin(["bargain", "big"])]
    label = _card(segment_cards(profile, categories, membership, kind="pair"), "big")["label"]
    assert label == "Active occasional big-spending tech buyers"

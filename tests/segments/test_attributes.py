"""Declared customer attributes end to end: a customers file with an age band, an income band, a
household size and a marital status (columns outside the fixed schema, kept in ``traits``) feeds
the demographic layer, rule segments and personas once ``[attributes]`` names them."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from microseg.config import parse_config
from microseg.errors import ConfigError
from microseg.project import Project

AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
INCOME_BANDS = ["<25k", "25-50k", "50-75k", "75-100k", "100k+"]
CONFIG = f"""
[project]
name = "attributes"
analysis_date = "2025-06-30"

[sources.customers]
path = "customers.csv"
kind = "customers"

[sources.orders]
path = "orders.csv"
event_type = "purchase"

[attributes.age_band]
type = "ordinal"
order = {json.dumps(AGE_BANDS)}
label = "aged {{value}}"

[attributes.income_band]
type = "ordinal"
order = {json.dumps(INCOME_BANDS)}
label = "earning {{value}}"

[attributes.household_size]
type = "numeric"

[attributes.marital_status]
column = "marital"

[segments]
rules = {{ affluent_families = "income_band in ('75-100k', '100k+') and household_size >= 3" }}
"""


def _write(root, n: int = 800, seed: int = 5) -> pd.Series:
    """Two planted kinds of household, alike in gender and region: young single renters on low
    incomes and older married families on high ones. Returns each customer's kind."""
    rng = np.random.default_rng(seed)
    family = np.arange(n) >= n // 2
    ids = [f"K{i:05d}" for i in range(n)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "gender": rng.choice(["F", "M"], n),
            "region": rng.choice(["North", "South"], n),
            "signup_date": "2024-01-01",
            "age_band": np.where(family, rng.choice(AGE_BANDS[3:5], n), rng.choice(AGE_BANDS[0:2], n)),
            "income_band": np.where(family, rng.choice(INCOME_BANDS[3:], n), rng.choice(INCOME_BANDS[:2], n)),
            "household_size": np.where(family, rng.integers(3, 6, n), rng.integers(1, 2, n)),
            "marital": np.where(family, "married", rng.choice(["single", "single", "married"], n)),
        }
    )
    customers.loc[3, "income_band"] = ""  # missing values are allowed
    customers.to_csv(root / "customers.csv", index=False)
    rows = []
    for i, customer in enumerate(ids):
        for j in range(rng.integers(1, 4)):
            day = dt.datetime(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 170)))
            rows.append((f"O{i:05d}-{j}", customer, day.isoformat(), "P1", 1, f"{rng.uniform(5, 50):.2f}"))
    pd.DataFrame(
        rows, columns=["order_id", "customer_id", "ts", "product_id", "quantity", "unit_price"]
    ).to_csv(root / "orders.csv", index=False)
    return pd.Series(np.where(family, "family", "single"), index=ids)


@pytest.fixture(scope="module")
def declared(tmp_path_factory):
    root = tmp_path_factory.mktemp("attributes")
    truth = _write(root)
    (root / "microseg.toml").write_text(CONFIG)
    project = Project(root)
    project.import_sources()
    project.run()
    yield project, truth
    project.close()


def test_the_demographic_layer_finds_the_households(declared):
    project, truth = declared
    demographic = project.memberships("demographic").set_index("customer_id")["segment_id"]
    assert adjusted_rand_score(truth[demographic.index], demographic) >= 0.9
    models = project.segment_models().set_index("kind")
    assert "attr:income_band" in json.loads(models.loc["demographic", "model"])["spec"]["sources"]


def test_labels_and_cards_name_the_attributes(declared):
    project, truth = declared
    segments = project.segments("demographic").set_index("segment_id")
    members = project.memberships("demographic").set_index("customer_id")["segment_id"]
    families = truth[members.index].eq("family").groupby(members).mean().idxmax()
    label = segments.loc[families, "label"]
    assert any(words in label for words in ("earning", "aged", "household size", "marital")), label
    card = json.loads(segments.loc[families, "card"])
    attributes = card["demographics"]["attributes"]
    assert list(attributes["income_band"]) == [b for b in INCOME_BANDS if b in attributes["income_band"]]
    assert sum(attributes["income_band"][b] for b in ("75-100k", "100k+")) > 0.95
    assert attributes["household_size"] == pytest.approx(4.0, abs=0.2)
    assert max(attributes["marital_status"], key=attributes["marital_status"].get) == "married"


def test_rules_use_the_attributes(declared):
    project, _ = declared
    customers = pd.read_csv(project.root / "customers.csv", dtype=str, keep_default_na=False)
    expected = set(
        customers.customer_id[
            customers.income_band.isin(["75-100k", "100k+"]) & (customers.household_size.astype(int) >= 3)
        ]
    )
    rule = project.memberships("rule")
    assert set(rule[rule.segment_id == "affluent_families"].customer_id) == expected and expected


def test_attribute_settings_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="attributes.age_band.order"):
        parse_config({"attributes": {"age_band": {"type": "ordinal"}}}, tmp_path)
    with pytest.raises(ConfigError, match=r"attributes.income.type: 'number' is not allowed \(did you mean"):
        parse_config({"attributes": {"income": {"type": "number"}}}, tmp_path)
    with pytest.raises(ConfigError, match="attributes.orders: is already a column of the customer profile"):
        parse_config({"attributes": {"orders": {}}}, tmp_path)
    with pytest.raises(ConfigError, match="attributes.x.weight: must be between 0 and 10"):
        parse_config({"attributes": {"x": {"weight": 11}}}, tmp_path)
    with pytest.raises(ConfigError, match="attributes.x.label: must contain {value}"):
        parse_config({"attributes": {"x": {"label": "rich"}}}, tmp_path)

"""Labels that say something: every label of every layer, on the demo (with product categories
named like a retailer's source codes) and on Online Retail, is unique in its layer, carries no
numeral and no source code, and no clustered segment is below the minimum size."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from microseg.project import Project

pytestmark = pytest.mark.slow

#: Demo categories renamed as a source system might export them.
SOURCE_CODES = {
    "grocery": "DRUG GM",  # configured below: "pharmacy shoppers"
    "home": "MEAT-PCKGD",
    "garden": "P0012",
    "fashion": "APPAREL WMNS",
    "electronics": "ELECTRONICS",
    "sports": "SPORTING GOODS",
}
CODE_WORDS = ("DRUG", "GM", "PCKGD", "P0012", "WMNS", "APPAREL")


def _assert_honest(project: Project) -> None:
    segments = project.segments()
    for kind, layer in segments.groupby("kind"):
        labels = layer["label"].astype(str)
        assert labels.str.casefold().is_unique, (kind, labels[labels.duplicated(keep=False)].tolist())
        for label in labels:
            assert not re.search(r"\s\d+$", label), (kind, label)  # no "Lapsing customers 2"
            if kind in ("behaviour", "demographic", "micro"):  # tiers are named by numbers: "Top 5% CLV"
                assert not re.search(r"\d", re.sub(r"in their \d0s", "", label)), (kind, label)
            assert not re.search(r"\b[A-Z]{4,}\b", label), (kind, label)  # no upper-case code
            assert not any(code in label.split() for code in CODE_WORDS), (kind, label)
    minimum = project.config.segments.min_segment_size
    for row in project.segment_models().itertuples():
        sizes = segments[segments.kind == row.kind].set_index("segment_id")["size"]
        if row.k > 1:
            ids = json.loads(row.model)["segment_ids"]
            assert sizes.reindex(ids).min() >= minimum, (row.kind, row.scope, sizes.reindex(ids))


@pytest.fixture(scope="module")
def coded_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels") / "demo"
    Project.create_demo(root, customers=4_000, seed=3).close()
    products = pd.read_parquet(root / "data" / "products.parquet")
    products["category"] = products["category"].replace(SOURCE_CODES)
    products.to_parquet(root / "data" / "products.parquet", index=False)
    with (root / "microseg.toml").open("a") as f:
        f.write('\n[segments]\ncategory_nouns = { "DRUG GM" = "pharmacy shoppers" }\n')
    project = Project(root)
    project.import_sources()
    project.run()
    yield project
    project.close()


def test_demo_labels_carry_no_numeral_and_no_source_code(coded_demo):
    _assert_honest(coded_demo)
    behaviour = coded_demo.segments("behaviour")["label"]
    # a configured noun makes a code readable; a readable upper-case name is written in words
    assert behaviour.str.contains("pharmacy shoppers").any(), behaviour.tolist()
    assert behaviour.str.contains("tech buyers").any(), behaviour.tolist()


@pytest.fixture
def retail(retail_run):
    return retail_run[0]


@pytest.mark.realdata
def test_online_retail_labels_carry_no_numeral_and_no_source_code(retail):
    _assert_honest(retail)


@pytest.mark.realdata
def test_customers_with_only_cancellations_are_not_prospects(retail):
    """33 customers of Online Retail have no purchase in the file, only cancellations of
    purchases made before it starts: they bought, so they are not prospects."""
    stage = retail.memberships("lifecycle").set_index("customer_id")["segment_id"]
    events = retail.warehouse.fetch_df(
        "SELECT customer_id, bool_and(event_type = 'cancellation') AS only_cancellations "
        "FROM events WHERE customer_id IS NOT NULL GROUP BY customer_id"
    ).set_index("customer_id")["only_cancellations"]
    cancel_only = set(events.index[events])
    assert len(cancel_only) == 33
    assert set(stage.index[stage == "returns_only"]) == cancel_only
    assert "prospect" not in set(stage)
    labels = retail.segments("lifecycle").set_index("segment_id")["label"]
    assert labels["returns_only"] == "Returns-only customers"

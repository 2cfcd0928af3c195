"""The UCI Online Retail file imported through a column mapping: exact, documented counts."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import pytest

from microseg.config import parse_config
from microseg.registry import STAGES
from tests.conftest import RETAIL_CONFIG as CONFIG
from tests.conftest import RETAIL_MONTHS, shared_file

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def retail_frame() -> pd.DataFrame:
    return pd.read_parquet(shared_file("online_retail_2010_2011.parquet"))


@pytest.fixture
def retail_project(retail_imported):
    """(project, first import, second import) of the shared imported and run Online Retail."""
    project, first, second, _ = retail_imported
    return project, first, second


def expected_counts(df: pd.DataFrame) -> dict[str, int]:
    """What the mapping should do, computed independently with pandas.

    The file has no line ids, so every line is an event: identical lines (the same customer
    buying the same item count at the same price in the same minute) are all kept.
    """
    cancel = df.InvoiceNo.str.startswith("C")
    bad = (~cancel & (df.Quantity <= 0)) | (df.UnitPrice < 0)
    good = df[~bad]
    return {
        "quarantined": int(bad.sum()),
        "duplicates": 0,
        "loaded": len(good),
        "identical_lines": int(good.duplicated(keep="first").sum()),
        "cancellations_loaded": int(good.InvoiceNo.str.startswith("C").sum()),
        "anonymous_loaded": int(good.CustomerID.isna().sum()),
    }


def test_documented_facts_of_the_file(retail_frame):
    df = retail_frame
    assert len(df) == 541_909
    assert df.CustomerID.isna().sum() == 135_080
    assert df.InvoiceNo.str.startswith("C").sum() == 9_288
    assert (df.Description == "nan").sum() == 1_454
    assert df.CustomerID.nunique() == 4_372


def test_import_reports_exact_counts(retail_project, retail_frame):
    _, first, _ = retail_project
    expected = expected_counts(retail_frame)
    assert first.rows_read == 541_909
    assert first.rows_read == first.loaded + first.duplicates + first.quarantined
    assert first.quarantined == expected["quarantined"] == 1_338
    assert first.duplicates == expected["duplicates"]
    assert first.corrected == 0
    assert first.loaded == expected["loaded"] == 540_571
    # lines repeated verbatim: collapsed into one event by the earlier content key, now kept
    assert expected["identical_lines"] == 5_268
    assert first.details["missing"]["customer_id (CustomerID)"] == 135_080
    assert first.details["missing"]["product.name (Description)"] == 1_454
    assert first.details["by_event_type"]["cancellation"] == expected["cancellations_loaded"]
    assert first.details["anonymous"] == expected["anonymous_loaded"]


def test_every_quarantined_row_has_a_reason(retail_project, retail_frame):
    project, first, _ = retail_project
    quarantined = project.quarantine("retail")
    assert len(quarantined) == first.quarantined
    df = retail_frame
    rows = quarantined.set_index("row_number")
    for row, reason in rows.reason.items():
        original = df.iloc[row - 1]
        if original.UnitPrice < 0:
            assert reason.startswith("unit_price (UnitPrice):") and "is negative" in reason
        else:
            assert reason == f"quantity (Quantity): {original.Quantity} must be positive for a purchase"


def test_second_import_adds_nothing(retail_project):
    project, first, second = retail_project
    assert second.loaded == second.corrected == 0
    assert second.duplicates == first.loaded + first.duplicates
    assert second.quarantined == first.quarantined
    assert project.quarantine_count("retail") == first.quarantined  # replaced, not added again


def test_customers_products_and_money(retail_project, retail_frame):
    project, first, _ = retail_project
    wh = project.warehouse
    assert wh.count("customers") == 4_372
    assert wh.count("events") == first.loaded
    total = wh.fetch("SELECT sum(amount) FROM events")[0][0]
    df = retail_frame
    kept = df.loc[~df.index.isin(project.quarantine("retail").row_number - 1)]
    assert total == sum(
        Decimal(str(q)) * Decimal(str(p)) for q, p in zip(kept.Quantity, kept.UnitPrice, strict=True)
    )
    assert round(float((df.Quantity * df.UnitPrice).sum()), 2) == 9_747_747.93


def test_summary_has_every_customer_once(retail_project, retail_frame):
    project, _, _ = retail_project
    summary = project.customer_summary()
    assert len(summary) == 4_372 and summary.customer_id.is_unique
    df = retail_frame.dropna(subset=["CustomerID"])
    purchases = df[~df.InvoiceNo.str.startswith("C") & (df.Quantity > 0) & (df.UnitPrice >= 0)]
    orders = purchases.groupby(purchases.CustomerID.astype(int).astype(str)).InvoiceNo.nunique()
    got = summary.set_index("customer_id").orders
    assert got.reindex(orders.index).tolist() == orders.tolist()
    assert (got.drop(orders.index) == 0).all()  # customers who only cancelled


def test_config_of_this_test_is_valid(tmp_path):
    import tomllib

    data = tomllib.loads(CONFIG.format(path="x.parquet"))
    config = parse_config(data, tmp_path)
    assert config.sources["retail"].classify[0].starts_with == "C"


def test_segmentation_adds_up(retail_project):
    """Stages, tiers, clusters and personas on real data: every customer once per layer."""
    project, _, _ = retail_project
    memberships = project.memberships()
    segments = project.segments()
    for kind in (
        "lifecycle",
        "clv_tier",
        "rfm_tier",
        "tenure_tier",
        "engagement_tier",
        "behaviour",
        "demographic",
        "micro",
    ):
        layer = memberships[memberships.kind == kind]
        assert len(layer) == 4_372 and layer.customer_id.is_unique, kind
        cards = segments[segments.kind == kind]
        assert cards["size"].sum() == 4_372, kind
        assert cards["share"].sum() == pytest.approx(1.0), kind
        assert cards.label.is_unique, kind
    stages = segments[segments.kind == "lifecycle"].set_index("segment_id")["size"]
    assert set(stages.index) <= set(STAGES)
    # the customers without a purchase only cancelled purchases made before the file starts:
    # buyers with only returns, not prospects
    summary = project.customer_summary()
    assert stages.get("returns_only", 0) == (summary.orders == 0).sum() == 33
    assert "prospect" not in stages.index
    behaviour = segments[segments.kind == "behaviour"]
    assert behaviour.revenue_share.sum() == pytest.approx(1.0)


def test_twelve_monthly_snapshots_of_online_retail(retail_history):
    project, result = retail_history
    dates = RETAIL_MONTHS
    assert [run.as_of for run in result.runs] == dates and result.computed == dates
    events = project.warehouse.fetch_df(
        "SELECT customer_id, min(ts) AS first FROM events WHERE customer_id IS NOT NULL GROUP BY ALL"
    )
    for date in dates:
        stages = project.memberships("lifecycle", date)
        # each snapshot holds the customers seen by its date, every one once
        seen = (events["first"] < pd.Timestamp(date) + pd.Timedelta(days=1)).sum()
        assert len(stages) == seen and stages.customer_id.is_unique, date


@pytest.mark.parametrize("kind", ["lifecycle", "clv_tier", "rfm_tier", "behaviour"])
def test_online_retail_migration_rows_sum_to_source_sizes(retail_history, kind):
    project, _ = retail_history
    dates = RETAIL_MONTHS
    for start, end in zip(dates[:-1], dates[1:], strict=True):
        matrix = project.transition_matrix(kind, start, end)
        sizes = project.memberships(kind, start)["segment_id"].value_counts()
        new = len(
            set(project.memberships(kind, end).customer_id)
            - set(project.memberships(kind, start).customer_id)
        )
        if new:
            sizes["(new)"] = new
        assert matrix.sum(axis=1).to_dict() == sizes.to_dict(), (kind, start)
        # columns sum to the sizes at the end (nobody disappears from a later snapshot)
        ends = project.memberships(kind, end)["segment_id"].value_counts()
        assert matrix.sum(axis=0).to_dict() == ends.to_dict(), (kind, end)


def test_online_retail_forecast_backtest(retail_history):
    project, _ = retail_history
    errors = project.forecast_backtest()
    assert len(errors) >= 9
    print(errors.to_string())
    assert errors["mae_chain"].mean() < errors["mae_naive"].mean()

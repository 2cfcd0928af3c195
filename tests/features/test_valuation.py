"""Per-customer values in the pipeline: RFM, scores, P(alive), expected purchases, CLV."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from microseg.cli import main
from microseg.config import ClvConfig
from microseg.features.valuation import PREDICTIONS, rfm_table, value_customers
from microseg.project import Project

AS_OF = dt.date(2025, 12, 31)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo project of 4,000 customers, imported and run."""
    root = tmp_path_factory.mktemp("values")
    project = Project.create_demo(root, customers=4_000, seed=3)
    project.import_sources(["customers", "purchases"])
    result = project.run()
    yield project, result
    project.close()


def test_run_values_every_buyer_with_predictions(demo):
    project, result = demo
    # nothing to warn about the values: every buyer has a CLV and the model finds dropout
    assert result.with_clv == result.valued and result.dropout_identified is True
    assert not [w for w in result.warnings if "CLV" in w or "cannot tell" in w]
    values = project.customer_values()
    summary = project.customer_summary()
    buyers = summary[summary.orders > 0]
    assert set(values.customer_id) == set(buyers.customer_id)
    assert result.valued == len(values)
    assert values[list(PREDICTIONS)].notna().all().all()
    assert values.p_alive.between(0, 1).all() and (values.churn_risk == 1 - values.p_alive).all()
    assert (values.clv >= 0).all() and (values.expected_spend > 0).all()
    # one-time buyers' recency is 0; frequency counts repeat transaction days
    assert (values.loc[values.frequency == 0, "recency"] == 0).all()
    assert (values.frequency == values.transactions - 1).all()
    fits = project.model_fits()
    chosen = project.value_models().query("status == 'chosen'").model.item()
    assert set(fits.model) == {chosen, "GammaGamma"} and (fits.se > 0).all()


def test_predictions_recover_the_planted_truth(demo):
    project, _ = demo
    truth = pd.read_parquet(project.root / "data" / "truth.parquet")
    values = project.customer_values().merge(truth, on="customer_id")
    # one-time buyers are alive for BG/NBD whatever happened; among repeat buyers the dropouts show
    by_stage = values[values.frequency > 0].groupby("stage").p_alive.mean()
    assert by_stage["churned"] < by_stage["active"] - 0.1
    assert by_stage["at_risk"] < by_stage["active"] - 0.1
    # the expected purchases rank customers like their true buying rates do
    alive = values[values.alive]
    rank_corr = alive.expected_purchases.rank().corr(alive.lam.rank())
    assert rank_corr > 0.6
    # expected spend tracks the planted mean spend
    repeat = values[values.frequency >= 3]
    assert np.corrcoef(np.log(repeat.expected_spend), np.log(repeat.spend_mean))[0, 1] > 0.7


def test_values_are_deterministic(demo, tmp_path):
    project, result = demo
    first = project.customer_values().drop(columns="as_of")
    project.run(result.as_of)
    again = project.customer_values().drop(columns="as_of")
    pd.testing.assert_frame_equal(first, again)


def test_one_time_buyers_only_give_a_warning_not_nans():
    events = ibis.memtable(
        {
            "customer_id": [f"c{i}" for i in range(50)],
            "event_type": ["purchase"] * 50,
            "ts": [dt.datetime(2024, 1, 1) + dt.timedelta(days=i) for i in range(50)],
            "amount": [10.0 + i for i in range(50)],
        }
    )
    rfm = rfm_table(events, dt.date(2024, 6, 30), "week").to_pyarrow()
    valuation = value_customers(rfm, dt.date(2024, 6, 30), ClvConfig(model="bgnbd"))
    assert valuation.unavailable.startswith("BG/NBD could not be fitted: every customer has frequency 0")
    assert valuation.model is None and valuation.with_clv == 0 and valuation.warnings == []
    models = valuation.models.to_pandas().set_index("model")
    assert (models.status == "failed").all()
    assert models.loc["GammaGamma", "reason"] == "no customers: frequency and monetary_value are empty"
    table = valuation.values
    assert table.num_rows == 50 and table.column("rfm_segment").null_count == 0
    for name in PREDICTIONS:
        assert table.column(name).null_count == 50  # empty, not NaN
    assert valuation.fits.empty


def test_no_buyers_at_all():
    rfm = pa.table(
        {
            c: pa.array([], t)
            for c, t in [
                ("customer_id", pa.string()),
                ("frequency", pa.int64()),
                ("recency", pa.float64()),
                ("T", pa.float64()),
                ("monetary_value", pa.float64()),
                ("transactions", pa.int64()),
                ("total_spend", pa.float64()),
                ("days_since_last", pa.int64()),
            ]
        }
    )
    valuation = value_customers(rfm, AS_OF, ClvConfig())
    assert valuation.values.num_rows == 0 and "nothing to value" in valuation.warnings[0]


def test_values_command(demo, capsys):
    project, _ = demo
    assert main(["-p", str(project.root), "values", "--top", "3"]) == 0
    out = capsys.readouterr().out
    top = project.customer_values().sort_values("clv", ascending=False).customer_id.head(3)
    assert all(customer in out for customer in top)

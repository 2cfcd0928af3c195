"""Online Retail, monthly: the 9-day stub at the end, and each customer's own forecast.

The log ends on 9 December 2011. `run` on the analysis date and `backfill` from December 2010
store the month ends up to 30 November and 9 December: the last period is nine days long.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from microseg.cli import main, state
from microseg.errors import MicrosegError

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

END, LAST_MONTH_END = dt.date(2011, 12, 9), dt.date(2011, 11, 30)


@pytest.fixture(scope="module")
def retail(retail_history):
    """The shared Online Retail history: the last day and the twelve month ends before it (a
    backfill from December 2010 finds every snapshot up to date)."""
    project, _ = retail_history
    project.backfill(dt.date(2010, 12, 31))
    return project


def test_the_nine_days_after_the_last_month_end_are_a_stub(retail):
    periods = retail.periods()
    assert len(periods.dates) == 13 and periods.cadence == "month"
    assert periods.irregular()[["from_date", "to_date", "days", "kind"]].values.tolist() == [
        [LAST_MONTH_END, END, 9, "stub"]
    ]
    assert retail.snapshots()["period"].iloc[-1] == "stub (9 days)"


def test_the_stub_is_neither_tested_nor_learned_nor_backtested(retail):
    assert retail.alert_period() == (dt.date(2011, 10, 31), LAST_MONTH_END)
    with pytest.raises(MicrosegError, match="9-day stub"):
        retail.alerts(as_of=END)
    errors = retail.forecast_backtest()
    assert len(errors) == 9 and pd.to_datetime(errors["target"]).dt.date.max() == LAST_MONTH_END
    forecast = retail._forecaster("lifecycle", "clv_tier")
    assert max(forecast.chain.snapshot_dates_).date() == LAST_MONTH_END
    assert len(forecast.current) == len(retail.memberships("lifecycle", END))


def test_each_customer_gets_their_own_probability(retail, capsys):
    errors = retail.forecast_backtest()
    means = errors.mean(numeric_only=True)
    print("\n" + errors.to_string() + "\n" + means.to_string())
    assert means["log_loss_customer"] < means["log_loss_chain"]
    assert means["brier_customer"] < means["brier_chain"]
    choice = retail.forecast_choice()
    assert choice.model == "customer"
    top = retail.at_risk().head(10)
    assert top["p_move"].nunique() >= 8  # not one figure per (stage, CLV tier)
    table = retail.next_period()
    active_top = table[(table["segment"] == "active") & (table["group"] == "top_1")]
    assert active_top["at_risk"].nunique() > 5
    state.debug = False
    assert main(["--project", str(retail.root), "forecast"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Next-period probabilities: the customer model" in out
    assert "CLV at stake = P(move to at_risk or churned next period) x the customer's CLV" in out
    assert "9-day stub" in out

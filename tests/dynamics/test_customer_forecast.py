"""Per-customer next-period probabilities, their scores, and the choice against the group chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microseg.dynamics.customer_forecast import CustomerForecaster
from microseg.dynamics.forecast import GONE, MarkovForecaster, backtest
from microseg.dynamics.model_choice import (
    BACKTEST_COLUMNS,
    CHAIN,
    CUSTOMER,
    EPSILON,
    choose,
    compare_models,
    scores,
)
from microseg.errors import NotFittedError

MONTH_ENDS = pd.date_range("2024-01-31", periods=8, freq="ME")


def buying_panel(customers: int = 800, seed: int = 1) -> pd.DataFrame:
    """Customers who buy at their own rhythm until they stop for good; the stage on each month
    end follows from how late they are (days since the last purchase over their rhythm), as the
    lifecycle rules do. Who crosses a line next month depends on the customer, not the stage."""
    rng = np.random.default_rng(seed)
    rhythm = rng.uniform(10, 80, customers)
    alive = np.ones(customers, dtype=bool)
    last = -rng.uniform(0, rhythm)  # day of the last purchase, day 0 = the first month end
    tier = np.where(rng.random(customers) < 0.3, "top", "rest")
    rows = []
    for month, day in enumerate(MONTH_ENDS):
        today = 30.0 * month
        if month:
            alive &= rng.random(customers) > 0.06
            for i in np.flatnonzero(alive):
                t = today - 30 + rng.exponential(rhythm[i])
                while t <= today:
                    last[i] = t
                    t += rng.exponential(rhythm[i])
        late = (today - last) / rhythm
        stage = np.where(late >= 4, "churned", np.where(late >= 1.6, "at_risk", "active"))
        for i in range(customers):
            rows.append((f"c{i:04d}", day, stage[i], tier[i], today - last[i], rhythm[i]))
    return pd.DataFrame(
        rows, columns=["customer_id", "as_of", "state", "group", "days_since_last_purchase", "rhythm_days"]
    )


def memoryless_panel(customers: int = 800, seed: int = 2) -> pd.DataFrame:
    """Stages that move by one fixed chain, whatever the customer's (random) history says."""
    rng = np.random.default_rng(seed)
    states = np.array(["active", "at_risk", "churned"])
    chain = np.array([[0.8, 0.15, 0.05], [0.3, 0.5, 0.2], [0.05, 0.05, 0.9]])
    state = rng.integers(0, 3, customers)
    rows = []
    for day in MONTH_ENDS:
        noise = rng.uniform(0, 100, customers)
        for i in range(customers):
            rows.append((f"c{i:04d}", day, states[state[i]], "all", noise[i], 30.0))
        state = np.array([rng.choice(3, p=chain[s]) for s in state])
    return pd.DataFrame(
        rows, columns=["customer_id", "as_of", "state", "group", "days_since_last_purchase", "rhythm_days"]
    )


@pytest.fixture(scope="module")
def buying() -> pd.DataFrame:
    return buying_panel()


# -- scores ------------------------------------------------------------------------------------


def test_scores_match_their_definitions():
    proba = pd.DataFrame({"a": [0.7, 0.1, 0.5], "b": [0.2, 0.6, 0.5], "c": [0.1, 0.3, 0.0]})
    actual = ["a", "c", "b"]
    log_loss, brier = scores(proba, actual)
    assert log_loss == pytest.approx(-(np.log(0.7) + np.log(0.3) + np.log(0.5)) / 3)
    by_hand = [
        (0.7 - 1) ** 2 + 0.2**2 + 0.1**2,
        0.1**2 + 0.6**2 + (0.3 - 1) ** 2,
        0.5**2 + (0.5 - 1) ** 2 + 0.0**2,
    ]
    assert brier == pytest.approx(np.mean(by_hand))
    assert scores(pd.DataFrame({"a": [1.0], "b": [0.0]}), ["a"]) == (0.0, 0.0)


def test_an_outcome_called_impossible_costs_the_clipped_log_loss():
    # a segment with no column, or a probability of 0, is floored at EPSILON
    log_loss, brier = scores(pd.DataFrame({"a": [1.0, 1.0]}), ["a", GONE])
    assert log_loss == pytest.approx(-np.log(EPSILON) / 2)
    assert brier == pytest.approx((0 + 2) / 2)  # sure and wrong: 1 for the miss, 1 for the outcome
    with pytest.raises(ValueError, match="2 rows of probabilities but 1 outcomes"):
        scores(pd.DataFrame({"a": [1.0, 1.0]}), ["a"])


# -- the customer model ------------------------------------------------------------------------


def test_customers_of_one_stage_and_tier_get_their_own_probabilities(buying):
    model = CustomerForecaster().fit(buying)
    latest = buying[buying["as_of"] == MONTH_ENDS[-1]]
    proba = model.predict_proba(latest)
    assert list(proba.index) == list(latest["customer_id"])
    assert proba.to_numpy().sum(axis=1) == pytest.approx(1.0)
    active_top = latest[(latest["state"] == "active") & (latest["group"] == "top")]
    p_at_risk = proba.loc[active_top["customer_id"], "at_risk"]
    assert p_at_risk.nunique() > 10
    # the closer to the at-risk line (lateness 1.6), the likelier the move
    lateness = (active_top["days_since_last_purchase"] / active_top["rhythm_days"]).to_numpy()
    assert np.corrcoef(lateness, p_at_risk.to_numpy())[0, 1] > 0.5


def test_the_customer_model_beats_the_chain_when_history_matters(buying):
    table = compare_models(
        buying,
        chain_options={"condition_on_group": True, "window": 3},
        customer_options={"window": 3},
    )
    assert list(table.columns) == BACKTEST_COLUMNS and len(table) == len(MONTH_ENDS) - 3
    assert (table["log_loss_customer"] < table["log_loss_chain"]).all()
    assert (table["brier_customer"] < table["brier_chain"]).all()
    choice = choose(table)
    assert choice.model == CUSTOMER and "better on both scores" in choice.reason


def test_the_chain_is_kept_when_history_says_nothing():
    table = compare_models(memoryless_panel(), chain_options={"window": 3}, customer_options={"window": 3})
    means = table.mean(numeric_only=True)
    assert means["log_loss_customer"] >= means["log_loss_chain"] - 0.01
    assert choose(table).model == CHAIN


def test_the_chain_columns_of_the_backtest_are_the_chain_backtest():
    panel = buying_panel(300, seed=5)
    table = compare_models(panel, chain_options={"smoothing": 0.5, "window": 2}, customer_options=None)
    reference = backtest(panel, smoothing=0.5, window=2)
    assert table["mae_chain"].to_numpy() == pytest.approx(reference["mae_model"].to_numpy())
    assert table["mae_naive"].to_numpy() == pytest.approx(reference["mae_naive"].to_numpy())
    assert table["log_loss_customer"].isna().all()
    assert choose(table).model == CHAIN and "too few" in choose(table).reason


def test_it_learns_from_the_earlier_snapshot_of_each_pair_only(buying):
    """Point in time: the history on the later date of a period is not an input of that period."""
    changed = buying.copy()
    last = changed["as_of"] == MONTH_ENDS[-1]
    changed.loc[last, "days_since_last_purchase"] = 0.0
    changed.loc[last, "rhythm_days"] = 999.0
    current = buying[buying["as_of"] == MONTH_ENDS[-2]]
    a = CustomerForecaster(window=2).fit(buying).predict_proba(current)
    b = CustomerForecaster(window=2).fit(changed).predict_proba(current)
    pd.testing.assert_frame_equal(a, b)


def test_skipped_periods_and_the_window(buying):
    model = CustomerForecaster(window=2).fit(buying, skip=[MONTH_ENDS[-1]])
    assert model.periods_ == 2 and model.rows_ == 2 * buying["customer_id"].nunique()
    assert list(model.snapshot_dates_) == list(MONTH_ENDS[-4:-1])
    assert model.period_days_ == pytest.approx(
        np.median(np.diff(MONTH_ENDS[-4:-1]).astype("timedelta64[D]").astype(int))
    )


def test_customers_who_leave_are_a_class(buying):
    thinned = buying[~((buying["as_of"] == MONTH_ENDS[-1]) & buying["customer_id"].str.endswith("7"))]
    model = CustomerForecaster(window=1).fit(thinned)
    assert GONE in model.classes_


def test_same_input_same_probabilities(buying):
    current = buying[buying["as_of"] == MONTH_ENDS[-1]]
    a = CustomerForecaster().fit(buying.sample(frac=1, random_state=3)).predict_proba(current)
    b = CustomerForecaster().fit(buying).predict_proba(current)
    pd.testing.assert_frame_equal(a, b)


def test_one_class_learned_is_certain():
    panel = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a", "b"],
            "as_of": pd.to_datetime(["2024-01-31"] * 2 + ["2024-02-29"] * 2),
            "state": ["active"] * 4,
        }
    )
    model = CustomerForecaster().fit(panel)
    assert model.predict_proba(panel.iloc[:2]).to_dict("list") == {"active": [1.0, 1.0]}


def test_first_step_of_the_sizes(buying):
    chain = MarkovForecaster(condition_on_group=True).fit(buying)
    current = buying[buying["as_of"] == MONTH_ENDS[-1]]
    # the chain's own probabilities as the first step give the chain's sizes
    own = chain.predict_proba(current)
    for periods in (1, 2):
        pd.testing.assert_series_equal(
            chain.predict_sizes(current, periods, first_step=own), chain.predict_sizes(current, periods)
        )
    customer = CustomerForecaster().fit(buying).predict_proba(current)
    sizes = chain.predict_sizes(current, first_step=customer)
    assert sizes.sum() == pytest.approx(len(current) + chain.inflow_.sum())
    expected = customer.sum().reindex(sizes.index, fill_value=0) + chain.inflow_.reindex(
        sizes.index, fill_value=0
    )
    assert sizes.to_numpy() == pytest.approx(expected.to_numpy())


# -- bad input -----------------------------------------------------------------------------------


def test_bad_input_is_named(buying):
    with pytest.raises(ValueError, match="missing column 'state'"):
        CustomerForecaster().fit(buying.drop(columns="state"))
    with pytest.raises(ValueError, match="needs one period"):
        CustomerForecaster().fit(buying[buying["as_of"] == MONTH_ENDS[0]])
    twice = pd.concat([buying.iloc[:1], buying])
    with pytest.raises(ValueError, match="more than one row for customer 'c0000'"):
        CustomerForecaster().fit(twice)
    with pytest.raises(ValueError, match="'learning_rate'"):
        CustomerForecaster(learning_rate=0).fit(buying)
    with pytest.raises(NotFittedError):
        CustomerForecaster().predict_proba(buying)
    with pytest.raises(ValueError, match="forecast model must be one of auto, chain, customer"):
        choose(pd.DataFrame(), "markov")

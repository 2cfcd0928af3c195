"""Markov forecast of segment states: hand-counted matrices, forecasts, at-risk value and backtests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microseg.dynamics.forecast import GONE, MarkovForecaster, backtest
from microseg.errors import NotFittedError

DATES = pd.to_datetime(["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30"])

# customer -> state on each of DATES (None: absent from that snapshot)
HISTORY = {
    "a": ("A", "A", "B", "B"),
    "b": ("A", "B", "B", "C"),
    "c": ("A", None, "B", None),  # leaves after d0 (gone), back at d2 (inflow), leaves again
    "d": ("B", "B", "C", "C"),
    "e": ("B", "A", "A", "A"),
    "f": (None, "A", "A", "B"),  # new at d1
    "g": (None, None, "C", "C"),  # new at d2
    "h": (None, None, None, "D"),  # new at d3, in a state never seen before
}

# Transitions of the first two periods (d0 -> d1 -> d2), counted by hand:
#   d0 -> d1: a A->A, b A->B, c A->gone, d B->B, e B->A; inflow f->A
#   d1 -> d2: a A->B, b B->B, d B->C, e A->A, f A->A; inflow g->C, c->B
STATES = ["A", "B", "C", GONE]
COUNTS = np.array(
    [
        [3, 2, 0, 1],  # A: a, e, f stay; b, a to B; c leaves
        [1, 2, 1, 0],  # B: e to A; d, b stay; d to C
        [0, 0, 0, 0],  # C: never seen at the start of a period
        [0, 0, 0, 0],  # gone: nobody leaves it
    ]
)
INFLOW = np.array([1, 1, 1, 0]) / 2  # f (A), c (B), g (C) over 2 periods


def snapshots(n_dates: int = 3, history: dict = HISTORY) -> pd.DataFrame:
    rows = [
        (customer, DATES[i], state)
        for customer, states in history.items()
        for i, state in enumerate(states[:n_dates])
        if state is not None
    ]
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "state"])


def at(table: pd.DataFrame, i: int) -> pd.DataFrame:
    """The snapshot on DATES[i] as a ``current`` table."""
    return table.loc[table["as_of"] == DATES[i], ["customer_id", "state"]].reset_index(drop=True)


def by_hand(smoothing: float) -> np.ndarray:
    """COUNTS as probabilities, ``smoothing`` added to every cell of rows with data; empty rows stay."""
    k = len(STATES)
    matrix = np.eye(k)
    for i in range(k):
        total = COUNTS[i].sum()
        if total > 0:
            matrix[i] = (COUNTS[i] + smoothing) / (total + smoothing * k)
    return matrix


# -- fit ---------------------------------------------------------------------------------------


def test_counts_and_matrix_without_smoothing_are_counts_over_row_sums():
    model = MarkovForecaster(smoothing=0).fit(snapshots())

    assert model.states_ == STATES  # sorted, GONE last although "(" sorts before letters
    np.testing.assert_array_equal(model.counts_.to_numpy(), COUNTS)
    assert list(model.counts_.index) == STATES and list(model.counts_.columns) == STATES
    P = model.transition_matrix_.to_numpy()
    np.testing.assert_allclose(P[0], [3 / 6, 2 / 6, 0, 1 / 6])
    np.testing.assert_allclose(P[1], [1 / 4, 2 / 4, 1 / 4, 0])
    np.testing.assert_array_equal(P[2:], np.eye(4)[2:])  # C and gone: identity rows
    np.testing.assert_allclose(model.inflow_.to_numpy(), INFLOW)
    assert list(model.inflow_.index) == STATES
    assert model.periods_ == 2
    assert list(model.snapshot_dates_) == list(DATES[:3])
    assert model.group_matrices_ == {}


def test_counts_match_an_independent_count_over_consecutive_snapshots():
    table = snapshots()
    model = MarkovForecaster(smoothing=0).fit(table)
    wide = table.pivot(index="customer_id", columns="as_of", values="state")
    expected = pd.DataFrame(0, index=STATES, columns=STATES)
    for start, end in zip(wide.columns[:-1], wide.columns[1:], strict=True):
        for source, target in zip(wide[start], wide[end], strict=True):
            if isinstance(source, str):
                expected.loc[source, target if isinstance(target, str) else GONE] += 1
    np.testing.assert_array_equal(model.counts_.to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("window", [1, 2])
def test_window_learns_from_the_latest_periods_only(window):
    table = snapshots(4)
    model = MarkovForecaster(smoothing=0, window=window).fit(table)
    wide = table.pivot(index="customer_id", columns="as_of", values="state")
    expected = pd.DataFrame(0, index=model.states_, columns=model.states_)
    arrivals = pd.Series(0.0, index=model.states_)
    pairs = list(zip(wide.columns[:-1], wide.columns[1:], strict=True))[-window:]
    for start, end in pairs:
        for source, target in zip(wide[start], wide[end], strict=True):
            if isinstance(source, str):
                expected.loc[source, target if isinstance(target, str) else GONE] += 1
            elif isinstance(target, str):
                arrivals[target] += 1
    np.testing.assert_array_equal(model.counts_.to_numpy(), expected.to_numpy())
    np.testing.assert_allclose(model.inflow_.to_numpy(), arrivals.to_numpy() / window)
    assert model.periods_ == window and list(model.snapshot_dates_) == list(DATES[-window - 1 :])
    # a window longer than the history is all of it
    everything = MarkovForecaster(smoothing=0, window=10).fit(table)
    pd.testing.assert_frame_equal(everything.counts_, MarkovForecaster(smoothing=0).fit(table).counts_)


@pytest.mark.parametrize("smoothing", [0.5, 1, 3.0])
def test_smoothing_adds_pseudo_counts_to_every_cell_of_rows_with_data(smoothing):
    model = MarkovForecaster(smoothing=smoothing).fit(snapshots())

    P = model.transition_matrix_.to_numpy()
    np.testing.assert_allclose(P, by_hand(smoothing))
    np.testing.assert_allclose(P[0], (np.array([3, 2, 0, 1]) + smoothing) / (6 + 4 * smoothing))
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(P[2:], np.eye(4)[2:])  # smoothing leaves empty rows alone
    np.testing.assert_array_equal(model.counts_.to_numpy(), COUNTS)  # counts stay raw


def test_no_gone_state_when_nobody_leaves():
    table = snapshots(2, {"a": ("x", "y"), "b": ("y", "y"), "c": (None, "z")})
    model = MarkovForecaster(smoothing=0).fit(table)

    assert model.states_ == ["x", "y", "z"]
    np.testing.assert_array_equal(model.transition_matrix_.to_numpy(), [[0, 1, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(model.inflow_.to_numpy(), [0, 0, 1])


def test_fit_does_not_depend_on_row_order_id_type_or_date_type():
    table = snapshots()
    reference = MarkovForecaster(smoothing=0.5).fit(table)

    shuffled = table.sample(frac=1, random_state=3)
    ids = {c: i for i, c in enumerate(HISTORY)}
    variants = [
        shuffled,
        shuffled.assign(customer_id=shuffled["customer_id"].map(ids)),  # integer ids
        shuffled.assign(customer_id=shuffled["customer_id"].astype(object)),  # object, not Arrow, strings
        shuffled.assign(as_of=shuffled["as_of"].dt.strftime("%Y-%m-%d")),  # dates as text
        shuffled.assign(as_of=[d.date() for d in shuffled["as_of"]]),  # datetime.date objects
    ]
    for variant in variants:
        model = MarkovForecaster(smoothing=0.5).fit(variant)
        assert model.states_ == reference.states_
        pd.testing.assert_frame_equal(model.counts_, reference.counts_)
        pd.testing.assert_frame_equal(model.transition_matrix_, reference.transition_matrix_)
        pd.testing.assert_series_equal(model.inflow_, reference.inflow_)
        assert list(model.snapshot_dates_) == list(DATES[:3])


# -- predict_proba -----------------------------------------------------------------------------


def test_predict_proba_rows_are_the_matrix_rows_of_each_customers_state():
    model = MarkovForecaster(smoothing=0.5).fit(snapshots())
    current = pd.DataFrame({"customer_id": ["p", "q", "r", "s", "t"], "state": ["B", "A", "C", "A", GONE]})

    proba = model.predict_proba(current)

    assert list(proba.index) == ["p", "q", "r", "s", "t"]
    assert proba.index.name == "customer_id"
    assert list(proba.columns) == STATES
    P = by_hand(0.5)
    np.testing.assert_allclose(proba.to_numpy(), P[[1, 0, 2, 0, 3]])
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_predict_proba_unseen_states_are_appended_sorted_and_stay_put():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    current = pd.DataFrame({"customer_id": [1, 2, 3], "state": ["Z", "A", "Y"]})

    proba = model.predict_proba(current)

    assert list(proba.columns) == [*STATES, "Y", "Z"]
    np.testing.assert_array_equal(proba.loc[1].to_numpy(), [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(proba.loc[3].to_numpy(), [0, 0, 0, 0, 1, 0])
    np.testing.assert_allclose(proba.loc[2].to_numpy(), [*by_hand(0)[0], 0, 0])


def test_predict_proba_accepts_a_categorical_state_column():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    current = pd.DataFrame(
        {"customer_id": ["p", "q"], "state": pd.Categorical(["B", "A"], categories=["A", "B", "C", "Q"])}
    )
    proba = model.predict_proba(current)
    assert list(proba.columns) == STATES
    np.testing.assert_allclose(proba.to_numpy(), by_hand(0)[[1, 0]])


# -- conditioning on a group -------------------------------------------------------------------


def grouped_snapshots() -> pd.DataFrame:
    """Two dates; g1 has 4 customers in A and 2 in B, g2 has 2 in A and 1 in B."""
    d0, d1 = DATES[:2]
    moves = [
        # customer, group at d0, from, to, group at d1
        ("g1-1", "g1", "A", "A", "g1"),
        ("g1-2", "g1", "A", "A", "g1"),
        ("g1-3", "g1", "A", "A", "g1"),
        ("g1-4", "g1", "A", "B", "g1"),
        ("g1-5", "g1", "B", "B", "g1"),
        ("g1-6", "g1", "B", "B", "g1"),
        ("g2-1", "g2", "A", "B", "g1"),  # the group at the *start* of the period counts
        ("g2-2", "g2", "A", "B", "g2"),
        ("g2-3", "g2", "B", "A", "g2"),
    ]
    rows = []
    for customer, group0, source, target, group1 in moves:
        rows.append((customer, d0, source, group0))
        rows.append((customer, d1, target, group1))
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "state", "group"])


def test_group_matrices_use_own_rows_and_fall_back_to_pooled_rows_of_small_groups():
    model = MarkovForecaster(smoothing=0, condition_on_group=True, min_group_size=2).fit(grouped_snapshots())

    pooled = np.array([[3 / 6, 3 / 6], [1 / 3, 2 / 3]])  # A: 3 stay, 3 to B; B: 2 stay, 1 to A
    np.testing.assert_allclose(model.transition_matrix_.to_numpy(), pooled)
    assert sorted(model.group_matrices_) == ["g1", "g2"]
    np.testing.assert_allclose(model.group_matrices_["g1"].to_numpy(), [[3 / 4, 1 / 4], [0, 1]])
    # g2: 2 customer-periods from A (own row), only 1 from B (< 2: pooled row)
    np.testing.assert_allclose(model.group_matrices_["g2"].to_numpy(), [[0, 1], pooled[1]])

    # with a higher bar g2 borrows both rows; g1 keeps A (4) and borrows B (2 < 3)
    strict = MarkovForecaster(smoothing=0, condition_on_group=True, min_group_size=3).fit(grouped_snapshots())
    np.testing.assert_allclose(strict.group_matrices_["g2"].to_numpy(), pooled)
    np.testing.assert_allclose(strict.group_matrices_["g1"].to_numpy(), [[3 / 4, 1 / 4], pooled[1]])


def test_group_rows_are_smoothed_like_the_pooled_ones():
    model = MarkovForecaster(smoothing=1, condition_on_group=True, min_group_size=2).fit(grouped_snapshots())
    np.testing.assert_allclose(model.group_matrices_["g1"].to_numpy(), [[4 / 6, 2 / 6], [1 / 4, 3 / 4]])
    np.testing.assert_allclose(model.transition_matrix_.to_numpy(), [[4 / 8, 4 / 8], [2 / 5, 3 / 5]])
    np.testing.assert_allclose(model.group_matrices_["g2"].to_numpy(), [[1 / 4, 3 / 4], [2 / 5, 3 / 5]])


def test_predict_with_groups_uses_each_customers_group_or_the_pooled_matrix():
    model = MarkovForecaster(smoothing=0, condition_on_group=True, min_group_size=2).fit(grouped_snapshots())
    current = pd.DataFrame(
        {
            "customer_id": ["p", "q", "r", "s", "t"],
            "state": ["A", "A", "B", "A", "A"],
            "group": ["g1", "g2", "g1", "unknown", None],
        }
    )
    g1, g2 = model.group_matrices_["g1"].to_numpy(), model.group_matrices_["g2"].to_numpy()
    pooled = model.transition_matrix_.to_numpy()

    proba = model.predict_proba(current)
    np.testing.assert_allclose(proba.to_numpy(), [g1[0], g2[0], g1[1], pooled[0], pooled[0]])

    # sizes: each customer moved through their group's matrix, for two periods with the group fixed
    expected = g1[0] @ g1 + g2[0] @ g2 + g1[1] @ g1 + 2 * pooled[0] @ pooled
    np.testing.assert_allclose(model.predict_sizes(current, periods=2).to_numpy(), expected)

    # without conditioning the same customers all use the pooled matrix
    plain = MarkovForecaster(smoothing=0).fit(grouped_snapshots())
    np.testing.assert_allclose(plain.predict_proba(current).to_numpy(), pooled[[0, 0, 1, 0, 0]])


# -- predict_sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", [0, 0.5])
def test_predict_sizes_moves_current_customers_and_adds_inflow_that_moves_on(smoothing):
    table = snapshots()
    model = MarkovForecaster(smoothing=smoothing).fit(table)
    current = at(table, 2)  # a, b, c in B; d, g in C; e, f in A
    counts = np.array([2, 3, 2, 0])
    P = by_hand(smoothing)

    sizes = model.predict_sizes(current)  # one period by default
    assert list(sizes.index) == STATES
    np.testing.assert_allclose(sizes.to_numpy(), counts @ P + INFLOW)
    np.testing.assert_allclose(model.predict_sizes(current, periods=1).to_numpy(), counts @ P + INFLOW)
    np.testing.assert_allclose(
        model.predict_sizes(current, periods=2).to_numpy(), counts @ P @ P + INFLOW @ P + INFLOW
    )
    np.testing.assert_allclose(model.predict_sizes(current, periods=0).to_numpy(), counts)
    # customers are conserved: everybody is somewhere, GONE included, plus the arrivals
    assert model.predict_sizes(current, periods=3).sum() == pytest.approx(7 + 3 * INFLOW.sum())


def test_predict_sizes_keeps_unseen_states_in_place():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    current = pd.DataFrame({"customer_id": list("pqrs"), "state": ["A", "new", "new", "B"]})

    sizes = model.predict_sizes(current, periods=2)

    assert list(sizes.index) == [*STATES, "new"]
    P = by_hand(0)
    expected = np.append(np.array([1, 1, 0, 0]) @ P @ P + INFLOW @ P + INFLOW, 2)
    np.testing.assert_allclose(sizes.to_numpy(), expected)


def test_docstring_example():
    table = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "a", "b", "c", "d", "e"],
            "as_of": pd.to_datetime(["2024-01-01"] * 4 + ["2024-02-01"] * 5),
            "state": ["active"] * 3 + ["at_risk", "active", "active", "at_risk", "churned", "active"],
        }
    )
    model = MarkovForecaster(smoothing=0).fit(table)
    assert model.states_ == ["active", "at_risk", "churned"]
    sizes = model.predict_sizes(table[table["as_of"] == "2024-02-01"])
    np.testing.assert_allclose(sizes.to_numpy(), [3, 1, 2])


# -- at_risk -----------------------------------------------------------------------------------


def test_at_risk_is_probability_of_moving_into_the_states_times_clv():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    P = by_hand(0)  # A: [1/2, 1/3, 0, 1/6]; B: [1/4, 1/2, 1/4, 0]; C: stays
    current = pd.DataFrame(
        {
            "customer_id": ["p", "q", "r", "s", "t", "u"],
            "state": ["A", "B", "C", "A", "B", "A"],
            "clv": [300.0, 100.0, 500.0, 60.0, np.nan, 0.0],
        }
    )

    table = model.at_risk(current, to_states=("B", "C"))

    expected_move = {
        "p": P[0, 1] + P[0, 2],  # from A: into B or C
        "q": P[1, 2],  # from B: staying in B is not a move
        "r": 0.0,  # from C: staying in C is not a move, and C never leaves
        "s": P[0, 1] + P[0, 2],
        "t": P[1, 2],
        "u": P[0, 1] + P[0, 2],
    }
    clv = current.set_index("customer_id")["clv"]
    for customer, p_move in expected_move.items():
        assert table.loc[customer, "p_move"] == pytest.approx(p_move)
        assert table.loc[customer, "clv"] == pytest.approx(clv[customer], nan_ok=True)
        assert table.loc[customer, "clv_at_stake"] == pytest.approx(p_move * clv[customer], nan_ok=True)
        assert table.loc[customer, "state"] == current.set_index("customer_id").loc[customer, "state"]
    assert list(table.columns) == ["state", "p_move", "clv", "clv_at_stake"]
    # stakes: p 100, q 25, r 0, s 20, t NaN, u 0 -> largest first; ties (r, u at 0) by p_move; NaN last
    assert list(table.index) == ["p", "q", "s", "u", "r", "t"]


def test_at_risk_can_count_disappearing_and_accepts_one_state_as_a_string():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    P = by_hand(0)
    current = pd.DataFrame({"customer_id": ["p", "q"], "state": ["A", "B"], "clv": [10, 10]})

    with_gone = model.at_risk(current, to_states=["C", GONE, "not-a-state"])
    assert with_gone.loc["p", "p_move"] == pytest.approx(P[0, 2] + P[0, 3])
    assert with_gone.loc["q", "p_move"] == pytest.approx(P[1, 2] + P[1, 3])

    only_b = model.at_risk(current, to_states="B")
    assert only_b.loc["p", "p_move"] == pytest.approx(P[0, 1])
    assert only_b.loc["q", "p_move"] == 0


def test_at_risk_without_clv_sorts_by_probability():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    current = pd.DataFrame({"customer_id": ["r", "q", "p"], "state": ["C", "B", "A"]})

    table = model.at_risk(current, to_states=("B", "C"))

    assert table["clv"].isna().all() and table["clv_at_stake"].isna().all()
    assert list(table.index) == ["p", "q", "r"]  # 1/3, 1/4, 0


def test_at_risk_needs_a_known_state():
    model = MarkovForecaster(smoothing=0).fit(snapshots())
    current = pd.DataFrame({"customer_id": ["p"], "state": ["A"]})
    with pytest.raises(ValueError, match="none of to_states"):
        model.at_risk(current, to_states=("churned", "lost"))


# -- simulation --------------------------------------------------------------------------------

TRUE_P = np.array([[0.80, 0.15, 0.05], [0.10, 0.70, 0.20], [0.05, 0.10, 0.85]])
SIM_STATES = np.array(["active", "at_risk", "churned"])


def simulate(start: np.ndarray, *, n: int = 20_000, periods: int = 8, seed: int = 0) -> pd.DataFrame:
    """``n`` customers followed for ``periods`` periods through TRUE_P, starting from ``start`` shares."""
    rng = np.random.default_rng(seed)
    cumulative = TRUE_P.cumsum(axis=1)
    state = rng.choice(3, size=n, p=start)
    path = [state]
    for _ in range(periods):
        u = rng.random(n)
        state = np.minimum((u[:, None] > cumulative[state]).sum(axis=1), 2)
        path.append(state)
    dates = pd.date_range("2024-01-31", periods=periods + 1, freq="ME")
    return pd.DataFrame(
        {
            "customer_id": np.tile(np.arange(n), periods + 1),
            "as_of": np.repeat(dates, n),
            "state": SIM_STATES[np.concatenate(path)],
        }
    )


def stationary() -> np.ndarray:
    values, vectors = np.linalg.eig(TRUE_P.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    return pi / pi.sum()


@pytest.fixture(scope="module")
def drifting() -> pd.DataFrame:
    return simulate(np.array([1.0, 0.0, 0.0]), seed=0)


def test_fit_recovers_the_true_chain(drifting):
    model = MarkovForecaster(smoothing=0).fit(drifting)

    assert model.states_ == list(SIM_STATES)  # nobody leaves a closed panel: no GONE
    assert model.periods_ == 8
    np.testing.assert_allclose(model.transition_matrix_.to_numpy(), TRUE_P, atol=0.01)
    np.testing.assert_array_equal(model.inflow_.to_numpy(), 0)
    # the forecast of the next sizes is close to the truth: current counts @ TRUE_P
    last = drifting[drifting["as_of"] == drifting["as_of"].max()]
    counts = last["state"].value_counts().reindex(SIM_STATES).to_numpy()
    np.testing.assert_allclose(model.predict_sizes(last).to_numpy(), counts @ TRUE_P, rtol=0.02)


def test_backtest_beats_naive_when_shares_drift(drifting):
    result = backtest(drifting, smoothing=0)

    dates = sorted(drifting["as_of"].unique())
    assert list(result.columns) == ["as_of", "target", "mae_model", "mae_naive"]
    assert len(result) == 8 - 2  # origins with >= 2 periods before them and a next date
    assert list(result["as_of"]) == dates[2:-1]
    assert list(result["target"]) == dates[3:]
    assert (result["mae_model"] < result["mae_naive"]).all()
    assert (result["mae_model"] < 0.01).all()

    later = backtest(drifting, min_train_periods=5, smoothing=0)
    assert len(later) == 8 - 5
    pd.testing.assert_frame_equal(later, result.iloc[3:].reset_index(drop=True))


def test_backtest_on_a_stationary_panel_is_not_much_worse_than_naive():
    result = backtest(simulate(stationary(), seed=11), smoothing=0)

    assert (result["mae_model"] < 0.01).all()
    assert result["mae_model"].mean() <= 1.25 * result["mae_naive"].mean() + 0.001


def test_backtest_rows_equal_a_hand_computed_forecast():
    table = snapshots(4)
    result = backtest(table, smoothing=0)  # 4 dates, 2 periods to train on: one origin, d2 -> d3

    assert len(result) == 1
    assert result.loc[0, "as_of"] == DATES[2] and result.loc[0, "target"] == DATES[3]
    # shares over the states seen up to the target date: A, B, C and D (first seen at d3)
    forecast = (np.array([2, 3, 2, 0]) @ by_hand(0) + INFLOW)[:3]  # GONE left out
    model = np.append(forecast, 0) / forecast.sum()
    naive = np.array([2, 3, 2, 0]) / 7  # at d2: e, f | a, b, c | d, g
    actual = np.array([1, 2, 3, 1]) / 7  # at d3: e | a, f | b, d, g | h
    assert result.loc[0, "mae_model"] == pytest.approx(np.abs(model - actual).mean())
    assert result.loc[0, "mae_naive"] == pytest.approx(np.abs(naive - actual).mean())


def test_backtest_passes_options_to_the_model():
    table = snapshots(4)
    smoothed = backtest(table, smoothing=2.0)
    forecast = (np.array([2, 3, 2, 0]) @ by_hand(2.0) + INFLOW)[:3]
    model = np.append(forecast, 0) / forecast.sum()
    actual = np.array([1, 2, 3, 1]) / 7
    assert smoothed.loc[0, "mae_model"] == pytest.approx(np.abs(model - actual).mean())

    grouped = grouped_snapshots()
    later = grouped.assign(as_of=grouped["as_of"].map({DATES[0]: DATES[2], DATES[1]: DATES[3]}))
    panel = pd.concat([grouped, later], ignore_index=True)
    result = backtest(panel, condition_on_group=True, min_group_size=2, smoothing=0)
    assert len(result) == 1 and np.isfinite(result[["mae_model", "mae_naive"]].to_numpy()).all()


# -- input errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["customer_id", "as_of", "state"])
def test_fit_names_a_missing_column(column):
    with pytest.raises(ValueError, match=f"snapshots is missing column '{column}'"):
        MarkovForecaster().fit(snapshots().drop(columns=column))


def test_fit_with_groups_needs_a_group_column():
    with pytest.raises(ValueError, match="missing column 'group'"):
        MarkovForecaster(condition_on_group=True).fit(snapshots())
    with pytest.raises(ValueError, match="missing column 'group'"):
        backtest(snapshots(4), condition_on_group=True)


def test_fit_rejects_bad_snapshots():
    table = snapshots()
    with pytest.raises(TypeError, match="pandas DataFrame"):
        MarkovForecaster().fit(table.to_dict("list"))
    with pytest.raises(ValueError, match="at least 2 dates"):
        MarkovForecaster().fit(snapshots(1))
    with pytest.raises(ValueError, match="more than one row for customer 'a' on 2024-01-31"):
        MarkovForecaster().fit(pd.concat([table, table.iloc[[0]]], ignore_index=True))
    missing_state = table.astype({"state": object})
    missing_state.loc[0, "state"] = None
    with pytest.raises(ValueError, match="state is missing for customer 'a' on 2024-01-31"):
        MarkovForecaster().fit(missing_state)
    missing_date = table.copy()
    missing_date.loc[1, "as_of"] = pd.NaT
    with pytest.raises(ValueError, match="as_of is missing in row 1"):
        MarkovForecaster().fit(missing_date)
    missing_id = table.astype({"customer_id": object})
    missing_id.loc[2, "customer_id"] = None
    with pytest.raises(ValueError, match="customer_id is missing in row 2"):
        MarkovForecaster().fit(missing_id)


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"smoothing": -0.1}, "smoothing"),
        ({"smoothing": "a lot"}, "smoothing"),
        ({"condition_on_group": "yes"}, "condition_on_group"),
        ({"min_group_size": 2.5}, "min_group_size"),
        ({"min_group_size": -1}, "min_group_size"),
    ],
)
def test_bad_parameters_are_named(params, name):
    with pytest.raises(ValueError, match=f"parameter '{name}'"):
        MarkovForecaster(**params).fit(snapshots())
    with pytest.raises(ValueError, match=f"parameter '{name}'"):
        backtest(snapshots(4), **params)


def test_predictions_need_a_fitted_model():
    current = pd.DataFrame({"customer_id": ["p"], "state": ["A"]})
    model = MarkovForecaster()
    with pytest.raises(NotFittedError):
        model.predict_proba(current)
    with pytest.raises(NotFittedError):
        model.predict_sizes(current)
    with pytest.raises(NotFittedError):
        model.at_risk(current)


def test_predictions_reject_bad_current_tables():
    model = MarkovForecaster().fit(snapshots())
    with pytest.raises(ValueError, match="current is missing column 'state'"):
        model.predict_proba(pd.DataFrame({"customer_id": ["p"]}))
    with pytest.raises(ValueError, match="current is missing column 'customer_id'"):
        model.predict_sizes(pd.DataFrame({"state": ["A"]}))
    with pytest.raises(ValueError, match="more than one row for customer 'p'"):
        model.predict_proba(pd.DataFrame({"customer_id": ["p", "p"], "state": ["A", "B"]}))
    with pytest.raises(ValueError, match="state is missing for customer 'q'"):
        model.predict_proba(pd.DataFrame({"customer_id": ["p", "q"], "state": ["A", None]}))
    grouped = MarkovForecaster(condition_on_group=True).fit(grouped_snapshots())
    with pytest.raises(ValueError, match="current is missing column 'group'"):
        grouped.predict_proba(pd.DataFrame({"customer_id": ["p"], "state": ["A"]}))


@pytest.mark.parametrize("periods", [-1, 1.5, True, "2"])
def test_predict_sizes_rejects_bad_periods(periods):
    model = MarkovForecaster().fit(snapshots())
    with pytest.raises(ValueError, match="'periods' must be an integer >= 0"):
        model.predict_sizes(at(snapshots(), 2), periods=periods)


def test_backtest_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'min_train_periods' must be an integer >= 1"):
        backtest(snapshots(4), min_train_periods=0)
    with pytest.raises(ValueError, match="'min_train_periods' must be an integer >= 1"):
        backtest(snapshots(4), min_train_periods=True)
    with pytest.raises(ValueError, match="at least 4 snapshot dates"):
        backtest(snapshots(3))
    with pytest.raises(ValueError, match="at least 5 snapshot dates"):
        backtest(snapshots(4), min_train_periods=3)
    with pytest.raises(ValueError, match="unknown parameter 'smothing'"):
        backtest(snapshots(4), smothing=1)

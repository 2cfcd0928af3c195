"""Transition alerts: calibrated on stable and wobbling histories, firing on planted changes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from microseg.dynamics.alerts import ALERT_COLUMNS, holm, transition_alerts, transition_tests

STATES = ("new", "active", "loyal", "at_risk", "lapsed", "churned")
GROUPS = ("all", "top_1", "rest")
FIRST_PERIOD = dt.date(2024, 1, 7)


def stable_matrix(rng: np.random.Generator) -> np.ndarray:
    """Transition rates between STATES: mostly staying, a few percent to each other state."""
    k = len(STATES)
    matrix = 0.02 + 0.6 * np.eye(k) + rng.uniform(0, 0.1, (k, k))
    return matrix / matrix.sum(axis=1, keepdims=True)


def simulate(
    seed: int,
    *,
    periods: int = 12,
    sizes: tuple[int, int] = (300, 1500),
    concentration: float | None = None,
    base: dict | None = None,
    rates: dict | None = None,
    last_rates: dict | None = None,
) -> pd.DataFrame:
    """Weekly counts of multinomial transitions for GROUPS x STATES.

    ``concentration``: each period's rates of a source are drawn from a Dirichlet around the
    stable ones (so each transition rate is beta-distributed: period-to-period wobble).
    ``base`` fixes the customers of a (group, source); ``rates`` sets a (group, source, target)
    rate in every period and ``last_rates`` in the last one only (the row is renormalised).
    """
    rng = np.random.default_rng(seed)
    shape = (periods, len(GROUPS), len(STATES))
    probabilities = np.broadcast_to(
        np.stack([stable_matrix(rng) for _ in GROUPS]), (*shape, len(STATES))
    ).copy()
    bases = np.broadcast_to(rng.integers(*sizes, size=shape[1:]), shape).copy()
    bases += rng.integers(-20, 21, size=shape)
    for (group, source), n in (base or {}).items():
        bases[:, GROUPS.index(group), STATES.index(source)] = n
    for overrides, when in ((rates, slice(None)), (last_rates, slice(-1, None))):
        for (group, source, target), rate in (overrides or {}).items():
            row = probabilities[when, GROUPS.index(group), STATES.index(source)]
            others = np.arange(len(STATES)) != STATES.index(target)
            row[:, others] *= (1 - rate) / row[:, others].sum(axis=1, keepdims=True)
            row[:, STATES.index(target)] = rate
    if concentration is not None:
        # normalised gammas: a Dirichlet draw per period, group and source
        draws = rng.gamma(probabilities * concentration)
        probabilities = draws / draws.sum(axis=-1, keepdims=True)
    moved = rng.multinomial(bases, probabilities)
    t, g, s, k = np.meshgrid(*(np.arange(n) for n in moved.shape), indexing="ij")
    return pd.DataFrame(
        {
            "as_of": (np.datetime64(FIRST_PERIOD) + 7 * t.ravel()).astype("datetime64[D]"),
            "group": np.asarray(GROUPS)[g.ravel()],
            "source": np.asarray(STATES)[s.ravel()],
            "target": np.asarray(STATES)[k.ravel()],
            "moved": moved.ravel(),
            "base": bases[t.ravel(), g.ravel(), s.ravel()],
        }
    )


def period(index: int) -> dt.date:
    return FIRST_PERIOD + dt.timedelta(weeks=index)


def naive_alert(tests: pd.DataFrame, alpha: float = 0.01) -> bool:
    """Would a plain binomial z-test (no dispersion, normal p-values) alert on any transition?"""
    z = tests["z"] * np.sqrt(tests["dispersion"])
    adjusted = holm(2 * stats.norm.sf(np.abs(z)))
    rise = (tests["ratio"] >= 1.5) & (tests["moved"] >= 10)
    fall = (tests["ratio"] <= 1 / 1.5) & (tests["expected"] >= 10)
    return bool(((adjusted < alpha) & (rise | fall)).any())


# --- calibration ----------------------------------------------------------------------------


def test_stable_history_raises_no_alert():
    counts = simulate(7)
    tests = transition_tests(counts)
    assert len(tests) == len(GROUPS) * len(STATES) * (len(STATES) - 1)
    assert (tests["history_periods"] == 11).all()
    assert tests["as_of"].unique().tolist() == [period(11)]
    assert transition_alerts(counts, alpha=0.01).empty


@pytest.mark.slow  # 400 simulated histories
def test_family_wise_false_alarms_stay_near_alpha():
    alpha, histories = 0.01, 200
    significant = alerted = 0
    for seed in range(histories):
        tests = transition_tests(simulate(seed, sizes=(150, 600)))
        significant += bool((tests["p_adjusted"] < alpha).any())
        alerted += not transition_alerts(simulate(seed, sizes=(150, 600)), alpha=alpha).empty
    assert significant <= 2 * alpha * histories
    assert alerted <= significant


def test_dispersion_keeps_wobbling_rates_from_alarming():
    histories = 60
    ours = naive = 0
    dispersions = []
    for seed in range(histories):
        counts = simulate(seed, sizes=(150, 600), concentration=300)
        tests = transition_tests(counts)
        dispersions.append(tests["dispersion"].median())
        ours += not transition_alerts(counts).empty
        naive += naive_alert(tests)
    assert np.median(dispersions) > 1.5
    assert ours <= 0.05 * histories
    assert naive >= 0.3 * histories > ours


def test_stable_rates_estimate_no_dispersion():
    tests = transition_tests(simulate(3))
    assert tests["dispersion"].median() < 1.3
    assert (tests["dispersion"] >= 1).all()


# --- planted changes ------------------------------------------------------------------------

AT_RISK = ("top_1", "at_risk", "churned")


def test_doubled_churn_among_top_customers_fires_exactly_that_alert():
    counts = simulate(
        11, base={("top_1", "at_risk"): 2000}, rates={AT_RISK: 0.06}, last_rates={AT_RISK: 0.12}
    )
    alerts = transition_alerts(counts)
    assert list(alerts.columns) == ALERT_COLUMNS
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert (alert.group, alert.source, alert.target, alert.direction) == (*AT_RISK, "up")
    assert alert.base == 2000 and 0.1 < alert.rate < 0.14 and 0.055 < alert.historical_rate < 0.065
    assert alert.ratio >= 1.5 and alert.z > 5 and alert.p_adjusted < 0.01
    assert alert.message.startswith("at_risk -> churned among top_1: ")
    assert "of 2,000 customers this period vs 6." in alert.message
    assert "two-proportion z-test" in alert.test and "Holm-adjusted over 90 tests" in alert.test


def test_halved_churn_fires_down():
    counts = simulate(
        12, base={("top_1", "at_risk"): 3000}, rates={AT_RISK: 0.12}, last_rates={AT_RISK: 0.06}
    )
    alerts = transition_alerts(counts)
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert (alert.group, alert.source, alert.target, alert.direction) == (*AT_RISK, "down")
    assert alert.ratio <= 1 / 1.5 and alert.z < -5
    assert "vs 12." in alert.message


def test_transition_never_seen_before_fires():
    new_churn = ("all", "new", "churned")
    counts = simulate(5, base={new_churn[:2]: 1000}, rates={new_churn: 0.0})
    last = (
        (counts["as_of"] == counts["as_of"].max()) & (counts["group"] == "all") & (counts["source"] == "new")
    )
    counts.loc[last & (counts["target"] == "churned"), "moved"] = 50
    counts.loc[last & (counts["target"] == "new"), "moved"] -= 50
    # earlier periods carry no row for it at all: a missing target moved nobody
    is_new_churn = (counts["group"] == "all") & (counts["source"] == "new") & (counts["target"] == "churned")
    counts = counts[~(is_new_churn & ~last)]
    alerts = transition_alerts(counts)
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert (alert.group, alert.source, alert.target, alert.direction) == (*new_churn, "up")
    assert alert.moved == 50 and alert.historical_rate == 0 and np.isinf(alert.ratio)
    assert "5.0% of 1,000 customers this period vs 0.0% before (new)" in alert.message


def test_small_counts_never_alert():
    rare = ("rest", "loyal", "churned")
    counts = simulate(8, base={rare[:2]: 5000}, rates={rare: 0.0}, last_rates={rare: 8 / 5000})
    row = transition_tests(counts).set_index(["group", "source", "target"]).loc[rare]
    assert row.moved < 10 and row.p_adjusted < 0.01  # significant, but too few customers
    assert transition_alerts(counts, min_moved=10).empty
    assert len(transition_alerts(counts, min_moved=row.moved)) == 1


def test_as_of_tests_an_earlier_period_against_its_own_history():
    counts = simulate(
        11, base={("top_1", "at_risk"): 2000}, rates={AT_RISK: 0.06}, last_rates={AT_RISK: 0.12}
    )
    earlier = counts[counts["as_of"] < counts["as_of"].max()]
    assert transition_alerts(earlier).empty
    alerts = transition_alerts(counts, as_of=period(11))
    assert alerts["as_of"].tolist() == [period(11)]
    tests = transition_tests(counts, as_of=str(period(6)))
    assert (tests["history_periods"] == 6).all()
    assert transition_tests(counts, as_of=period(6), min_history=7).empty


def test_include_stays_tests_the_diagonal_too():
    counts = simulate(2)
    with_stays = transition_tests(counts, include_stays=True)
    assert len(with_stays) == len(GROUPS) * len(STATES) ** 2
    assert (with_stays["source"] == with_stays["target"]).sum() == len(GROUPS) * len(STATES)


# --- the statistics by hand -----------------------------------------------------------------


def test_statistic_matches_hand_computation():
    counts = pd.DataFrame(
        {
            "as_of": [period(i) for i in range(5)],
            "group": "all",
            "source": "active",
            "target": "lapsed",
            "moved": [10, 30, 10, 30, 40],
            "base": 100,
        }
    )
    row = transition_tests(counts).iloc[0]
    # history p0 = 80 / 400; Pearson chi-square 4 * 10**2 / (100 * 0.2 * 0.8) = 25 on 3 df
    phi = 25 / 3
    pooled = 120 / 500
    z = (0.4 - 0.2) / np.sqrt(phi * pooled * (1 - pooled) * (1 / 100 + 1 / 400))
    assert row.historical_rate == pytest.approx(0.2)
    assert row.dispersion == pytest.approx(phi)
    assert row.z == pytest.approx(z)
    assert row.p_value == pytest.approx(2 * stats.t.sf(z, 3))
    assert row.p_adjusted == row.p_value  # one test
    assert row.expected == pytest.approx(20) and row.ratio == pytest.approx(2)
    assert "dispersion 8.33, Student t on 3 df, Holm-adjusted over 1 test" in row.test


def test_without_dispersion_z_squared_is_the_pearson_chi_square_of_the_two_by_two_table():
    # identical history periods: chi-square 0, so the dispersion is floored at 1 (binomial)
    counts = pd.DataFrame(
        {
            "as_of": [period(i) for i in range(5)],
            "group": "all",
            "source": "active",
            "target": "lapsed",
            "moved": [50, 50, 50, 50, 100],
            "base": 1000,
        }
    )
    row = transition_tests(counts).iloc[0]
    table = [[100, 900], [200, 3800]]  # this period against the pooled history: moved, stayed
    chi_square = stats.chi2_contingency(table, correction=False).statistic

    assert row.dispersion == 1.0
    assert row.z**2 == pytest.approx(chi_square, rel=1e-12)


def test_holm_matches_its_definition():
    p = np.random.default_rng(0).uniform(0, 0.05, 25)
    order = np.argsort(p)
    expected = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        expected[index] = running
    assert holm(p) == pytest.approx(expected)
    assert holm([]).size == 0


# --- validation -----------------------------------------------------------------------------


@pytest.fixture
def small() -> pd.DataFrame:
    return simulate(1, periods=5)


def test_missing_column_is_named(small):
    with pytest.raises(ValueError, match="missing the column 'base'"):
        transition_tests(small.drop(columns="base"))


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("moved", 10_000, "moved is larger than base"),
        ("moved", -1, "'moved' is negative"),
        ("moved", 2.5, "whole numbers"),
    ],
)
def test_bad_counts_name_the_row(small, column, value, reason):
    small[column] = small[column].astype(float)
    small.loc[7, column] = value
    row = small.loc[7]
    with pytest.raises(ValueError, match=reason) as raised:
        transition_tests(small)
    assert f"group='{row.group}', source='{row.source}', target='{row.target}'" in str(raised.value)
    assert f"as_of={pd.Timestamp(row.as_of).date().isoformat()}" in str(raised.value)


def test_negative_base_is_rejected(small):
    small["base"] = -small["base"]
    small["moved"] = 0
    with pytest.raises(ValueError, match="'base' is negative"):
        transition_tests(small)


def test_inconsistent_base_is_rejected(small):
    small.loc[3, "base"] += 1
    with pytest.raises(ValueError, match=r"base differs between the targets of one \(as_of, group, source\)"):
        transition_tests(small)


def test_duplicate_row_is_rejected(small):
    with pytest.raises(ValueError, match="more than one row"):
        transition_tests(pd.concat([small, small.iloc[[4]]]))


def test_unknown_as_of_lists_available_dates(small):
    with pytest.raises(ValueError, match="as_of 2023-01-01 is not a period") as raised:
        transition_alerts(small, as_of=dt.date(2023, 1, 1))
    assert "available: 2024-01-07, 2024-01-14, 2024-01-21, 2024-01-28, 2024-02-04" in str(raised.value)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, float("nan")])
def test_alpha_outside_unit_interval_is_rejected(small, alpha):
    with pytest.raises(ValueError, match="alpha must be a number strictly between 0 and 1"):
        transition_alerts(small, alpha=alpha)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"min_ratio": 0.5}, "min_ratio"),
        ({"min_moved": -1}, "min_moved"),
        ({"min_history": 1}, "min_history"),
    ],
)
def test_other_bad_options_are_named(small, option, message):
    with pytest.raises(ValueError, match=message):
        transition_alerts(small, **option)

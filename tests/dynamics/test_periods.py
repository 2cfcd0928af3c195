"""Full, stub and gap periods between snapshot dates."""

from __future__ import annotations

import datetime as dt

import pytest

from microseg.dynamics.periods import describe_periods, is_month_end
from microseg.dynamics.snapshots import snapshot_dates

D = dt.date


def kinds(periods) -> list[tuple[str, str, int, str]]:
    return [
        (str(r.from_date), str(r.to_date), int(r.days), r.kind) for r in periods.table.itertuples(index=False)
    ]


def test_month_ends_then_the_analysis_date_on_the_ninth_end_in_a_stub():
    dates = snapshot_dates(D(2011, 1, 1), D(2011, 12, 9)) + [D(2011, 12, 9)]
    periods = describe_periods(dates)
    assert periods.cadence == "month"
    assert kinds(periods)[-1] == ("2011-11-30", "2011-12-09", 9, "stub")
    assert [k for *_, k in kinds(periods)[:-1]] == ["full"] * 10  # February's 28 days are a month
    assert periods.regular_dates == dates[:-1]
    assert periods.full_ends == dates[1:-1] and periods.skipped_ends == []
    assert "9-day stub" in periods.describe(D(2011, 11, 30), D(2011, 12, 9))
    assert periods.describe(D(2011, 1, 31), D(2011, 2, 28)) == ""
    note = periods.note()
    assert "2011-11-30 to 2011-12-09" in note and "9-day stub" in note
    assert describe_periods(dates[:-1]).note() is None


def test_a_snapshot_inside_a_month_splits_it_into_stubs_but_the_month_still_counts():
    dates = [D(2025, 4, 30), D(2025, 5, 31), D(2025, 6, 15), D(2025, 6, 30), D(2025, 7, 31)]
    periods = describe_periods(dates)
    assert [k for *_, k in kinds(periods)] == ["full", "stub", "stub", "full"]
    # rates run between month ends: May to June is a full period
    assert periods.full == [
        (D(2025, 4, 30), D(2025, 5, 31)),
        (D(2025, 5, 31), D(2025, 6, 30)),
        (D(2025, 6, 30), D(2025, 7, 31)),
    ]


def test_a_missing_month_is_a_gap_and_is_not_learned_from():
    dates = [D(2025, 1, 31), D(2025, 2, 28), D(2025, 4, 30), D(2025, 5, 31)]
    periods = describe_periods(dates)
    assert [k for *_, k in kinds(periods)] == ["full", "gap", "full"]
    assert periods.full_ends == [D(2025, 2, 28), D(2025, 5, 31)]
    assert periods.skipped_ends == [D(2025, 4, 30)]
    assert "61-day period" in periods.describe(D(2025, 2, 28), D(2025, 4, 30))


def test_weekly_snapshots_with_a_short_last_period():
    weeks = snapshot_dates(D(2025, 10, 1), D(2025, 12, 31), "week")
    periods = describe_periods([*weeks, D(2026, 1, 3)])
    assert periods.cadence == "7 days"
    assert kinds(periods)[-1] == ("2025-12-31", "2026-01-03", 3, "stub")
    assert periods.regular_dates == weeks and len(periods.full) == len(weeks) - 1
    # one weekly snapshot that happens to fall on a month end does not make the series monthly
    assert any(is_month_end(d) for d in weeks)


def test_an_off_cycle_weekly_snapshot_keeps_the_weeks_around_it():
    weeks = snapshot_dates(D(2025, 10, 1), D(2025, 12, 31), "week")
    periods = describe_periods([*weeks[:5], weeks[4] + dt.timedelta(days=2), *weeks[5:]])
    assert periods.regular_dates == weeks and len(periods.full) == len(weeks) - 1
    assert [k for *_, k in kinds(periods)].count("stub") == 2


@pytest.mark.parametrize(
    "dates",
    [[], [D(2025, 1, 31)], [D(2025, 1, 31), D(2025, 2, 28)], [D(2025, 3, 3), D(2025, 3, 10)]],
)
def test_short_series_have_no_irregular_periods(dates):
    periods = describe_periods(dates)
    assert periods.irregular().empty and periods.note() is None
    assert len(periods.full) == max(len(dates) - 1, 0)


def test_order_and_types_of_the_dates_do_not_matter():
    import pandas as pd

    dates = [D(2011, 12, 9), D(2011, 10, 31), D(2011, 11, 30)]
    a = describe_periods(dates)
    b = describe_periods(pd.to_datetime(dates))
    assert kinds(a) == kinds(b) and a.full == b.full


def test_month_ends_over_leap_years_and_year_ends_are_the_days_before_a_first():
    start, end = D(1999, 11, 15), D(2024, 3, 30)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    month_ends = [d for d in days if (d + dt.timedelta(days=1)).day == 1]

    assert snapshot_dates(start, end) == month_ends
    assert [d for d in days if is_month_end(d)] == month_ends
    assert D(2000, 2, 29) in month_ends and D(2024, 2, 29) in month_ends and D(2023, 2, 28) in month_ends


def test_weekly_dates_count_back_from_the_end():
    weeks = snapshot_dates(D(2025, 2, 27), D(2025, 3, 31), "week")
    assert weeks == [D(2025, 3, 3), D(2025, 3, 10), D(2025, 3, 17), D(2025, 3, 24), D(2025, 3, 31)]
    assert snapshot_dates(D(2025, 3, 31), D(2025, 3, 31), "week") == [D(2025, 3, 31)]
    assert snapshot_dates(D(2025, 3, 1), D(2025, 3, 30)) == []  # no month end in the range


def test_a_stub_after_the_analysis_date_ends_before_the_next_month_end():
    periods = describe_periods([D(2011, 11, 30), D(2011, 12, 9), D(2011, 12, 31), D(2012, 1, 31)])
    assert periods.cadence == "month"
    # from a day inside December, the month end that follows is the end of January
    assert periods.kind_of(D(2011, 12, 9), D(2011, 12, 31)) == "stub"
    assert periods.kind_of(D(2011, 12, 9), D(2012, 1, 31)) == "gap"
    assert periods.kind_of(D(2011, 11, 30), D(2012, 1, 31)) == "gap"
    assert periods.kind_of(D(2011, 12, 31), D(2012, 1, 31)) == "full"

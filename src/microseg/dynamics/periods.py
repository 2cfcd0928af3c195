"""Which periods between snapshots are full ones: stub periods are marked, not compared.

A *period* runs from one stored snapshot to the next. Rates (migration rates, the forecast's
transition probabilities, its backtest and the alerts) mean "per period", so they are only
comparable between periods of the same length. A snapshot taken on the analysis date when that
date is not a month end (Online Retail ends on 9 December 2011) makes the last period a *stub*:
nine days after the last month end, not a month. Counting its moves as a month's would make
every transition look about three times rarer than usual.

The *cadence* of a series of snapshots is read from its dates:

* ``month`` when at least two of them, and at least half of them, are month ends: the month
  ends are the regular dates, and a full period runs from one month end to the next;
* otherwise ``N days``, N being the median spacing: the regular dates are those a whole number
  of N days apart from the most common position (a weekly series ending on a Wednesday keeps
  its Wednesdays), and a full period is N days long.

Each period between consecutive snapshots is ``full``, a ``stub`` (shorter than the cadence:
a snapshot off the regular dates) or a ``gap`` (longer: a regular snapshot is missing). Rates
are learned and tested over the full periods between consecutive *regular* dates only, so a
snapshot in the middle of a month costs nothing; the listings show every period with its kind.

>>> import datetime as dt
>>> dates = [dt.date(2011, 9, 30), dt.date(2011, 10, 31), dt.date(2011, 11, 30), dt.date(2011, 12, 9)]
>>> periods = describe_periods(dates)
>>> periods.cadence, periods.regular_dates[-1]
('month', datetime.date(2011, 11, 30))
>>> periods.table[["to_date", "days", "kind"]].to_dict("records")[-1]
{'to_date': datetime.date(2011, 12, 9), 'days': 9, 'kind': 'stub'}
>>> periods.full_ends
[datetime.date(2011, 10, 31), datetime.date(2011, 11, 30)]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

FULL, STUB, GAP = "full", "stub", "gap"
PERIOD_COLUMNS = ["from_date", "to_date", "days", "kind"]


@dataclass(frozen=True)
class Periods:
    """The periods of a series of snapshot dates (see the module docs).

    ``dates``: the snapshot dates, oldest first; ``cadence``: ``"month"`` or ``"N days"``;
    ``table``: one row per pair of consecutive dates (``from_date, to_date, days, kind``);
    ``regular_dates``: the dates on the cadence; ``full``: the full periods between consecutive
    regular dates, as ``(start, end)`` pairs, the ones rates are learned from and tested on.
    """

    dates: list[dt.date]
    cadence: str
    table: pd.DataFrame
    regular_dates: list[dt.date]
    full: list[tuple[dt.date, dt.date]]

    @property
    def full_ends(self) -> list[dt.date]:
        """End dates of the full periods."""
        return [end for _, end in self.full]

    @property
    def skipped_ends(self) -> list[dt.date]:
        """End dates of the periods between consecutive regular dates that are not full (gaps)."""
        pairs = zip(self.regular_dates[:-1], self.regular_dates[1:], strict=True)
        return [end for start, end in pairs if (start, end) not in self.full]

    def kind_of(self, start: dt.date, end: dt.date) -> str:
        """``full``, ``stub`` or ``gap`` for the period from ``start`` to ``end``."""
        return _kind(start, end, self.cadence)

    def irregular(self) -> pd.DataFrame:
        """The periods between consecutive snapshots that are not full, oldest first."""
        return self.table[self.table["kind"] != FULL].reset_index(drop=True)

    def describe(self, start: dt.date, end: dt.date) -> str:
        """What is irregular about the period from ``start`` to ``end`` ('' for a full one)."""
        kind = self.kind_of(start, end)
        if kind == FULL:
            return ""
        days = (end - start).days
        unit = "a month" if self.cadence == "month" else self.cadence
        if kind == STUB:
            return f"{days}-day stub period (shorter than {unit})"
        return f"{days}-day period (longer than {unit}: a snapshot is missing)"

    def note(self) -> str | None:
        """A sentence for the user on the periods that are not full (None when all are)."""
        odd = self.irregular()
        if odd.empty:
            return None
        use = (
            "shown in the migration matrices and flows, but left out of rates: the forecast learns "
            "from full periods only, and neither its backtest nor the alerts test "
        )
        listed = [
            f"{r.from_date} to {r.to_date} ({self.describe(r.from_date, r.to_date)})"
            for r in odd.itertuples()
        ]
        if len(listed) == 1:
            r = odd.iloc[0]
            return (
                f"The period from {r.from_date} to {r.to_date} is a {self.describe(r.from_date, r.to_date)}: "
                f"it is {use}it."
            )
        return f"These periods are not full ones: {'; '.join(listed)}. They are {use}them."


def describe_periods(dates: Iterable[dt.date]) -> Periods:
    """The cadence, periods and full periods of a series of snapshot dates (any order)."""
    days = sorted({_as_date(d) for d in dates})
    cadence = _cadence(days)
    regular = [d for d in days if _on_cadence(d, days, cadence)]
    rows = [(a, b, (b - a).days, _kind(a, b, cadence)) for a, b in zip(days[:-1], days[1:], strict=True)]
    table = pd.DataFrame(rows, columns=PERIOD_COLUMNS)
    table["days"] = table["days"].astype("int64")
    full = [(a, b) for a, b in zip(regular[:-1], regular[1:], strict=True) if _kind(a, b, cadence) == FULL]
    return Periods(days, cadence, table, regular, full)


def is_month_end(day: dt.date) -> bool:
    """Whether ``day`` is the last day of its month.

    >>> is_month_end(dt.date(2024, 2, 29)), is_month_end(dt.date(2025, 2, 28)), is_month_end(dt.date(2025, 3, 30))
    (True, True, False)
    """
    return bool(pd.Timestamp(day).is_month_end)


def _next_month_end(day: dt.date) -> dt.date:
    """The last day of the month after ``day``'s month (Dec 9 -> Jan 31, Jan 31 -> Feb 28)."""
    return (pd.Period(day, freq="M") + 1).end_time.date()


def _cadence(days: list[dt.date]) -> str:
    month_ends = sum(is_month_end(d) for d in days)
    if month_ends >= 2 and 2 * month_ends >= len(days):
        return "month"
    if len(days) < 2:
        return "month"
    gaps = pd.Series([(b - a).days for a, b in zip(days[:-1], days[1:], strict=True)])
    return f"{max(int(round(gaps.median())), 1)} days"


def _step(cadence: str) -> int:
    return int(cadence.split()[0])


def _on_cadence(day: dt.date, days: list[dt.date], cadence: str) -> bool:
    if cadence == "month":
        return is_month_end(day)
    step = _step(cadence)
    residues = pd.Series([d.toordinal() % step for d in days])
    # the most common position wins; a tie goes to the position of the latest date
    counts = residues.value_counts()
    best = counts[counts == counts.max()].index
    usual = residues.iloc[-1] if residues.iloc[-1] in best else min(best)
    return day.toordinal() % step == usual


def _kind(start: dt.date, end: dt.date, cadence: str) -> str:
    if cadence == "month":
        if is_month_end(start) and end == _next_month_end(start):
            return FULL
        # ends before the month end that follows the start: a stub; after it: a month is missing
        return STUB if end < _next_month_end(start) else GAP
    step = _step(cadence)
    days = (end - start).days
    return FULL if days == step else STUB if days < step else GAP


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()

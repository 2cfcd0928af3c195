"""Why rows were rejected, in a form a person can act on: reason patterns with counts, and hints.

A file of 3,000 rows with US-style dates has 3,000 different reasons (one per date) but one
problem. ``summarise`` groups the reasons of an import by pattern (the reason with its values
left out) and keeps a few example values of each; ``hints`` reads the examples to name the
setting that would read them, such as the ``timestamp_format`` that parses every rejected date.

>>> guess_timestamp_format(["03/15/2011 08:26", "12/01/2010 8:26"])
'%m/%d/%Y %H:%M'
"""

from __future__ import annotations

import datetime as dt
import re

from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.ingest.markers import first_value, pattern

#: Example values kept per reason pattern (for hints and the summary).
EXAMPLES = 20
#: Rows sampled for examples: the counts cover every row, the examples the first rejected ones.
SAMPLED_ROWS = 20_000

_DATES = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%Y.%m.%d",
    "%Y%m%d",
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d %Y",
    "%Y-%m-%d",
)
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", "T%H:%M", "T%H:%M:%S", " %H.%M")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d{1,3}([. \u00a0]?\d{3})*,\d+$")


def summarise(wh: DuckDBWarehouse, stage: str, rejects: str | None) -> list[dict]:
    """Reason patterns of an import's rejected rows: ``{"pattern", "rows", "examples"}``, most
    frequent first. ``stage`` and ``rejects`` are the import's tables of marked reasons."""
    parts = f"SELECT __row, unnest(string_split(__reason, chr(30))) AS part FROM {stage} WHERE __reason <> ''"
    if rejects:
        parts += f" UNION ALL SELECT __row, unnest(string_split(__reason, chr(30))) FROM {rejects}"
    counts = wh.fetch(
        f"SELECT {pattern('part')} AS p, count(DISTINCT __row) FROM ({parts}) GROUP BY p ORDER BY 2 DESC, p"
    )
    if not counts:
        return []
    samples = wh.fetch(
        f"SELECT p, list(DISTINCT v) FROM (SELECT {pattern('part')} AS p, {first_value('part')} AS v "
        f"FROM ({parts} LIMIT {SAMPLED_ROWS})) WHERE v IS NOT NULL GROUP BY p"
    )
    examples = {p: sorted(v)[:EXAMPLES] for p, v in samples}
    return [{"pattern": p, "rows": int(n), "examples": examples.get(p, [])} for p, n in counts]


def guess_timestamp_format(values: list[str]) -> str | None:
    """The strptime format that reads every value (day and month told apart by the values
    themselves; month first when they cannot be), or None when no common format does."""
    values = [v.strip() for v in values if v and v.strip()]
    if not values:
        return None
    for date in _DATES:
        for time in _TIMES:
            fmt = date + time
            if all(_reads(v, fmt) for v in values):
                return fmt
    return None


def _reads(value: str, fmt: str) -> bool:
    try:
        parsed = dt.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return parsed.year >= 1900  # "%Y" also reads "11" as the year 11


def hints(source: str, summary: list[dict]) -> list[str]:
    """Settings that would read the rejected rows, one line each, where the reasons tell."""
    out: list[str] = []
    for item in summary:
        text, examples = item["pattern"], item["examples"]
        label = text.split(": ", 1)[0]
        if text.endswith("as a timestamp") and "cannot read" in text:
            fmt = guess_timestamp_format(examples)
            if fmt:
                out.append(
                    f"{label} holds timestamps such as {examples[0]!r}: add timestamp_format = "
                    f'"{fmt}" under [sources.{source}]'
                )
            elif examples:
                out.append(
                    f"{label} holds timestamps such as {examples[0]!r}: set timestamp_format under "
                    f"[sources.{source}] to their strptime format (see docs/importing.md)"
                )
        elif "cannot read" in text and ("as a number" in text or "as a whole number" in text):
            if examples and all(_DECIMAL_COMMA.match(v) for v in examples):
                out.append(
                    f"{label} writes numbers with a decimal comma (such as {examples[0]!r}): add "
                    f'decimal_separator = "," under [sources.{source}]'
                )
        elif text.startswith("row: not UTF-8 text"):
            out.append(
                f"the file is not UTF-8: set encoding under [sources.{source}] to the encoding it was saved "
                'in, such as encoding = "latin-1" or "cp1252"'
            )
        elif text.startswith("row: a quote opens a value and never closes"):
            out.append(
                "a value opens a quote that no later quote closes: fix that row, and the rows after it load"
            )
    return out

"""Result frames as terminal tables that fit the screen and show user text as text.

A table shows the rows it is given up to a limit, and the columns that fit the terminal's width
(most important first; a transition matrix keeps its largest segments). What was left out is
counted in ``TableView.note``, which points to the option that writes the whole table to a file.
Every cell, header and title is a Rich ``Text`` made ``visible``: markup, emoji codes and control
characters in ids and labels are printed as they read.

>>> import pandas as pd
>>> frame = pd.DataFrame({"customer_id": ["[/x]", "C2", "C3"], "orders": [3, 1200, 7]})
>>> view = frame_table(frame, title="Customers", limit=2)
>>> view.note()
'Showing 2 of 3 rows; the whole table: --out FILE (.csv or .parquet).'
>>> from rich.console import Console
>>> console = Console(width=60, force_terminal=False)
>>> with console.capture() as capture:
...     console.print(view.table)
>>> print(capture.get())
     Customers
┏━━━━━━━━━━━━━┳━━━━━━━━┓
┃ customer_id ┃ orders ┃
┡━━━━━━━━━━━━━╇━━━━━━━━┩
│ [/x]        │      3 │
│ C2          │  1,200 │
└─────────────┴────────┘
<BLANKLINE>
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from microseg.outputs.text import visible

if TYPE_CHECKING:
    import pandas as pd

#: Widest a wrapping text column is counted when columns are fitted to the screen.
TEXT_WIDTH = 24
# Each column takes its text plus one space of padding on each side and one border line.
_COLUMN_FRAME = 3


@dataclass
class TableView:
    """A table ready to print, and how much of its frame it shows."""

    table: Table
    rows_shown: int
    rows_total: int
    columns_shown: int
    columns_total: int
    why_columns: str = ""
    #: Names of the frame's columns that the table shows.
    shown: list[str] = field(default_factory=list)

    @property
    def cut(self) -> bool:
        """Whether rows or columns were left out."""
        return self.rows_shown < self.rows_total or self.columns_shown < self.columns_total

    def note(self, option: str = "--out") -> str | None:
        """A line saying what was left out and how to get everything, or None."""
        if not self.cut:
            return None
        parts = []
        if self.rows_shown < self.rows_total:
            parts.append(f"{self.rows_shown:,} of {self.rows_total:,} rows")
        if self.columns_shown < self.columns_total:
            parts.append(f"{self.columns_shown:,} of {self.columns_total:,} columns{self.why_columns}")
        return f"Showing {' and '.join(parts)}; the whole table: {option} FILE (.csv or .parquet)."


def cell_text(value: Any, spec: str | None = None) -> str:
    """How a value reads in a table: empty when missing, dates without a time, thousands
    separators, two decimals for floats unless ``spec`` says otherwise.

    >>> [cell_text(v) for v in (None, float("nan"), 1234, 2.5, dt.datetime(2025, 1, 31), "a\\x00")]
    ['', '', '1,234', '2.50', '2025-01-31', 'a\\\\x00']
    >>> cell_text(0.1234, ".1%")
    '12.3%'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)) or _is_missing(value):
        return ""  # missing, or an open end (still in the segment)
    if isinstance(value, dt.datetime) and value == dt.datetime.combine(value.date(), dt.time()):
        return value.date().isoformat()  # snapshot dates come back as midnight timestamps
    if spec is not None and isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format(value, spec)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, numbers.Real):
        return f"{value:,.2f}"
    return visible(value)


def _is_missing(value: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.api.types.is_scalar(value) and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fit(widths: dict[str, int], order: Sequence[str], width: int | None) -> list[str]:
    """The columns of ``order`` (most important first) that fit in ``width`` characters; the
    first always."""
    if width is None:
        return list(order)
    used = 1  # the table's left border
    kept: list[str] = []
    for name in order:
        need = widths[name] + _COLUMN_FRAME
        if kept and used + need > width:
            continue
        kept.append(name)
        used += need
    return kept


def frame_table(
    frame: pd.DataFrame,
    *,
    title: str,
    formats: dict[str, str] | None = None,
    left: Sequence[str] = (),
    limit: int | None = None,
    width: int | None = None,
    priority: Sequence[str] | None = None,
    why_columns: str = "",
) -> TableView:
    """A Rich table of the first ``limit`` rows of ``frame`` and the columns that fit ``width``.

    ``formats`` maps columns to format specs (``",.2f"``, ``".1%"``); ``left`` lists the columns
    aligned left (text), which may wrap; ``priority`` orders the columns by importance for fitting
    (default: as in the frame, the first is always kept); shown columns keep the frame's order.
    """
    formats = formats or {}
    body = frame if limit is None else frame.head(limit)
    names = [str(c) for c in frame.columns]
    cells = [
        [cell_text(value, formats.get(name)) for name, value in zip(names, row, strict=True)]
        for row in body.itertuples(index=False)
    ]
    widths = {}
    for i, name in enumerate(names):
        longest = max([cell_len(visible(name))] + [cell_len(row[i]) for row in cells])
        widths[name] = min(longest, TEXT_WIDTH) if name in left else longest
    order = [str(c) for c in priority] if priority is not None else names
    order += [n for n in names if n not in order]
    kept = set(_fit(widths, order, width))
    table = Table(title=Text(visible(title)))
    for name in names:
        if name in kept:
            text = name in left
            table.add_column(
                Text(visible(name)),
                justify="left" if text else "right",
                overflow="fold" if text else "ellipsis",
                no_wrap=not text,
            )
    for row in cells:
        table.add_row(*(Text(cell) for name, cell in zip(names, row, strict=True) if name in kept))
    shown = [name for name in names if name in kept]
    return TableView(table, len(body), len(frame), len(kept), len(names), why_columns, shown)


def matrix_table(
    matrix: pd.DataFrame,
    *,
    title: str,
    spec: str,
    width: int | None = None,
    index_name: str = "segment",
) -> TableView:
    """A transition matrix (sources x targets) that fits ``width``: when it does not, the largest
    segments (by customers leaving plus arriving) are kept as both rows and columns, with the
    pseudo-states such as ``(new)`` and ``(gone)``, in the matrix's own order."""
    weights: dict[str, float] = {}
    for axis_totals in (matrix.abs().sum(axis=1), matrix.abs().sum(axis=0)):
        for name, total in axis_totals.items():
            weights[str(name)] = weights.get(str(name), 0.0) + float(total)
    frame = matrix.reset_index()
    frame.columns = [index_name, *(str(c) for c in matrix.columns)]
    targets = [str(c) for c in matrix.columns]
    formats = dict.fromkeys(targets, spec)
    whole = frame_table(frame, title=title, formats=formats, left=(index_name,))
    if width is None or _table_width(whole) <= width:
        return whole
    ranked = sorted(targets, key=lambda name: (not name.startswith("("), -weights.get(name, 0.0)))
    fitted = frame_table(
        frame, title=title, formats=formats, left=(index_name,), width=width, priority=[index_name, *ranked]
    )
    shown = set(fitted.shown) - {index_name}
    rows = frame[frame[index_name].astype(str).map(lambda s: s in shown or s.startswith("("))]
    view = frame_table(
        rows[[index_name, *(t for t in targets if t in shown)]],
        title=title,
        formats=formats,
        left=(index_name,),
    )
    view.rows_total, view.columns_total = len(frame), len(frame.columns)
    view.why_columns = ", the largest segments"
    return view


def _table_width(view: TableView) -> int:
    """Characters the table needs without wrapping (borders and padding included)."""
    total = 1
    for column in view.table.columns:
        cells = [column.header, *column.cells]
        total += max(cell_len(str(c)) for c in cells) + _COLUMN_FRAME
    return total

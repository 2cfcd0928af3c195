"""Read one sheet of an .xlsx workbook as rows of text, keeping date cells as timestamps.

``openpyxl`` (pure Python, a core dependency) reads every workbook; ``python-calamine`` (a
compiled reader, about eight times faster) is used instead when it is installed
(``pip install "microseg[xlsx]"``). Both give the same rows.

Cells become text the way a person would type them: whole numbers without ``.0`` (ids such as
17850 stay ids), other numbers in their shortest exact form, dates as ISO timestamps. A column
whose every filled cell is a date stays a timestamp column. A row with no value at all is not a
row (a spreadsheet's trailing empty rows), but it keeps its place in the numbering.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from microseg.errors import SourceError


def engine() -> str:
    """The reader used: "calamine" when python-calamine is installed, else "openpyxl"."""
    return "calamine" if importlib.util.find_spec("python_calamine") else "openpyxl"


@dataclass
class Sheet:
    """A sheet's column names and rows, each row with its number after the header."""

    names: list[str]
    rows: list[tuple[int, list[Any]]]  # (data row number, cells) of rows that fit the header
    too_wide: list[tuple[int, list[Any]]] = field(default_factory=list)  # rows with extra cells

    def to_arrow(self, names: list[str]) -> pa.Table:
        """The rows as an Arrow table: ``__row`` and one column per name."""
        columns: dict[str, pa.Array] = {"__row": pa.array([r for r, _ in self.rows], pa.int64())}
        for i, name in enumerate(names):
            cells = [row[i] if i < len(row) else None for _, row in self.rows]
            columns[name] = _column(cells)
        return pa.table(columns)

    def too_wide_arrow(self, width: int) -> pa.Table:
        """Rows with values beyond the header, as rejects (row, reason, record)."""
        reasons = [
            f"row: {chr(2)}{len(_trimmed(cells))}{chr(3)} fields where {width} are expected"
            for _, cells in self.too_wide
        ]
        records = [json.dumps([_text(c) for c in cells]) for _, cells in self.too_wide]
        return pa.table(
            {
                "__row": pa.array([r for r, _ in self.too_wide], pa.int64()),
                "__reason": pa.array(reasons, pa.string()),
                "__record": pa.array(records, pa.string()),
            }
        )


def _text(cell: Any) -> str | None:
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float):
        return str(int(cell)) if cell.is_integer() and abs(cell) < 1e15 else repr(cell)
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    if isinstance(cell, dt.time):
        return cell.isoformat()
    return str(cell)


def _column(cells: list[Any]) -> pa.Array:
    filled = [c for c in cells if c is not None and c != ""]
    if filled and all(isinstance(c, dt.datetime) for c in filled):
        return pa.array([c if isinstance(c, dt.datetime) else None for c in cells], pa.timestamp("us"))
    return pa.array([_text(c) for c in cells], pa.string())


def _trimmed(cells: list[Any]) -> list[Any]:
    end = len(cells)
    while end and (cells[end - 1] is None or cells[end - 1] == ""):
        end -= 1
    return cells[:end]


def _rows_calamine(path: Path, sheet: str | None, source: str) -> list[list[Any]]:
    import python_calamine

    book = python_calamine.CalamineWorkbook.from_path(str(path))
    names = list(book.sheet_names)
    if sheet is not None and sheet not in names:
        raise _no_sheet(sheet, names, path, source)
    data = book.get_sheet_by_name(sheet) if sheet is not None else book.get_sheet_by_index(0)
    return [list(r) for r in data.to_python(skip_empty_area=False)]


def _rows_openpyxl(path: Path, sheet: str | None, source: str) -> list[list[Any]]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        names = list(book.sheetnames)
        if sheet is not None and sheet not in names:
            raise _no_sheet(sheet, names, path, source)
        data = book[sheet] if sheet is not None else book.worksheets[0]
        return [list(r) for r in data.iter_rows(values_only=True)]
    finally:
        book.close()


def _no_sheet(sheet: str, names: list[str], path: Path, source: str) -> SourceError:
    return SourceError(
        f"sources.{source}.sheet: sheet {sheet!r} is not in {path.name}; its sheets: {', '.join(names)}"
    )


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name] - 1}")
    return out


def read_sheet(path: Path, sheet: str | None, header: bool, source: str) -> Sheet:
    """One sheet's rows, numbered from 1 after the header row (when there is one)."""
    try:
        rows = (
            _rows_calamine(path, sheet, source)
            if engine() == "calamine"
            else _rows_openpyxl(path, sheet, source)
        )
    except SourceError:
        raise
    except Exception as exc:  # a damaged or encrypted workbook
        raise SourceError(f"sources.{source}: cannot read {path} as an .xlsx workbook: {exc}") from None
    rows = [_trimmed(r) for r in rows]
    while rows and not rows[0]:  # blank rows above the table
        rows.pop(0)
    if not rows:
        raise SourceError(f"sources.{source}: cannot read {path}: the sheet is empty")
    if header:
        names = _unique([_text(c) or f"column{i}" for i, c in enumerate(rows[0])])
        body = rows[1:]
    else:
        names = [f"column{i}" for i in range(max(len(r) for r in rows))]
        body = rows
    fits, too_wide = [], []
    for number, cells in enumerate(body, 1):
        if not cells:
            continue
        (fits if len(cells) <= len(names) else too_wide).append((number, cells))
    return Sheet(names, fits, too_wide)

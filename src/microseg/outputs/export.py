"""Result tables written to files: CSV or Parquet, chosen by the file's extension.

Every CSV that microseg writes goes through ``write_table``. A spreadsheet opening a CSV runs a
cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some programs, a tab or a carriage
return) as a formula, so a customer id such as ``=HYPERLINK(...)`` would become a live link. Text
cells that start with one of those characters are written with a single quote in front (the OWASP
advice for CSV injection); numbers stay numbers, negative ones included. Parquet keeps types and
is never read as formulas, so it is written unchanged.

>>> import pandas as pd, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "members.csv"
>>> frame = pd.DataFrame({"customer_id": ["=1+1", "-4", "C1"], "spend": [-4.5, 2.0, 0.0]})
>>> write_table(frame, path)
PosixPath('...members.csv')
>>> print(path.read_text())
customer_id,spend
'=1+1,-4.5
-4,2.0
C1,0.0
<BLANKLINE>
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microseg.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

#: File types a table can be written as, by extension.
FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet"}

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A text cell that is only a number (``-4``, ``+1.5e3``) is read as that number, not as a formula.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def table_format(path: str | os.PathLike, option: str = "--out") -> str:
    """``"csv"`` or ``"parquet"`` for a file name, else an error naming the option.

    >>> table_format("segments.parquet")
    'parquet'
    >>> table_format("segments.xlsx")
    Traceback (most recent call last):
    ...
    microseg.errors.InvalidInputError: --out: 'segments.xlsx' must end in .csv or .parquet
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInputError(f"{option}: {str(path)!r} must end in {' or '.join(FORMATS)}")
    return FORMATS[suffix]


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, with a quote in front; any other
    value unchanged.

    >>> [neutralise(v) for v in ("@SUM(A1)", "-2+3", "-4.50", "plain", -3)]
    ["'@SUM(A1)", "'-2+3", '-4.50', 'plain', -3]
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_for_spreadsheets(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose column names and text cells are ``neutralise``d."""
    import pandas as pd

    safe = frame.copy()
    safe.columns = [neutralise(str(c)) for c in frame.columns]
    for position, dtype in enumerate(frame.dtypes):
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        column = safe.iloc[:, position]
        safe.isetitem(position, column.astype(object).map(neutralise, na_action="ignore"))
    return safe


def write_table(frame: pd.DataFrame, path: str | os.PathLike, *, option: str = "--out") -> Path:
    """Write ``frame`` (without its index) to ``path`` as CSV or Parquet, by the extension.

    The file appears whole or not at all: it is written beside its target and then moved in place.
    """
    path = Path(path)
    kind = table_format(path, option)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidInputError(f"{option}: folder {str(folder)!r} does not exist")
    scratch = folder / f".{path.name}.{os.getpid()}.partial"  # created with the user's umask
    try:
        if kind == "csv":
            # CRLF line ends (RFC 4180), so that a cell holding a bare carriage return is quoted
            safe_for_spreadsheets(frame).to_csv(scratch, index=False, lineterminator="\r\n")
        else:
            frame.rename(columns=str).to_parquet(scratch, index=False)
        os.replace(scratch, path)
    finally:
        if os.path.exists(scratch):
            os.remove(scratch)
    return path

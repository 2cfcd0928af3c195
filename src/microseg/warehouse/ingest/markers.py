"""How reasons are written while an import runs, so that they can be grouped by pattern.

A reason names a field, then says what is wrong, often quoting the value: ``ts (day): cannot
read '03/15/2011 08:26' as a timestamp``. While a file is staged, each quoted value sits between
two invisible markers and the checks a row fails are separated by a third; the quarantine
stores the plain text, and the import summary groups reasons by their text with the values
left out (``ts (day): cannot read … as a timestamp``).
"""

from __future__ import annotations

VALUE_START, VALUE_END, PART_SEPARATOR = chr(2), chr(3), chr(30)
#: What a value becomes in a reason pattern.
ELLIPSIS = "…"
#: Longest part of a value quoted in a reason.
SHOWN_CHARS = 60


def marked(value_sql: str) -> str:
    """SQL of a value inside a reason, as it is (numbers, dates)."""
    return f"(chr(2) || CAST({value_sql} AS VARCHAR) || chr(3))"


def shown(value_sql: str) -> str:
    """SQL of a text value inside a reason: quoted, at most ``SHOWN_CHARS`` characters."""
    return f"(chr(2) || '''' || left(CAST({value_sql} AS VARCHAR), {SHOWN_CHARS}) || '''' || chr(3))"


def joined(parts: list[str]) -> str:
    """SQL joining reason parts (NULL parts are left out); '' when every check passes."""
    if not parts:
        return "''"
    return "concat_ws(chr(30), " + ", ".join(parts) + ")"


def stored(reason_sql: str) -> str:
    """SQL of a reason as the quarantine stores it: parts separated by '; ', no markers."""
    return f"replace(replace(replace({reason_sql}, chr(30), '; '), chr(2), ''), chr(3), '')"


def pattern(part_sql: str) -> str:
    """SQL of one reason part with its values replaced by an ellipsis."""
    return f"regexp_replace({part_sql}, chr(2) || '[^' || chr(3) || ']*' || chr(3), '{ELLIPSIS}', 'g')"


def first_value(part_sql: str) -> str:
    """SQL of the first value inside one reason part, without quotes (NULL when it has none)."""
    inner = f"regexp_extract({part_sql}, chr(2) || '([^' || chr(3) || ']*)' || chr(3), 1)"
    return f"nullif(regexp_replace({inner}, '^''(.*)''$', '\\1'), '')"

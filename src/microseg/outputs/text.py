r"""User text in a terminal: shown as text, never obeyed.

Customer ids, labels, file names and quarantine reasons come from users' files. Printed as they
are, Rich reads ``[bold]`` in them as markup (and a stray ``[/x]`` makes it raise), ``:smile:``
turns into an emoji, and a terminal obeys escape sequences and control bytes. ``visible`` turns
control characters into the escapes Python uses for them, and ``shown`` puts user values into a
markup template of ours as plain text.

>>> visible("A\x1b[31mB\x00")
'A\\x1b[31mB\\x00'
>>> shown("Wrote {:,} rows to [bold]{}[/]", 1024, "[/x].csv")
'Wrote 1,024 rows to [bold]\\[/x].csv[/]'
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.text import Text

# C0 and C1 control characters (ESC, NUL, BEL, ...) and the bidirectional overrides and isolates
# that can make a terminal line read differently from the bytes it holds.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: Any, *, newlines: bool = False) -> str:
    r"""``value`` as a string whose control characters are written as escapes (``\x1b``).

    With ``newlines=True`` line breaks are kept (for multi-line text of our own, such as a card,
    whose user parts were made visible already).

    >>> visible("tab\there")
    'tab\\there'
    >>> visible("two\nlines", newlines=True)
    'two\nlines'
    """
    pattern = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    return pattern.sub(_escape_char, str(value))


def plain(value: Any, style: str = "", *, newlines: bool = False) -> Text:
    """``value`` as a Rich ``Text``: printed as it reads, whatever brackets or colons it has.

    >>> plain("[bold red]BOLD").plain
    '[bold red]BOLD'
    """
    return Text(visible(value, newlines=newlines), style=style)


class _Shown:
    """A value that formats like itself, then escaped for Rich markup."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return escape(visible(format(self.value, spec)))


def shown(template: str, *values: Any, **named: Any) -> str:
    r"""Rich markup: ``template`` is ours (it may style), the ``values`` are anyone's and come
    out as plain text. Format specs work as in ``str.format`` (``{:,}``, ``{:.1%}``).

    >>> shown("[red]Error:[/] {}", "closing tag [/x]")
    '[red]Error:[/] closing tag \\[/x]'
    """
    return template.format(*(_Shown(v) for v in values), **{k: _Shown(v) for k, v in named.items()})


def clean_data(value: Any) -> Any:
    r"""Every string inside ``value`` (dicts, lists, tuples) made visible; other values kept.

    For structures that a formatter turns into multi-line text, such as a persona card.

    >>> clean_data({"id": "A\x00", "sizes": [1, "\x1b"]})
    {'id': 'A\\x00', 'sizes': [1, '\\x1b']}
    """
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {clean_data(k): clean_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(clean_data(v) for v in value)
    return value

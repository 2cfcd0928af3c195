"""The README's examples: each command block followed by an output block is run on the demo
project and must print that output.

An example is a ```sh block holding one ``microseg`` command (comment lines aside) directly
followed by a ```text block. The commands run on the project that ``DEMO`` makes, at a terminal
``WIDTH`` characters wide. Text and whole numbers must match exactly; a decimal number may differ
by one unit in its last shown digit (model fits differ in the last bits between machines).

Regenerate the outputs after a change in labels or numbers with
``pytest tests/test_readme.py --update-readme``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
#: The command that makes the examples' project (``shop``), as the README says.
DEMO = ["demo", "--customers", "2000"]
WIDTH = 100

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)
# decimals only: ids (active.b0), dates and counts must match exactly
_DECIMAL = re.compile(r"(?<![\w.-])-?\d[\d,]*\.\d+(?![\w.])")


@dataclass
class Example:
    """One README example: the command's arguments after ``microseg``, its line in the README,
    and where its output block's text lies."""

    args: list[str]
    line: int
    expected: str
    start: int
    end: int

    @property
    def command(self) -> str:
        return "microseg " + shlex.join(self.args)


def examples(text: str) -> list[Example]:
    """The examples of a README text, in order."""
    found = []
    blocks = list(_FENCE.finditer(text))
    for block, following in zip(blocks, blocks[1:], strict=False):
        if block.group(1) not in ("sh", "console") or following.group(1) != "text":
            continue
        if text[block.end() : following.start()].strip():
            continue  # prose between them: the text block is not this command's output
        lines = block.group(2).splitlines()
        commands = [n for n, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        if len(commands) != 1 or not lines[commands[0]].startswith("microseg "):
            continue
        args = shlex.split(lines[commands[0]], comments=True)[1:]
        line = text.count("\n", 0, block.start(2)) + 1 + commands[0]
        found.append(Example(args, line, following.group(2), following.start(2), following.end(2)))
    return found


def on_project(args: list[str], root: Path) -> list[str]:
    """The arguments with the README's project (``-p shop``) replaced by ``root``."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg in ("-p", "--project"):
            out[i + 1] = str(root)
    return out


def normalised(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def difference(expected: str, actual: str) -> str | None:
    """None when ``actual`` prints what ``expected`` shows (within the tolerance), else the
    first line that differs."""
    want, got = normalised(expected), normalised(actual)
    if want == got:
        return None
    if len(want) != len(got):
        return f"{len(got)} lines printed, {len(want)} in the README"
    for n, (a, b) in enumerate(zip(want, got, strict=True), start=1):
        if a == b:
            continue
        if _DECIMAL.split(a) != _DECIMAL.split(b):
            return f"line {n}:\n  README:  {a}\n  printed: {b}"
        for x, y in zip(_DECIMAL.findall(a), _DECIMAL.findall(b), strict=True):
            unit = 10.0 ** -len(x.split(".")[1])
            if abs(float(x.replace(",", "")) - float(y.replace(",", ""))) > unit * 1.001:
                return f"line {n}: {x} in the README, {y} printed"
    return None


def updated(text: str, outputs: dict[int, str]) -> str:
    """``text`` with the output block of each example (by its start) replaced."""
    for example in sorted(examples(text), key=lambda e: e.start, reverse=True):
        if example.start in outputs:
            body = "\n".join(normalised(outputs[example.start])) + "\n"
            text = text[: example.start] + body + text[example.end :]
    return text


def make_demo(root: Path) -> Path:
    """Make the README's demo project at ``root`` with the command line."""
    from microseg.cli import main, state

    state.debug = False
    code = main([*DEMO[:1], str(root), *DEMO[1:]])
    assert code == 0, f"microseg {' '.join(DEMO)} failed"
    return root

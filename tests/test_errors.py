"""Bad input raises the typed errors of the one error root, and they stay ValueErrors."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import microseg
from microseg.cli import main
from microseg.demo.generator import generate_demo
from microseg.dynamics.snapshots import snapshot_dates
from microseg.errors import InvalidInputError, MicrosegError
from microseg.models.clv import BGNBD, GammaGamma
from microseg.models.lifecycle import LifecycleModel
from microseg.segments.matching import match_segments

PACKAGE = Path(microseg.__file__).parent

BAD_CALLS = {
    "demo size": (lambda tmp: generate_demo(tmp, customers=0), "customers"),
    "snapshot step": (
        lambda tmp: snapshot_dates(dt.date(2024, 1, 1), dt.date(2024, 6, 30), every="year"),
        "every",
    ),
    "negative frequency": (lambda tmp: BGNBD().fit([-1, 2], [0, 3], [5, 5]), "frequency"),
    "spend of one-time buyers": (lambda tmp: GammaGamma().fit([0, 2], [0.0, 10.0]), "frequency 0"),
    "unknown parameter": (lambda tmp: LifecycleModel().set_params(speed=2), "speed"),
    "matching prefix": (
        lambda tmp: match_segments([], ["a"], [0], np.zeros((1, 2)), prefix=3),
        "prefix",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_input_raises_invalid_input_naming_the_culprit(case, tmp_path):
    call, culprit = BAD_CALLS[case]
    with pytest.raises(InvalidInputError, match=culprit) as caught:
        call(tmp_path)
    # one root for front ends, and still a ValueError for code written for scikit-learn
    assert isinstance(caught.value, MicrosegError) and isinstance(caught.value, ValueError)
    assert caught.value.http_status == 400 and caught.value.exit_code == 1


def _bare_value_errors(path: Path) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "ValueError":
                lines.append(node.lineno)
    return sorted(lines)


def test_no_module_raises_a_bare_value_error():
    found = {
        str(path.relative_to(PACKAGE)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _bare_value_errors(path))
    }
    assert not found, f"raise InvalidInputError (or a more specific MicrosegError) instead: {found}"


def test_the_scan_sees_a_bare_value_error(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("def f(x):\n    if x:\n        raise ValueError('bad')\n    raise ValueError\n")
    assert _bare_value_errors(module) == [3, 4]


def test_the_cli_shows_an_invalid_input_as_one_plain_line(tmp_path, capsys):
    code = main(["demo", str(tmp_path / "demo"), "--customers", "0"])
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err and "ValueError" not in err
    assert "customers" in err

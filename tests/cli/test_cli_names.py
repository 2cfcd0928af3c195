"""Segment and layer names: an id that several layers have asks for the layer, misspelt names are
errors with a suggestion, and an empty layer says why (on the README's demo project)."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from microseg import cli
from microseg.errors import InvalidInputError
from microseg.project import Project

ON = "2025-10-15"
SNAPSHOT = dt.date(2025, 9, 30)  # membership between snapshots is that of the earlier one


def run(args: list[str], capsys, width: int = 80) -> tuple[int, str, str]:
    """Run a command at a terminal ``width`` characters wide."""
    cli.state.debug = False
    widths = cli.console.width, cli.err_console.width
    cli.console.width = cli.err_console.width = width
    capsys.readouterr()
    try:
        code = cli.main(args)
    finally:
        cli.console.width, cli.err_console.width = widths
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def sizes(demo_shop) -> pd.Series:
    with Project(demo_shop) as project:
        members = project.memberships(None, SNAPSHOT)
    at_risk = members[members["segment_id"] == "at_risk"]
    return at_risk.groupby("kind")["customer_id"].nunique()


def test_an_id_in_two_layers_asks_for_the_layer(demo_shop, sizes, capsys):
    assert set(sizes.index) == {"lifecycle", "rfm_tier"}  # the demo has both, as real data does
    code, out, err = run(["-p", str(demo_shop), "members", "at_risk", "--on", ON], capsys)
    assert code == 1 and out == ""
    assert err.replace("\n", " ").startswith(
        f"Error: segment id 'at_risk' is in 2 layers: lifecycle ({sizes['lifecycle']:,} customers on {ON}), "
        f"rfm_tier ({sizes['rfm_tier']:,} customers on {ON}); name the layer with --kind"
    )
    with Project(demo_shop) as project, pytest.raises(InvalidInputError, match="is in 2 layers"):
        project.members_on("at_risk", dt.date.fromisoformat(ON))


def test_members_of_a_layer_are_each_customer_once(demo_shop, sizes, capsys, tmp_path):
    out_file = tmp_path / "at_risk.csv"
    args = ["-p", str(demo_shop), "members", "at_risk", "--on", ON, "--kind", "lifecycle"]
    code, out, err = run([*args, "--limit", "0", "--out", str(out_file)], capsys)
    assert code == 0, err
    expected = sizes["lifecycle"]
    assert f"{expected:,} customers were in at_risk on {ON} (lifecycle layer)" in out
    written = pd.read_csv(out_file)
    assert len(written) == expected and written["customer_id"].is_unique
    assert set(written["kind"]) == {"lifecycle"}
    with Project(demo_shop) as project:
        truth = project.memberships("lifecycle", SNAPSHOT)
    assert set(written["customer_id"]) == set(truth.loc[truth.segment_id == "at_risk", "customer_id"])


def test_an_id_of_one_layer_needs_no_kind(demo_shop, capsys):
    code, out, err = run(["-p", str(demo_shop), "members", "champions", "--on", ON, "--limit", "0"], capsys)
    assert code == 0, err
    assert re.search(r"customers were in champions on 2025-10-15 \(rfm_tier layer\)", out)


def test_misspelt_names_are_errors_with_a_suggestion(demo_shop, capsys):
    p = ["-p", str(demo_shop)]
    code, _, err = run([*p, "segments", "--kind", "lifecyle"], capsys)
    assert code == 1 and "no segment layer 'lifecyle' (did you mean \"lifecycle\"?)" in err
    code, _, err = run([*p, "members", "at_rsk", "--on", ON], capsys)
    assert code == 1 and "no segment 'at_rsk' (did you mean \"at_risk\"?)" in err
    code, _, err = run([*p, "persona", "at_rsk", "--kind", "lifecycle"], capsys)
    assert code == 1 and 'did you mean "at_risk"' in err.replace("\n", " ")
    with Project(demo_shop) as project:
        with pytest.raises(InvalidInputError, match='did you mean "lifecycle"'):
            project.memberships("lifecyle")
        with pytest.raises(InvalidInputError, match='did you mean "behaviour"'):
            project.segments("behavior")


def test_persona_of_an_ambiguous_id_asks_for_the_layer(demo_shop, capsys):
    p = ["-p", str(demo_shop)]
    code, _, err = run([*p, "persona", "at_risk"], capsys)
    assert code == 1 and "segment id 'at_risk' is in 2 layers: lifecycle (" in err.replace("\n", " ")
    code, out, err = run([*p, "persona", "at_risk", "--kind", "rfm_tier"], capsys)
    assert code == 0, err
    assert out.startswith("Segment at_risk (rfm_tier)")


def test_a_known_layer_without_segments_says_why(demo_shop, capsys):
    p = ["-p", str(demo_shop)]
    code, out, err = run([*p, "segments", "--kind", "composite"], capsys, width=200)
    assert code == 0, err
    assert out.startswith(
        "No segments: no composite segments are configured; add them under [segments.composites]"
    )
    assert "--kind composite_code" in out
    code, out, _ = run([*p, "segments", "--kind", "rule"], capsys, width=200)
    assert out.startswith("No segments: no rule segments are configured; add them under [segments.rules]")
    code, out, err = run([*p, "segments", "--kind", "composite_code"], capsys)
    assert code == 0 and "composite_code segments" in out


def test_a_wide_matrix_fits_the_terminal_and_out_has_all_of_it(demo_shop, capsys, tmp_path):
    with Project(demo_shop) as project:
        matrix = project.transition_matrix("behaviour")
    assert matrix.shape[1] > 10  # wider than a terminal
    code, out, err = run(["-p", str(demo_shop), "migration", "--kind", "behaviour"], capsys)
    assert code == 0, err
    table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert max(len(line) for line in table) <= 80 and "…" not in out
    assert re.search(
        r"Showing \d+ of \d+ rows and \d+ of \d+ columns, the largest segments;", out.replace("\n", " ")
    )
    assert "--out FILE (.csv or .parquet)" in out.replace("\n", " ")
    path = tmp_path / "behaviour.parquet"
    code, out, err = run(
        ["-p", str(demo_shop), "migration", "--kind", "behaviour", "--out", str(path)], capsys
    )
    assert code == 0, err
    written = pd.read_parquet(path).set_index("segment")
    assert written.shape == matrix.shape
    assert (written.to_numpy() == matrix.to_numpy()).all()

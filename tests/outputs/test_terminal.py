"""Terminal output: user text is shown as it reads (no markup, emoji or control codes obeyed)
and tables fit the screen, saying what they left out."""

from __future__ import annotations

import pandas as pd
import pytest
from rich.console import Console

from microseg.outputs.tables import frame_table, matrix_table
from microseg.outputs.text import clean_data, plain, shown, visible

HOSTILE = ["[/x]", "[bold red]BOLD", "\x1b[31mRED", "A\x00B", ":smile:", "tab\there", "bidi\u202eevil"]


def render(renderable, width: int = 100, terminal: bool = False) -> str:
    """What a console prints: a plain one, or a colour terminal's (with its escape codes)."""
    console = Console(width=width, force_terminal=terminal, color_system="truecolor" if terminal else None)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_prints_as_it_reads(text):
    out = render(plain(text, style="bold"), terminal=True)
    assert "\x00" not in out and "\u202e" not in out and "\x1b[31m" not in out
    assert visible(text) in out  # the text as it reads, markup and emoji codes included
    assert visible(text) == render(plain(text)).rstrip("\n")


def test_control_characters_become_escapes():
    assert visible("\x1b[31mRED") == "\\x1b[31mRED"
    assert visible("A\x00B\x07\x7f\x9b") == "A\\x00B\\x07\\x7f\\x9b"
    assert visible("a\tb\r\nc") == "a\\tb\\r\\nc"
    assert visible("a\nb", newlines=True) == "a\nb"
    assert visible("bidi\u202eevil\u2066") == "bidi\\u202eevil\\u2066"
    assert visible("café 日本 [x]") == "café 日本 [x]"  # printable text is left alone


def test_shown_escapes_values_but_keeps_our_markup():
    markup = shown("[bold]{}[/] bought {:,} items", "[/x]", 1234)
    assert render(markup) == "[/x] bought 1,234 items\n"
    assert "\x1b[1m" in render(markup, terminal=True)  # our bold is applied


def test_clean_data_makes_every_string_of_a_card_visible():
    card = {"segment_id": "[/x]\x1b", "top": [["gar\x00den", 0.5]], "size": 3}
    assert clean_data(card) == {"segment_id": "[/x]\\x1b", "top": [["gar\\x00den", 0.5]], "size": 3}


def test_table_cells_headers_and_title_are_text():
    frame = pd.DataFrame({"customer_id": HOSTILE, "=segment": ["[b]x[/b]"] * len(HOSTILE)})
    view = frame_table(frame, title="[/x] members", left=("customer_id", "=segment"))
    out = render(view.table, width=200, terminal=True)
    assert "[/x] members" in out and "=segment" in out and "[b]x[/b]" in out
    assert "\x00" not in out and "\x1b[31mRED" not in out and "\\x1b[31mRED" in out
    assert "😄" not in out and ":smile:" in out


def test_rows_over_the_limit_are_counted_and_point_to_out():
    frame = pd.DataFrame({"customer_id": [f"C{i}" for i in range(50)], "orders": range(50)})
    view = frame_table(frame, title="t", limit=20)
    assert (view.rows_shown, view.rows_total) == (20, 50)
    assert view.note() == "Showing 20 of 50 rows; the whole table: --out FILE (.csv or .parquet)."
    assert frame_table(frame, title="t").note() is None


def test_wide_tables_keep_the_columns_that_fit():
    frame = pd.DataFrame({"segment": ["a", "b"], **{f"column_{i:02d}": [1000 * i, 2] for i in range(30)}})
    view = frame_table(frame, title="wide", width=80, left=("segment",))
    out = render(view.table, width=80)
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "…" not in out  # no squeezed columns
    assert view.shown[0] == "segment" and 1 < view.columns_shown < 31
    assert view.note() == (
        f"Showing {view.columns_shown} of 31 columns; the whole table: --out FILE (.csv or .parquet)."
    )
    ranked = frame_table(frame, title="wide", width=80, priority=["segment", "column_29", "column_28"])
    assert ranked.shown[-2:] == ["column_28", "column_29"]  # kept first, shown in the frame's order
    assert ranked.shown[:2] == ["segment", "column_00"] and ranked.columns_shown == view.columns_shown


def test_a_big_transition_matrix_keeps_its_largest_segments():
    names = [f"s{i:02d}" for i in range(29)]
    matrix = pd.DataFrame(0, index=[*names, "(new)"], columns=names)
    for i, name in enumerate(names):
        matrix.loc[name, name] = 10 * (i + 1)  # s28 is the largest segment
    matrix.loc["(new)", "s03"] = 5
    view = matrix_table(matrix, title="behaviour", spec=",.0f", width=80)
    out = render(view.table, width=80)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    kept = view.shown[1:]
    assert kept == sorted(kept) and "s28" in kept and "s00" not in kept
    assert view.rows_total == 30 and view.columns_total == 30
    assert "the largest segments" in view.note()
    rows = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert rows == [*kept, "(new)"]
    small = matrix.iloc[:5, :5]
    assert matrix_table(small, title="t", spec=",.0f", width=80).note() is None

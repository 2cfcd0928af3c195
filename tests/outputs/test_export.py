"""Exports: CSV cells a spreadsheet would run as formulas are neutralised, numbers stay numbers,
Parquet keeps types, and a bad --out is refused before any work."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

from microseg.errors import InvalidInputError
from microseg.outputs.export import neutralise, safe_for_spreadsheets, table_format, write_table

HOSTILE = ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", '=HYPERLINK("http://x")']


@pytest.mark.parametrize("cell", HOSTILE)
def test_formula_cells_get_a_quote_in_front(cell):
    assert neutralise(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["C1", "", "a=b", "-4", "-4.50", "+1.5e3", ".5", "'quoted", "[/x]"])
def test_other_text_is_kept(cell):
    assert neutralise(cell) == cell


def test_csv_neutralises_text_but_keeps_negative_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": HOSTILE + ["C1"],
            "spend": [-4.5, 1.0, -2.0, 0.0, 3.25, -1.0, 7.0, 8.0],
            "orders": [-1, 2, 3, 4, 5, 6, 7, 8],
            "label": pd.Series(["-x", None, "ok", "=x", "y", "z", "@", "w"], dtype="string"),
        }
    )
    path = write_table(frame, tmp_path / "out.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["customer_id"] for r in rows] == ["'" + c for c in HOSTILE] + ["C1"]
    assert [r["spend"] for r in rows][:3] == ["-4.5", "1.0", "-2.0"]  # numbers are not touched
    assert rows[0]["orders"] == "-1"
    assert [r["label"] for r in rows] == ["'-x", "", "ok", "'=x", "y", "z", "'@", "w"]
    # nothing else changed: reading back and stripping the quotes gives the frame again
    back = pd.read_csv(path, keep_default_na=False)
    assert back["customer_id"].str.removeprefix("'").tolist() == [*HOSTILE, "C1"]
    assert back["spend"].tolist() == frame["spend"].tolist()


def test_column_names_are_neutralised_too():
    frame = pd.DataFrame({"=cmd": [1], "segment": ["a"]})
    assert list(safe_for_spreadsheets(frame).columns) == ["'=cmd", "segment"]
    assert list(frame.columns) == ["=cmd", "segment"]  # the caller's frame is left alone


def test_parquet_keeps_values_and_types(tmp_path):
    frame = pd.DataFrame(
        {
            "customer_id": ["=1+1", "C2"],
            "spend": [-4.5, 2.0],
            "day": pd.to_datetime(["2025-01-31", "2025-02-28"]),
        }
    )
    path = write_table(frame, tmp_path / "out.parquet")
    back = pd.read_parquet(path)
    assert back["customer_id"].tolist() == ["=1+1", "C2"]
    assert back["spend"].tolist() == [-4.5, 2.0]
    assert str(back["day"].dtype).startswith("datetime64")


def test_bad_targets_are_clear_errors(tmp_path):
    with pytest.raises(InvalidInputError, match=r"--out: '.*x\.xlsx' must end in \.csv or \.parquet"):
        table_format(tmp_path / "x.xlsx")
    with pytest.raises(InvalidInputError, match="folder .* does not exist"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "missing" / "x.csv")


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def half_written(self, path, **kwargs):
        with open(path, "w") as f:
            f.write("customer_id\nC1\n")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_table(pd.DataFrame({"customer_id": ["C1", "C2"]}), tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []

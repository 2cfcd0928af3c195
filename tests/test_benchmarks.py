"""Every benchmark of ``make bench`` runs from a clean checkout (on tiny sizes here) and prints
the ratio it is judged by."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

CASES = {
    "import_speed.py": (["--events", "20000"], "bare"),
    "clv_speed.py": (
        ["--customers", "3000", "--repeat", "1", "--without-lifetimes"],
        "cost vs bare DuckDB scan",
    ),
    "segment_speed.py": (["--customers", "3000"], "ratio      whole run / reference"),
    "backfill_speed.py": (["--customers", "2000", "--months", "3"], "ratio      backfill / one run"),
    "cluster_sample.py": (
        ["--customers", "3000", "--sizes", "500,1000"],
        "smallest ARI of any sample against the largest",
    ),
    "scale.py": (["--customers", "2000"], "peak resident memory"),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_prints_its_ratio(script, tmp_path):
    args, expected = CASES[script]
    out = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # as from a fresh clone: nothing but the installed package and the script
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert expected in out.stdout, out.stdout[-3000:]


def test_every_benchmark_is_covered():
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(CASES)

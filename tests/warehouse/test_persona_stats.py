"""The engine computes the statistics of the segment cards exactly as the in-memory path does.

A run describes every segment of every layer from aggregates the engine computes over the run's
per-customer table (``warehouse.persona_stats``); a profile given as a DataFrame is described
from its arrays (``personas.persona_context``). Both feed the same card writer, so every card of
every layer (stages, tiers, composite codes, behaviour and micro-segments within stages, the
demographic layer, composites and rule segments, declared attributes) must be the same: labels,
sizes, mixes and lists exactly, numbers to 1e-9 (sums of floats added in another order; a mean
that is zero up to rounding is within 1e-9 of zero either way).
"""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

import microseg.pipeline
from microseg.project import Project
from microseg.registry import LAYERS
from tests.segments.test_attributes import CONFIG as ATTRIBUTES_CONFIG
from tests.segments.test_attributes import _write as write_attributes

RULES = """
[segments.composites]
new_highly_engaged = { tenure = ["0-3m"], engagement = ["high"] }
valuable_regulars = { clv = ["top_10", "top_20"], engagement = ["high", "medium"] }

[segments.rules]
big_spenders = "revenue > 300"
lapsing_app_users = "stage = 'at_risk' and app_events > 0"
nobody = "revenue < 0"
"""


def in_memory(monkeypatch) -> None:
    """Runs from now on describe their segments from the profile's arrays (all its columns
    read into memory), not in the engine."""
    monkeypatch.setattr(microseg.pipeline, "EngineCustomers", lambda *args: None)
    monkeypatch.setattr(microseg.pipeline, "in_memory_columns", lambda settings: None)


def stored_cards(project: Project) -> dict[tuple, dict]:
    rows = project.warehouse.table("segments").to_pandas()
    return {(r["kind"], r["segment_id"]): r for r in rows.to_dict("records")}


def assert_close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: {a} != {b}"
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        assert same, f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_cards(engine: Project, memory: Project) -> set[str]:
    """Every stored segment row the same; returns the layers compared."""
    left, right = stored_cards(engine), stored_cards(memory)
    assert left.keys() == right.keys()
    for key, row in left.items():
        other = right[key]
        for column, value in row.items():
            if column == "computed_at":
                continue
            if isinstance(value, str) and value[:1] in "{[":
                assert_close(json.loads(value), json.loads(other[column]), f"{key}.{column}")
            elif not (pd.isna(value) and pd.isna(other[column])):
                assert_close(value, other[column], f"{key}.{column}")
    return {kind for kind, _ in left}


def twin_runs(root, tmp_path, monkeypatch) -> tuple[Project, Project]:
    """The project at ``root`` run as of its analysis date twice: cards from the engine, and
    (a copy) cards from the profile's arrays."""
    copy = tmp_path / "memory"
    shutil.copytree(root, copy)
    engine = Project(root)
    engine.run()
    with monkeypatch.context() as patch:
        in_memory(patch)
        memory = Project(copy)
        memory.run()
    return engine, memory


def test_every_layer_of_the_demo_is_described_alike(demo_shop, tmp_path, monkeypatch):
    root = tmp_path / "engine"
    shutil.copytree(demo_shop, root)
    with open(root / "microseg.toml", "a") as config:
        config.write(RULES)
    engine, memory = twin_runs(root, tmp_path, monkeypatch)
    try:
        layers = assert_same_cards(engine, memory)
        assert layers == set(LAYERS)  # every layer of the registry
        rules = engine.segments("rule").set_index("segment_id")
        assert "nobody" not in rules.index  # a rule nobody satisfies has no card
        assert rules.loc["big_spenders", "size"] > 0
    finally:
        engine.close()
        memory.close()


@pytest.fixture
def attributes_project(tmp_path):
    root = tmp_path / "engine"
    root.mkdir()
    write_attributes(root)
    (root / "microseg.toml").write_text(ATTRIBUTES_CONFIG)
    with Project(root) as project:
        project.import_sources()
    return root


def test_declared_attributes_are_described_alike(attributes_project, tmp_path, monkeypatch):
    engine, memory = twin_runs(attributes_project, tmp_path, monkeypatch)
    try:
        assert_same_cards(engine, memory)
        cards = engine.segments("demographic")
        attributes = [json.loads(c)["demographics"]["attributes"] for c in cards["card"]]
        assert all(
            set(a) == {"age_band", "income_band", "household_size", "marital_status"} for a in attributes
        )
        assert any(a["income_band"] for a in attributes) and all(a["household_size"] > 0 for a in attributes)
    finally:
        engine.close()
        memory.close()

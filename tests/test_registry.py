"""The layer and stage registry, and range checks of every numeric setting."""

import math

import pytest

from microseg.config import all_settings, parse_config
from microseg.errors import ConfigError, InvalidInputError
from microseg.registry import EXCLUSIVE_LAYERS, LAYERS, MULTI_LAYERS, check_layer, segment_order


def test_every_layer_is_exclusive_or_multi():
    assert set(EXCLUSIVE_LAYERS) | set(MULTI_LAYERS) == set(LAYERS)
    assert not set(EXCLUSIVE_LAYERS) & set(MULTI_LAYERS)


def test_misspelt_layer_is_an_error_with_a_suggestion():
    with pytest.raises(InvalidInputError, match='did you mean "lifecycle"'):
        check_layer("lifecyle")
    with pytest.raises(InvalidInputError, match="composite_code"):
        check_layer("composites_code")
    assert check_layer("composite") == "composite"


def test_tier_order_reads_from_the_top():
    assert sorted(["rest", "top_20", "none", "top_1", "top_5"], key=segment_order("clv_tier")) == [
        "top_1",
        "top_5",
        "top_20",
        "rest",
        "none",
    ]
    tenure = ["2y+", "1y-2y", "0-3m", "3m-1y", "none", "(new)"]
    assert sorted(tenure, key=segment_order("tenure_tier")) == [
        "0-3m",
        "3m-1y",
        "1y-2y",
        "2y+",
        "none",
        "(new)",
    ]
    stages = ["churned", "active", "prospect", "(gone)", "new"]
    assert sorted(stages, key=segment_order("lifecycle")) == [
        "prospect",
        "new",
        "active",
        "churned",
        "(gone)",
    ]


NUMERIC = [(name, s) for name, s in all_settings() if s.minimum is not None or s.maximum is not None]


def _config(dotted: str, value) -> dict:
    if dotted.startswith("attributes.<name>."):  # one table per declared attribute
        return {"attributes": {"x": {dotted.rsplit(".", 1)[1]: value}}}
    if dotted.startswith("sources.<name>."):  # one table per source
        return {"sources": {"x": {"path": "x.csv", dotted.rsplit(".", 1)[1]: value}}}
    section, key = dotted.split(".")
    return {section: {key: value}}


@pytest.mark.parametrize("name,setting", NUMERIC, ids=[n for n, _ in NUMERIC])
def test_numeric_settings_are_range_checked_when_the_config_loads(tmp_path, name, setting):
    for bad in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="finite" if setting.type is float else "integer"):
            parse_config(_config(name, bad), tmp_path)
    if setting.maximum is not None:
        over = setting.maximum + (1 if setting.type is int else setting.maximum or 1)
        with pytest.raises(ConfigError, match=name.replace("<name>", "x")):
            parse_config(_config(name, over), tmp_path)
    if setting.minimum is not None:
        under = setting.minimum - 1
        with pytest.raises(ConfigError, match=name.replace("<name>", "x")):
            parse_config(_config(name, under), tmp_path)


def test_the_issue_examples_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="clv.discount_rate: must be a finite number"):
        parse_config({"clv": {"discount_rate": math.nan}}, tmp_path)
    with pytest.raises(ConfigError, match="engine.threads: must be between 0 and 1024"):
        parse_config({"engine": {"threads": 100_000}}, tmp_path)
    with pytest.raises(ConfigError, match="segments.seed: must be between 0 and 4,294,967,295"):
        parse_config({"segments": {"seed": 2**32}}, tmp_path)

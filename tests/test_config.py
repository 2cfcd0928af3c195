"""Project configuration: defaults, and errors that name the offending key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from microseg.config import (
    all_settings,
    load_config,
    parse_config,
    settings_markdown,
)
from microseg.errors import ConfigError, ProjectNotFoundError
from microseg.schema import contracts_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def parse(data: dict):
    return parse_config(data, Path("/tmp/shop"))


def test_defaults():
    config = parse({})
    assert config.name == "shop"
    assert config.warehouse == Path("/tmp/shop/warehouse.duckdb")
    assert config.analysis_date is None
    assert config.backend == "duckdb"
    assert config.sources == {}


def test_source_defaults_and_dates():
    config = parse(
        {
            "project": {"analysis_date": "2011-12-09"},
            "sources": {"web": {"path": "web.jsonl", "event_type": "page_view"}},
        }
    )
    assert config.analysis_date == dt.date(2011, 12, 9)
    web = config.sources["web"]
    assert (web.kind, web.format, web.missing_customer, web.timezone) == (
        "events",
        "auto",
        "anonymous",
        "UTC",
    )
    assert "nan" in web.null_values


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"projet": {}}, "projet", 'unknown section (did you mean "project"?)'),
        ({"project": {"nmae": "x"}}, "project.nmae", 'unknown setting (did you mean "name"?)'),
        ({"project": {"analysis_date": "2011-13-40"}}, "project.analysis_date", "is not a date"),
        ({"engine": {"backend": "sparks"}}, "engine.backend", '(did you mean "spark"?)'),
        ({"engine": {"threads": "4"}}, "engine.threads", "must be an integer"),
        (  # smaller clustering samples change the segments (docs/segmentation.md)
            {"segments": {"sample_size": 5000}},
            "segments.sample_size",
            "must be between 10,000 and 10,000,000, got 5000",
        ),
        ({"engine": {"threads": True}}, "engine.threads", "must be an integer"),
        ({"engine": {"memory_limit": "lots"}}, "engine.memory_limit", 'must be a size such as "6GB"'),
        ({"engine": {"memory_limit": "0GB"}}, "engine.memory_limit", 'must be a size such as "6GB"'),
        ({"sources": {"s": {}}}, "sources.s.path", "is required"),
        ({"sources": {"s": {"path": 3}}}, "sources.s.path", "must be a string"),
        ({"sources": {"s": {"path": "a", "kind": "orders"}}}, "sources.s.kind", "is not allowed"),
        ({"sources": {"s": {"path": "a", "event_type": "buy"}}}, "sources.s.event_type", "is not allowed"),
        (
            {"sources": {"s": {"path": "a", "columns": {"customer": "CustomerID"}}}},
            "sources.s.columns.customer",
            'unknown field (did you mean "customer_id"?)',
        ),
        (
            {"sources": {"s": {"path": "a", "columns": {"ts": 5}}}},
            "sources.s.columns.ts",
            "must name a source column",
        ),
        (
            {"sources": {"s": {"path": "a", "classify": [{"event_type": "refund", "column": "x"}]}}},
            "sources.s.classify[0]",
            "needs exactly one of starts_with, equals, in",
        ),
        (
            {
                "sources": {
                    "s": {"path": "a", "classify": [{"event_type": "return", "column": "x", "equals": "R"}]}
                }
            },
            "sources.s.classify[0].event_type",
            "is not an event type",
        ),
        (
            {"sources": {"s": {"path": "a", "kind": "customers", "event_type": "purchase"}}},
            "sources.s.event_type",
            'only applies to kind = "events"',
        ),
        (
            {"sources": {"s": {"path": "a", "event_type": "purchase", "columns": {"event_type": "t"}}}},
            "sources.s.event_type",
            "not both",
        ),
        (
            {"sources": {"s": {"path": "a", "timezone": "Mars/Olympus"}}},
            "sources.s.timezone",
            "unknown time zone 'Mars/Olympus'",
        ),
        (
            {"sources": {"s": {"path": "a", "timestamp_format": "dd/mm/yyyy"}}},
            "sources.s.timestamp_format",
            "must be a strptime format",
        ),
        (
            {"sources": {"s": {"path": "a", "missing_customer": "drop"}}},
            "sources.s.missing_customer",
            "choose one of: anonymous, quarantine",
        ),
    ],
)
def test_errors_name_the_key(data, key, message):
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert info.value.key == key
    assert message in str(info.value)
    assert str(info.value).startswith(f"{key}: ")


def test_load_config_reports_file_and_bad_toml(tmp_path):
    with pytest.raises(ProjectNotFoundError, match="microseg init"):
        load_config(tmp_path)
    (tmp_path / "microseg.toml").write_text("[project\nname = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)
    (tmp_path / "microseg.toml").write_text("[project]\nname = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'microseg.toml'}: project.name: must be a string")


def test_every_setting_is_documented():
    text = (DOCS / "configuration.md").read_text()
    for name, _ in all_settings():
        assert f"`{name}`" in text, f"{name} is missing from docs/configuration.md"
    assert text == settings_markdown(), "docs/configuration.md is stale: run `make docs`"


def test_data_model_doc_is_current():
    assert (DOCS / "data-model.md").read_text() == contracts_markdown(), "run `make docs`"

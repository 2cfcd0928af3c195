"""The ``[engine]`` settings reach the DuckDB connection of the project's warehouse."""

from __future__ import annotations

import pytest

from microseg.config import parse_config
from microseg.warehouse.storage import open_warehouse


def _setting(wh, name: str) -> str:
    return wh.fetch(f"SELECT current_setting('{name}')")[0][0]


@pytest.mark.parametrize("storage", ["duckdb", "lake"])
def test_memory_limit_and_threads_are_set_on_the_connection(tmp_path, storage):
    config = parse_config({"engine": {"storage": storage, "memory_limit": "1.5 gb", "threads": 1}}, tmp_path)
    assert config.memory_limit == "1.5GB"
    wh = open_warehouse(config)
    try:
        # DuckDB reports the limit in its own units: 1.5 GB = 1.3 GiB
        assert _setting(wh, "memory_limit") == "1.3 GiB"
        assert _setting(wh, "threads") == 1
    finally:
        wh.close()


def test_without_a_memory_limit_duckdb_keeps_its_default(tmp_path):
    default = open_warehouse(parse_config({}, tmp_path / "a"))
    limited = open_warehouse(parse_config({"engine": {"memory_limit": "1GB"}}, tmp_path / "b"))
    try:
        assert _setting(default, "memory_limit") != _setting(limited, "memory_limit")
        assert _setting(limited, "memory_limit") == "953.6 MiB"
    finally:
        default.close()
        limited.close()

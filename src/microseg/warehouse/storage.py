"""Choosing the warehouse of a project from its settings (``engine.storage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.lake import LakeWarehouse, ParquetLake, copy_into_file

if TYPE_CHECKING:
    from microseg.config import ProjectConfig


def open_warehouse(config: ProjectConfig) -> DuckDBWarehouse:
    """The warehouse of a project: its DuckDB file, with the run results in the Parquet lake
    when ``engine.storage = "lake"``. Results move along when the setting changes: into the
    lake when the lake is opened, back into the file when the file's results are missing.

    >>> import tempfile
    >>> from microseg.config import parse_config
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> wh = open_warehouse(parse_config({"engine": {"storage": "lake"}}, root))
    >>> type(wh).__name__, wh.lake.root == root / "lake"
    ('LakeWarehouse', True)
    >>> wh.close()
    """
    lake = config.lake or config.root / "lake"
    if config.storage == "lake":
        return LakeWarehouse(config.warehouse, lake, config.threads, config.memory_limit)
    warehouse = DuckDBWarehouse(config.warehouse, config.threads, config.memory_limit)
    if lake.is_dir() and _results_left_in_lake(warehouse):
        copy_into_file(warehouse, ParquetLake(lake))
    return warehouse


def _results_left_in_lake(warehouse: DuckDBWarehouse) -> bool:
    """Snapshots recorded while the file holds none of their results: the project used the
    lake, and its results come back into the file."""
    return warehouse.count("snapshots") > 0 and warehouse.count("customer_summary") == 0

"""Choosing the warehouse of a project from its settings (``engine.storage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.lake import LakeWarehouse

if TYPE_CHECKING:
    from microseg.config import ProjectConfig


def open_warehouse(config: ProjectConfig) -> DuckDBWarehouse:
    """The warehouse of a project: its DuckDB file, with the run results in the Parquet lake
    when ``engine.storage = "lake"``.

    >>> import tempfile
    >>> from microseg.config import parse_config
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> wh = open_warehouse(parse_config({"engine": {"storage": "lake"}}, root))
    >>> type(wh).__name__, wh.lake.root == root / "lake"
    ('LakeWarehouse', True)
    >>> wh.close()
    """
    if config.storage == "lake":
        return LakeWarehouse(config.warehouse, config.lake or config.root / "lake", config.threads)
    return DuckDBWarehouse(config.warehouse, config.threads)

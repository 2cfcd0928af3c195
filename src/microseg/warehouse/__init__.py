"""The warehouse: every read and write of the stored tables.

* ``duckdb``: the project's DuckDB file (tables, transactions, bulk statements);
* ``lake``: run results in a lake of Parquet datasets instead (``engine.storage = "lake"``);
* ``storage``: opening the warehouse a project's settings ask for;
* ``ingest``: importing source files into it (reading, validation, quarantine, lineage);
* ``segments``: storing a segmentation (memberships, segments, models, the id registry);
* ``history``: membership history as intervals of snapshots;
* ``snapshots``, ``queries``: the named queries the rest of microseg asks the warehouse.
"""

from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.lake import LakeWarehouse
from microseg.warehouse.storage import open_warehouse

__all__ = ["DuckDBWarehouse", "LakeWarehouse", "open_warehouse"]

"""The warehouse: every read and write of the stored tables.

* ``duckdb``: the project's DuckDB file (tables, transactions, bulk statements);
* ``ingest``: importing source files into it (reading, validation, quarantine, lineage);
* ``segments``: storing a segmentation (memberships, segments, models, the id registry);
* ``history``: membership history as intervals of snapshots;
* ``snapshots``, ``queries``: the named queries the rest of microseg asks the warehouse.
"""

from microseg.warehouse.duckdb import DuckDBWarehouse

__all__ = ["DuckDBWarehouse"]

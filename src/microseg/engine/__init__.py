"""Engines: the only place that knows about DuckDB and Spark.

The pipeline is written in Ibis expressions and runs on whichever backend a connection comes
from. File ingestion (bulk reads, validation, quarantine) runs on the embedded DuckDB warehouse.
"""

from microseg.engine.duckdb import DuckDBWarehouse, connect_duckdb
from microseg.engine.spark import connect_spark, spark_session

__all__ = ["DuckDBWarehouse", "connect_duckdb", "connect_spark", "spark_session"]

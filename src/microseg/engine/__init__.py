"""Engines: connections to DuckDB (embedded, the default) and Apache Spark (scale-out).

The pipeline is written in Ibis expressions and runs on whichever backend a connection comes
from; the stored tables are reached through ``microseg.warehouse``.
"""

from microseg.engine.duckdb import connect_duckdb
from microseg.engine.spark import connect_spark, spark_session

__all__ = ["connect_duckdb", "connect_spark", "spark_session"]

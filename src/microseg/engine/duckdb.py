"""DuckDB as an Ibis backend: a connection with the session settings microseg relies on."""

from __future__ import annotations

from pathlib import Path

import ibis


def connect_duckdb(path: str | Path = ":memory:", threads: int = 0, memory_limit: str = ""):
    """An Ibis DuckDB connection with the session settings microseg relies on; ``threads`` and
    ``memory_limit`` (such as ``"6GB"``) keep DuckDB's defaults when not given."""
    con = ibis.duckdb.connect(str(path))
    con.raw_sql("SET TimeZone = 'UTC'")
    if threads:
        con.raw_sql(f"SET threads = {int(threads)}")
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    return con

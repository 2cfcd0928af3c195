"""The embedded warehouse: one DuckDB file per project, reached through Ibis.

The tables are those of ``microseg.schema``; every statement that reads or writes them lives in
this package (``microseg.warehouse``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis

from microseg.engine.duckdb import connect_duckdb
from microseg.errors import WarehouseError
from microseg.schema import TABLES, Table


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote a string literal for DuckDB SQL."""
    return "'" + value.replace("'", "''") + "'"


def storage_error(exc: BaseException, path: Path | None) -> BaseException:
    """The error to show for a failed write: a full disk said plainly, anything else as it is."""
    text = str(exc)
    if "No space left on device" in text or "disk is full" in text.lower():
        where = f" holding {path}" if path else ""
        return WarehouseError(f"the disk{where} is full; nothing was changed ({text.strip()})")
    return exc


def create_table_sql(table: Table, name: str | None = None, if_not_exists: bool = True) -> str:
    cols = ", ".join(f"{quote_ident(c.name)} {c.type}" for c in table.columns)
    guard = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE TABLE {guard}{quote_ident(name or table.name)} ({cols})"


class DuckDBWarehouse:
    """The project's warehouse file.

    ``ibis`` is the Ibis connection every pipeline step uses; ``sql``/``fetch`` run the
    DuckDB statements of bulk ingestion.
    """

    backend_name = "duckdb"

    def __init__(self, path: str | Path = ":memory:", threads: int = 0, memory_limit: str = "") -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ibis = connect_duckdb(path, threads, memory_limit)
        self._depth = 0  # open transactions (nested ones join the outermost)
        self.con = self.ibis.con  # the raw DuckDB connection, for bulk SQL
        self.ensure_tables()

    # -- tables ------------------------------------------------------------------------------
    def file_tables(self) -> list[Table]:
        """The tables kept in the DuckDB file (all of them here)."""
        return list(TABLES.values())

    def ensure_tables(self) -> None:
        for table in self.file_tables():
            self.sql(create_table_sql(table))
        self._add_new_columns()

    def _add_new_columns(self) -> None:
        """Columns a contract gained since the warehouse file was created are added (empty), so
        that a warehouse made by an earlier version opens without a rebuild."""
        existing: dict[str, set[str]] = {}
        for table, column in self.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'"
        ):
            existing.setdefault(table, set()).add(column)
        for table in self.file_tables():
            have = existing.get(table.name, set())
            for c in table.columns:
                if c.name not in have:
                    self.sql(
                        f"ALTER TABLE {quote_ident(table.name)} ADD COLUMN {quote_ident(c.name)} {c.type}"
                    )

    def has_table(self, name: str) -> bool:
        return bool(
            self.fetch("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])[0][0]
        )

    def table(self, name: str) -> ibis.Table:
        return self.ibis.table(name)

    def count(self, name: str) -> int:
        return int(self.fetch(f"SELECT count(*) FROM {quote_ident(name)}")[0][0])

    def replace_rows(self, table: Table, expr: ibis.Table, where: str | None = None) -> int:
        """Delete rows matching ``where`` (all when None) and insert the result of ``expr``.

        The expression's columns are reordered and cast to the table contract. Returns the
        number of rows inserted.
        """
        return self.replace_query(table, self.ibis.compile(expr), where)

    def replace_query(
        self, table: Table, query: str, where: str | None = None, params: list[Any] | None = None
    ) -> int:
        """``replace_rows`` from a SELECT statement (with ``?`` parameters ``params``)."""
        cols = ", ".join(
            f"CAST({quote_ident(c.name)} AS {c.type}) AS {quote_ident(c.name)}" for c in table.columns
        )
        with self.transaction():
            self.sql(f"DELETE FROM {quote_ident(table.name)}" + (f" WHERE {where}" if where else ""))
            return self.changed(f"INSERT INTO {quote_ident(table.name)} SELECT {cols} FROM ({query})", params)

    def replace_frame(self, table: Table, frame, where: str | None = None) -> int:
        """``replace_rows`` from a pandas DataFrame or Arrow table."""
        name = "__frame_" + table.name
        self.con.register(name, frame)
        try:
            return self.replace_rows(table, self.ibis.table(name), where)
        finally:
            self.con.unregister(name)

    def delete_as_of(self, table: Table, as_of: dt.date) -> None:
        """Remove the rows of one snapshot from a per-snapshot table."""
        self.sql(f"DELETE FROM {quote_ident(table.name)} WHERE as_of = ?", [as_of])

    @contextlib.contextmanager
    def rewriting(self, table: Table) -> Iterator[str]:
        """Change a table with UPDATE/DELETE/INSERT statements, all or nothing: the block gets
        the name to use in them (here the table itself, inside a transaction)."""
        with self.transaction():
            yield quote_ident(table.name)

    def spark_table(self, spark, name: str, scratch: Path):
        """A stored table on a Spark (Ibis) connection: exported to Parquet in ``scratch`` and
        read from there."""
        from microseg.warehouse.queries import export_parquet

        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / f"{name}.parquet"
        export_parquet(self, name, path)
        return spark.read_parquet(str(path))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements inside run as one transaction: all of them, or none on an error.

        A transaction opened inside another joins it (DuckDB has no nested transactions), so a
        step that is atomic on its own is also atomic as part of a larger unit such as a run.
        A failure is reported by its own cause, even when the rollback fails too (as it does
        when the disk is full).
        """
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.sql("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
            self._before_commit()
            self.sql("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):  # the transaction may already be aborted
                self.sql("ROLLBACK")
            self._after_rollback()
            error = storage_error(exc, self.path)
            if error is exc:
                raise
            raise error from exc
        finally:
            self._depth = 0

    def _before_commit(self) -> None:
        """Work that must be done just before a transaction commits (none for the file alone)."""

    def _after_rollback(self) -> None:
        """Clean-up after a transaction was rolled back (none for the file alone)."""

    # -- raw SQL -----------------------------------------------------------------------------
    def sql(self, statement: str, params: list[Any] | None = None) -> None:
        self.con.execute(statement, params or [])

    def changed(self, statement: str, params: list[Any] | None = None) -> int:
        """Run an INSERT/UPDATE/DELETE and return how many rows it changed."""
        return int(self.con.execute(statement, params or []).fetchone()[0])

    def fetch(self, query: str, params: list[Any] | None = None) -> list[tuple]:
        return self.con.execute(query, params or []).fetchall()

    def fetch_df(self, query: str, params: list[Any] | None = None):
        return self.con.execute(query, params or []).df()

    def fetch_arrow(self, query: str, params: list[Any] | None = None):
        """The result of ``query`` as an Arrow table."""
        return self.con.sql(query, params=params or None).to_arrow_table()

    def describe(self, relation_sql: str) -> dict[str, str]:
        """Column name → DuckDB type of a relation (a table function call or subquery)."""
        rows = self.fetch(f"DESCRIBE SELECT * FROM {relation_sql}")
        return {r[0]: r[1] for r in rows}

    def close(self) -> None:
        self.ibis.disconnect()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

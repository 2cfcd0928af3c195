"""A lake of Parquet datasets: the run results of a project, readable by DuckDB and by Spark.

With ``engine.storage = "lake"`` every table of run results (each table with an ``as_of`` column
but ``snapshots``) is a Parquet dataset in a folder, partitioned by snapshot date, Hive style::

    <lake>/customer_summary/as_of=2025-12-31/part-0.parquet
    <lake>/segment_history/part-0.parquet          (one dataset, rewritten whole)

The project's DuckDB file keeps the imported data (events, customers, products, imports,
quarantine) and the small bookkeeping tables: ``snapshots``, which says that a snapshot is stored
and from which inputs, and ``segment_registry``. Its connection sees each lake table as a view of
that name over the Parquet files, so every read of the warehouse works unchanged.

Writing is atomic per partition. A partition is written into a hidden folder of its table
(``_staging-...``; DuckDB reads only the files the views list, Spark skips names that start with
``_``), then moved into place by one rename: a new partition appears whole, and the one file of
an existing partition is replaced by the new one, so readers see the old rows or the new ones.
Inside a transaction nothing is moved until it commits: the warehouse's own reads see the staged
rows, other readers the previous ones. At the commit the staged partitions are moved in, then
the DuckDB file commits; the ``snapshots`` row, written last by a run, is therefore only stored
once every partition of the run is in place. A run that fails (or is killed) before its commit
leaves every partition as it was; one killed during the moves leaves each partition old or new,
never half written, and its snapshot unrecorded, so that it is computed again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from microseg.errors import InvalidInputError, WarehouseError
from microseg.schema import SEGMENT_HISTORY, SNAPSHOTS, TABLES, Table
from microseg.warehouse.duckdb import DuckDBWarehouse, quote_ident, quote_literal

#: Tables stored one partition per snapshot date.
PARTITIONED: dict[str, Table] = {
    name: table for name, table in TABLES.items() if "as_of" in table.column_names and name != SNAPSHOTS.name
}
#: Tables stored as one dataset, replaced whole.
WHOLE: dict[str, Table] = {SEGMENT_HISTORY.name: SEGMENT_HISTORY}
#: Every table that lives in the lake.
LAKE_TABLES: dict[str, Table] = {**PARTITIONED, **WHOLE}

DATA_FILE = "part-0.parquet"
STAGING = "_staging-"  # a partition being written
SET_ASIDE = "_replaced-"  # the previous partition during a folder swap
DROPPED = "_dropped-"  # a partition being deleted

_ONE_DATE = re.compile(r"^\s*as_of\s*=\s*DATE\s*'(\d{4}-\d{2}-\d{2})'\s*$", re.IGNORECASE)


def data_files(folder: Path) -> list[Path]:
    """The Parquet files of a dataset folder, hidden ones left out."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix == ".parquet" and not p.name.startswith(("_", ".")) and p.is_file()
    )


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def dataset_sql(wh: DuckDBWarehouse, table: Table, files: list[Path]) -> str:
    """A SELECT of the rows of ``files`` (a dataset of ``table``) with the contract's columns
    and types; typed and empty without files."""
    if not files:
        cols = ", ".join(f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}" for c in table.columns)
        return f"SELECT {cols} WHERE false"
    listed = "[" + ", ".join(quote_literal(str(f)) for f in files) + "]"
    hive = (
        "hive_partitioning = true, hive_types = {'as_of': DATE}"
        if table.name in PARTITIONED
        else "hive_partitioning = false"
    )
    source = f"read_parquet({listed}, union_by_name = true, {hive})"
    stored = wh.describe(source)

    def column(c) -> str:
        # a column the contract gained after the files were written reads as empty
        if c.name not in stored:
            return f"CAST(NULL AS {c.type}) AS {quote_ident(c.name)}"
        if stored[c.name].replace(" ", "") == c.type.replace(" ", ""):
            return quote_ident(c.name)
        return f"CAST({quote_ident(c.name)} AS {c.type}) AS {quote_ident(c.name)}"

    return f"SELECT {', '.join(column(c) for c in table.columns)} FROM {source}"


def copy_into_file(wh: DuckDBWarehouse, lake: ParquetLake) -> list[str]:
    """Copy the results stored in ``lake`` into the tables of the DuckDB file (a project that
    went back from the lake to the file), in one transaction; the lake is left as it is.
    Returns the tables copied."""
    copied = []
    with wh.transaction():
        for table in LAKE_TABLES.values():
            if table.name in PARTITIONED:
                files = [f for day_files in lake.partitions(table.name).values() for f in day_files]
            else:
                files = lake.whole_files(table.name)
            if files:
                wh.replace_query(table, dataset_sql(wh, table, files))
                copied.append(table.name)
    return copied


class ParquetLake:
    """The folder of the lake: where each dataset lies, and moving written files into place.

    >>> import tempfile
    >>> lake = ParquetLake(Path(tempfile.mkdtemp()))
    >>> lake.partitions("customer_summary")
    {}
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, table: str) -> Path:
        return self.root / table

    def partition_folder(self, table: str, as_of: dt.date) -> Path:
        return self.folder(table) / f"as_of={as_of.isoformat()}"

    def partitions(self, table: str) -> dict[dt.date, list[Path]]:
        """The data files of each stored partition of a partitioned table, by date."""
        folder = self.folder(table)
        if not folder.is_dir():
            return {}
        found: dict[dt.date, list[Path]] = {}
        for entry in sorted(folder.iterdir()):
            if not entry.name.startswith("as_of=") or not entry.is_dir():
                continue
            try:
                day = dt.date.fromisoformat(entry.name.removeprefix("as_of="))
            except ValueError:
                raise WarehouseError(
                    f"{entry}: not a partition of the lake (expected a folder as_of=YYYY-MM-DD)"
                ) from None
            files = data_files(entry)
            if files:
                found[day] = files
        return found

    def whole_files(self, table: str) -> list[Path]:
        """The data files of a table stored whole."""
        return data_files(self.folder(table))

    def stage(self, table: str, as_of: dt.date | None) -> Path:
        """A new hidden folder of ``table`` to write a partition (or the whole table) into;
        returns the path of the data file to write."""
        target = self.folder(table) / f"{STAGING}{uuid.uuid4().hex}"
        if as_of is not None:
            target = target / f"as_of={as_of.isoformat()}"  # so that the staged file reads as its partition
        target.mkdir(parents=True)
        return target / DATA_FILE

    def discard(self, staged: Path) -> None:
        """Remove a staged file and its hidden folder."""
        shutil.rmtree(self._staging_root(staged), ignore_errors=True)

    def _staging_root(self, staged: Path) -> Path:
        folder = staged.parent
        return folder.parent if folder.name.startswith("as_of=") else folder

    def publish(self, table: str, as_of: dt.date | None, staged: Path) -> None:
        """Move a staged file into place as the partition of ``as_of`` (the whole table when
        None), atomically for every reader."""
        target = self.folder(table) if as_of is None else self.partition_folder(table, as_of)
        if as_of is not None and not target.exists():
            os.rename(staged.parent, target)  # a new partition appears whole
        elif [p.name for p in data_files(target)] in ([], [DATA_FILE]):
            os.replace(staged, target / DATA_FILE)  # readers see the old file or the new one
        elif as_of is not None:
            self._swap(target, staged.parent, as_of)
        else:
            others = ", ".join(p.name for p in data_files(target))
            raise WarehouseError(
                f"{target} holds Parquet files microseg did not write ({others}); move them away"
            )
        _sync_folder(target.parent if as_of is not None else target)
        self.discard(staged)

    def _swap(self, target: Path, staged_folder: Path, as_of: dt.date) -> None:
        """Replace a partition of several files (one not written by microseg) by two renames;
        ``recover`` undoes the first when a crash falls between them."""
        aside = target.parent / f"{SET_ASIDE}{uuid.uuid4().hex}-{as_of.isoformat()}"
        os.rename(target, aside)
        os.rename(staged_folder, target)
        shutil.rmtree(aside, ignore_errors=True)

    def drop(self, table: str, as_of: dt.date) -> None:
        """Delete the partition of ``as_of`` (one rename takes it out of every reader's view)."""
        target = self.partition_folder(table, as_of)
        if target.exists():
            gone = target.parent / f"{DROPPED}{uuid.uuid4().hex}"
            os.rename(target, gone)
            shutil.rmtree(gone, ignore_errors=True)

    def recover(self) -> list[str]:
        """Finish what a crashed writer left: a partition set aside by an interrupted swap is
        put back when nothing replaced it, and hidden work folders are removed. Returns what
        was done, one line each."""
        done: list[str] = []
        for folder in sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
        ):
            for entry in sorted(folder.iterdir()):
                if entry.name.startswith(SET_ASIDE):
                    original = folder / ("as_of=" + entry.name.split("-", 2)[2])
                    if not original.exists():
                        os.rename(entry, original)
                        done.append(f"restored {original}")
                        continue
                    shutil.rmtree(entry, ignore_errors=True)
                    done.append(f"removed {entry}")
                elif entry.name.startswith((STAGING, DROPPED)):
                    shutil.rmtree(entry, ignore_errors=True)
                    done.append(f"removed {entry}")
        return done


class LakeWarehouse(DuckDBWarehouse):
    """The warehouse with its run results in a Parquet lake (see the module documentation).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with LakeWarehouse(folder / "warehouse.duckdb", folder / "lake") as wh:
    ...     wh.count("customer_summary")
    0
    """

    def __init__(self, path: str | Path, lake: str | Path, threads: int = 0, memory_limit: str = "") -> None:
        self.lake = ParquetLake(Path(lake))
        # staged writes of the open transaction: (table, date or None) -> staged file, None to delete
        self._pending: dict[tuple[str, dt.date | None], Path | None] = {}
        super().__init__(path, threads, memory_limit)

    # -- tables ------------------------------------------------------------------------------
    def file_tables(self) -> list[Table]:
        return [t for t in TABLES.values() if t.name not in LAKE_TABLES]

    def ensure_tables(self) -> None:
        self.lake.recover()
        # a file with results stored in it (storage switched to the lake) hands them over
        in_file = {r[0] for r in self.fetch("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
        for table in LAKE_TABLES.values():
            if table.name in in_file:
                self._move_into_lake(table)
        super().ensure_tables()
        for table in LAKE_TABLES.values():
            self._refresh_view(table)

    def _move_into_lake(self, table: Table) -> None:
        name = quote_ident(table.name)
        if table.name in PARTITIONED:
            for (day,) in self.fetch(f"SELECT DISTINCT as_of FROM {name} ORDER BY 1"):
                staged = self.lake.stage(table.name, day)
                self._copy(table, f"SELECT * FROM {name} WHERE as_of = ?", [day], staged, day)
                self.lake.publish(table.name, day, staged)
        elif self.fetch(f"SELECT count(*) FROM {name}")[0][0]:
            staged = self.lake.stage(table.name, None)
            self._copy(table, f"SELECT * FROM {name}", [], staged, None)
            self.lake.publish(table.name, None, staged)
        self.sql(f"DROP TABLE {name}")  # only once every row is in the lake

    def _visible_files(self, table: Table) -> list[Path]:
        """The files the warehouse reads for ``table``: the stored ones, with the writes of the
        open transaction in place of the partitions they replace."""
        if table.name in WHOLE:
            if (table.name, None) in self._pending:
                staged = self._pending[(table.name, None)]
                return [staged] if staged else []
            return self.lake.whole_files(table.name)
        parts = self.lake.partitions(table.name)
        for (name, day), staged in self._pending.items():
            if name == table.name:
                if staged is None:
                    parts.pop(day, None)
                else:
                    parts[day] = [staged]
        return [f for day in sorted(parts) for f in parts[day]]

    def _refresh_view(self, table: Table) -> None:
        view = dataset_sql(self, table, self._visible_files(table))
        self.sql(f"CREATE OR REPLACE TEMP VIEW {quote_ident(table.name)} AS {view}")

    # -- writes ------------------------------------------------------------------------------
    def _copy(self, table: Table, query: str, params: list[Any], staged: Path, as_of: dt.date | None) -> int:
        """Write the rows of ``query`` to ``staged`` with the contract's column types (the
        partition column left to the folder name). Returns the number of rows."""
        columns = [c for c in table.columns if not (as_of is not None and c.name == "as_of")]
        cols = ", ".join(f"CAST({quote_ident(c.name)} AS {c.type}) AS {quote_ident(c.name)}" for c in columns)
        check = ""
        if as_of is not None:
            # a row of another date would be re-dated by the folder it lands in: refuse it
            day = f"DATE '{as_of.isoformat()}'"
            message = quote_literal(
                f"{table.name}: a row dated otherwise than {as_of} cannot be stored as of {as_of}"
            )
            check = f" WHERE CASE WHEN as_of = {day} THEN true ELSE error({message}) END"
        try:
            return self.changed(
                f"COPY (SELECT {cols} FROM ({query}){check}) TO {quote_literal(str(staged))} (FORMAT parquet)",
                params,
            )
        except Exception as exc:
            if "dated otherwise than" in str(exc):
                raise InvalidInputError(str(exc).split("Error: ", 1)[-1].strip()) from None
            raise

    def _partition_of(self, table: Table, where: str | None) -> dt.date | None:
        if table.name in WHOLE:
            if where is not None:
                raise InvalidInputError(
                    f"{table.name} is stored whole in the lake: it is replaced whole, not {where!r}"
                )
            return None
        match = _ONE_DATE.match(where or "")
        if match is None:
            raise InvalidInputError(
                f"{table.name} is stored in the lake one date at a time: replace the rows of one "
                f"as_of (\"as_of = DATE 'YYYY-MM-DD'\"), not {where!r}"
            )
        return dt.date.fromisoformat(match.group(1))

    def replace_query(
        self, table: Table, query: str, where: str | None = None, params: list[Any] | None = None
    ) -> int:
        if table.name not in LAKE_TABLES:
            return super().replace_query(table, query, where, params)
        as_of = self._partition_of(table, where)
        with self.transaction():
            staged = self.lake.stage(table.name, as_of)
            try:
                rows = self._copy(table, query, params or [], staged, as_of)
            except BaseException:
                self.lake.discard(staged)
                raise
            earlier = self._pending.get((table.name, as_of))
            self._pending[(table.name, as_of)] = staged
            self._refresh_view(table)
            if earlier is not None:  # written twice in one transaction: the later one stands
                self.lake.discard(earlier)
        return rows

    def delete_as_of(self, table: Table, as_of: dt.date) -> None:
        if table.name not in PARTITIONED:
            return super().delete_as_of(table, as_of)
        with self.transaction():
            earlier = self._pending.get((table.name, as_of))
            self._pending[(table.name, as_of)] = None
            self._refresh_view(table)
            if earlier is not None:
                self.lake.discard(earlier)

    @contextlib.contextmanager
    def rewriting(self, table: Table) -> Iterator[str]:
        """A table stored whole is changed in a temporary copy, written back whole."""
        if table.name not in WHOLE:
            with super().rewriting(table) as name:
                yield name
            return
        work = quote_ident(f"__rewrite_{table.name}")
        with self.transaction():
            self.sql(f"CREATE OR REPLACE TEMP TABLE {work} AS SELECT * FROM {quote_ident(table.name)}")
            try:
                yield work
                self.replace_query(table, f"SELECT * FROM {work}")
            finally:
                # after a failed statement the transaction is aborted and its rollback drops the copy
                with contextlib.suppress(Exception):
                    self.sql(f"DROP TABLE IF EXISTS {work}")

    def _before_commit(self) -> None:
        """Move every staged partition into place (each atomically), then the file commits."""
        touched = {name for name, _ in self._pending}
        for key in sorted(self._pending, key=lambda k: (k[0], k[1] or dt.date.min)):
            staged = self._pending[key]
            name, as_of = key
            if staged is None:
                self.lake.drop(name, as_of)
            else:
                self.lake.publish(name, as_of, staged)
            del self._pending[key]
        for name in sorted(touched):
            self._refresh_view(LAKE_TABLES[name])

    def _after_rollback(self) -> None:
        """Throw the staged partitions away; the views show the lake as it is."""
        touched = {name for name, _ in self._pending}
        for staged in self._pending.values():
            if staged is not None:
                self.lake.discard(staged)
        self._pending.clear()
        with contextlib.suppress(Exception):  # the file may be unusable; reopening rebuilds the views
            for name in sorted(touched):
                self._refresh_view(LAKE_TABLES[name])

    # -- engines -----------------------------------------------------------------------------
    def spark_table(self, spark, name: str, scratch: Path):
        """A lake table is read by Spark from the lake itself (its stored partitions); other
        tables are exported as from the DuckDB file."""
        table = LAKE_TABLES.get(name)
        pending = any(key[0] == name for key in self._pending)
        if table is None or pending or not self._visible_files(table):
            return super().spark_table(spark, name, self.lake.root / "_exports")
        return spark.read_parquet(str(self.lake.folder(name)))

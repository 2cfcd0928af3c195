"""Warehouse transactions: nested units join the outer one, and a failed write is reported by its
own cause, even when the rollback fails too (as it does when the disk is full)."""

from __future__ import annotations

import duckdb
import pytest

from microseg.errors import WarehouseError
from microseg.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def wh(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.sql("CREATE TABLE t (x INTEGER)")
    yield warehouse
    warehouse.close()


def test_a_nested_transaction_joins_the_outer_one(wh):
    with pytest.raises(RuntimeError), wh.transaction():
        with wh.transaction():
            wh.sql("INSERT INTO t VALUES (1)")
        wh.sql("INSERT INTO t VALUES (2)")
        raise RuntimeError("later step failed")
    assert wh.count("t") == 0
    with wh.transaction():
        with wh.transaction():
            wh.sql("INSERT INTO t VALUES (1)")
        wh.sql("INSERT INTO t VALUES (2)")
    assert wh.count("t") == 2


class _FullDisk:
    """A connection whose writes fail as on a full disk and whose rollback then fails too."""

    def __init__(self, con):
        self.con = con

    def execute(self, statement, params=None):
        if statement.startswith("INSERT"):
            raise duckdb.IOException('IO Error: Could not write file "w.duckdb.wal": No space left on device')
        if statement == "ROLLBACK":
            raise duckdb.TransactionException(
                "TransactionContext Error: cannot rollback - no transaction is active"
            )
        return self.con.execute(statement, params or [])


def test_a_full_disk_is_said_plainly_even_when_the_rollback_fails(wh):
    real = wh.con
    wh.con = _FullDisk(real)
    with pytest.raises(WarehouseError, match="is full; nothing was changed") as error, wh.transaction():
        wh.sql("INSERT INTO t VALUES (1)")
    assert "No space left on device" in str(error.value)
    assert "cannot rollback" not in str(error.value)
    wh.con = real
    real.execute("ROLLBACK")
    assert wh.count("t") == 0


def test_other_failures_keep_their_own_type(wh):
    with pytest.raises(duckdb.CatalogException), wh.transaction():
        wh.sql("INSERT INTO missing VALUES (1)")
    assert wh.count("t") == 0

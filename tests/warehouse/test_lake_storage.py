"""The Parquet lake on its own: Hive partitions of one file, atomic replacement, transactions,
recovery after a crash, and results handed over from the DuckDB file."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import ibis
import pandas as pd
import pyarrow.parquet as pq
import pytest

from microseg.config import parse_config
from microseg.errors import InvalidInputError
from microseg.schema import CUSTOMER_SUMMARY, SEGMENT_HISTORY, SEGMENT_MEMBERSHIPS
from microseg.warehouse import open_warehouse
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.lake import DATA_FILE, LAKE_TABLES, LakeWarehouse, ParquetLake

JAN, FEB = dt.date(2025, 1, 31), dt.date(2025, 2, 28)
WHERE = "as_of = DATE '{}'"


def members(as_of: dt.date, segment: str, customers: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(customers)],
            "as_of": as_of,
            "kind": "lifecycle",
            "segment_id": segment,
        }
    )


def write(wh: LakeWarehouse, as_of: dt.date, segment: str, customers: int = 5) -> int:
    frame = members(as_of, segment, customers)
    return wh.replace_frame(SEGMENT_MEMBERSHIPS, frame, WHERE.format(as_of))


def stored(wh: DuckDBWarehouse) -> list[tuple]:
    return wh.fetch("SELECT as_of, segment_id, count(*) FROM segment_memberships GROUP BY ALL ORDER BY ALL")


def hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("_", ".")))


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "warehouse.duckdb", tmp_path / "lake"


@pytest.fixture
def wh(paths):
    warehouse = LakeWarehouse(*paths)
    yield warehouse
    warehouse.close()


def test_every_table_with_an_as_of_but_snapshots_lives_in_the_lake(wh):
    assert set(LAKE_TABLES) == {
        "customer_summary",
        "customer_values",
        "model_fits",
        "value_models",
        "customer_profiles",
        "customer_categories",
        "segment_memberships",
        "segments",
        "segment_changes",
        "segment_models",
        "segment_history",
    }
    in_file = {r[0] for r in wh.fetch("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
    assert not in_file & set(LAKE_TABLES)
    assert {"events", "snapshots", "segment_registry", "imports", "quarantine"} <= in_file
    # an empty lake still reads as typed, empty tables
    assert wh.count("segment_memberships") == 0
    assert wh.table("customer_summary").schema()["net_revenue"] == ibis.dtype("decimal(18, 4)")


def test_a_date_is_one_hive_partition_of_one_file_without_the_date_column(wh, paths):
    assert write(wh, JAN, "active") == 5
    assert write(wh, FEB, "lapsing", 3) == 3
    folder = paths[1] / "segment_memberships"
    assert sorted(p.name for p in folder.iterdir()) == ["as_of=2025-01-31", "as_of=2025-02-28"]
    assert [p.name for p in (folder / "as_of=2025-01-31").iterdir()] == [DATA_FILE]
    schema = pq.read_schema(folder / "as_of=2025-01-31" / DATA_FILE)
    assert schema.names == ["customer_id", "kind", "segment_id"]
    assert stored(wh) == [(JAN, "active", 5), (FEB, "lapsing", 3)]
    # any reader of Hive partitions sees the same rows
    read = wh.fetch(
        f"SELECT as_of, segment_id, count(*) FROM read_parquet('{folder}/*/*.parquet', hive_partitioning = true) "
        "GROUP BY ALL ORDER BY ALL"
    )
    assert [(str(d), s, n) for d, s, n in read] == [("2025-01-31", "active", 5), ("2025-02-28", "lapsing", 3)]


def test_writing_a_date_again_replaces_its_partition(wh, paths):
    write(wh, JAN, "active")
    write(wh, FEB, "active")
    partition = paths[1] / "segment_memberships" / "as_of=2025-01-31"
    before = (partition / DATA_FILE).stat().st_ino
    write(wh, JAN, "lapsing", 2)
    assert stored(wh) == [(JAN, "lapsing", 2), (FEB, "active", 5)]
    assert [p.name for p in partition.iterdir()] == [DATA_FILE]
    assert (partition / DATA_FILE).stat().st_ino != before  # a new file took the old one's place
    assert hidden(partition.parent) == []


def test_writes_of_a_transaction_are_seen_inside_it_and_by_others_after_it_commits(wh, paths):
    write(wh, JAN, "active")
    partition = paths[1] / "segment_memberships" / "as_of=2025-01-31"
    with wh.transaction():
        write(wh, JAN, "lapsing", 2)
        write(wh, FEB, "new", 1)
        assert stored(wh) == [(JAN, "lapsing", 2), (FEB, "new", 1)]
        # another reader of the lake still sees the previous partition, and no new one
        assert set(pq.read_table(partition).column("segment_id").to_pylist()) == {"active"}
        assert not (partition.parent / "as_of=2025-02-28").exists()
    assert set(pq.read_table(partition).column("segment_id").to_pylist()) == {"lapsing"}
    assert stored(wh) == [(JAN, "lapsing", 2), (FEB, "new", 1)]
    assert hidden(partition.parent) == []


def test_a_failed_transaction_leaves_the_previous_partitions(wh, paths):
    write(wh, JAN, "active")
    with pytest.raises(RuntimeError, match="later step"), wh.transaction():
        write(wh, JAN, "lapsing", 2)
        write(wh, FEB, "new", 1)
        raise RuntimeError("a later step failed")
    assert stored(wh) == [(JAN, "active", 5)]
    assert hidden(paths[1] / "segment_memberships") == []
    assert not (paths[1] / "segment_memberships" / "as_of=2025-02-28").exists()


def test_a_writer_killed_before_its_commit_leaves_the_previous_partition(paths):
    with LakeWarehouse(*paths) as wh:
        write(wh, JAN, "active")
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal
        import pandas as pd
        from microseg.schema import SEGMENT_MEMBERSHIPS
        from microseg.warehouse.lake import LakeWarehouse, ParquetLake

        def killed(*args):
            os.kill(os.getpid(), signal.SIGKILL)

        ParquetLake.publish = killed
        wh = LakeWarehouse({str(paths[0])!r}, {str(paths[1])!r})
        frame = pd.DataFrame({{"customer_id": ["x"], "as_of": dt.date(2025, 1, 31), "kind": "lifecycle",
                              "segment_id": "lapsing"}})
        with wh.transaction():
            wh.replace_frame(SEGMENT_MEMBERSHIPS, frame, "as_of = DATE '2025-01-31'")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    folder = paths[1] / "segment_memberships"
    assert [p.name.split("-")[0] for p in folder.iterdir() if p.name.startswith("_")] == ["_staging"]
    with LakeWarehouse(*paths) as wh:
        assert stored(wh) == [(JAN, "active", 5)]
    assert hidden(folder) == []  # opening the lake cleared what the killed writer left


def test_a_writer_killed_while_moving_partitions_in_leaves_each_old_or_new(paths):
    with LakeWarehouse(*paths) as wh:
        write(wh, JAN, "active")
        write(wh, FEB, "active")
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal
        import pandas as pd
        from microseg.schema import SEGMENT_MEMBERSHIPS
        from microseg.warehouse.lake import LakeWarehouse, ParquetLake

        moved = []
        publish = ParquetLake.publish

        def killed_on_the_second(self, *args):
            if moved:
                os.kill(os.getpid(), signal.SIGKILL)
            moved.append(args)
            publish(self, *args)

        ParquetLake.publish = killed_on_the_second
        wh = LakeWarehouse({str(paths[0])!r}, {str(paths[1])!r})
        with wh.transaction():
            for day in (dt.date(2025, 1, 31), dt.date(2025, 2, 28)):
                frame = pd.DataFrame({{"customer_id": ["x"], "as_of": day, "kind": "lifecycle",
                                      "segment_id": "lapsing"}})
                wh.replace_frame(SEGMENT_MEMBERSHIPS, frame, f"as_of = DATE '{{day}}'")
            wh.sql("INSERT INTO snapshots VALUES (DATE '2025-02-28', now()::TIMESTAMP, 1, 1, 1, 'f')")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    with LakeWarehouse(*paths) as wh:
        # January was moved in whole, February not at all; the snapshot is not recorded
        assert stored(wh) == [(JAN, "lapsing", 1), (FEB, "active", 5)]
        assert wh.count("snapshots") == 0


def test_a_partition_swap_interrupted_between_its_renames_is_undone_on_open(paths, monkeypatch):
    # a partition of two files (as another writer may leave) cannot be replaced by one file
    # rename: it is swapped with the new folder in two renames
    with LakeWarehouse(*paths) as wh:
        write(wh, JAN, "active")
    partition = paths[1] / "segment_memberships" / "as_of=2025-01-31"
    shutil.copy(partition / DATA_FILE, partition / "part-1.parquet")
    renames = []

    def crash_on_second_rename(source, target):
        renames.append((source, target))
        if len(renames) == 2:
            raise KeyboardInterrupt("crashed between the renames")
        os.replace(source, target)

    wh = LakeWarehouse(*paths)
    assert stored(wh) == [(JAN, "active", 10)]
    monkeypatch.setattr("microseg.warehouse.lake.os.rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        write(wh, JAN, "lapsing", 2)
    monkeypatch.undo()
    wh.close()
    assert renames[0][0] == partition
    assert not partition.exists()  # the state the crash left: the old partition set aside
    assert [name.split("-")[0] for name in hidden(partition.parent)] == ["_replaced"]
    with LakeWarehouse(*paths) as wh:
        assert stored(wh) == [(JAN, "active", 10)]
        assert hidden(partition.parent) == []
        write(wh, JAN, "lapsing", 2)  # and the swap works when nothing interrupts it
        assert stored(wh) == [(JAN, "lapsing", 2)]
    assert sorted(p.name for p in partition.iterdir()) == [DATA_FILE]


def test_recover_keeps_a_partition_that_was_swapped_in(paths):
    lake = ParquetLake(paths[1])
    folder = paths[1] / "segment_memberships"
    (folder / "as_of=2025-01-31").mkdir(parents=True)
    (folder / "_replaced-0a1b-2025-01-31").mkdir()  # the swap finished but for removing the old one
    assert lake.recover() == [f"removed {folder / '_replaced-0a1b-2025-01-31'}"]
    assert [p.name for p in folder.iterdir()] == ["as_of=2025-01-31"]


def test_deleting_a_date_removes_its_partition_at_the_commit(wh, paths):
    write(wh, JAN, "active")
    write(wh, FEB, "active")
    with wh.transaction():
        wh.delete_as_of(SEGMENT_MEMBERSHIPS, JAN)
        assert stored(wh) == [(FEB, "active", 5)]
        assert (paths[1] / "segment_memberships" / "as_of=2025-01-31").exists()
    assert stored(wh) == [(FEB, "active", 5)]
    assert sorted(p.name for p in (paths[1] / "segment_memberships").iterdir()) == ["as_of=2025-02-28"]


def test_a_row_of_another_date_is_refused(wh):
    write(wh, JAN, "active")
    frame = pd.concat([members(JAN, "lapsing"), members(FEB, "lapsing", 1)])
    with pytest.raises(InvalidInputError, match="segment_memberships: a row dated otherwise than 2025-01-31"):
        wh.replace_frame(SEGMENT_MEMBERSHIPS, frame, WHERE.format(JAN))
    assert stored(wh) == [(JAN, "active", 5)]


def test_only_the_rows_of_one_date_can_be_replaced(wh):
    with pytest.raises(InvalidInputError, match="one date at a time"):
        wh.replace_frame(SEGMENT_MEMBERSHIPS, members(JAN, "x"), "as_of >= DATE '2025-01-01'")
    with pytest.raises(InvalidInputError, match="one date at a time"):
        wh.replace_frame(SEGMENT_MEMBERSHIPS, members(JAN, "x"))


def test_the_history_is_rewritten_whole(wh, paths):
    history = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "kind": "lifecycle",
            "segment_id": "active",
            "valid_from": JAN,
            "valid_to": None,
        }
    )
    wh.replace_frame(SEGMENT_HISTORY, history)
    with wh.rewriting(SEGMENT_HISTORY) as name:
        wh.sql(f"UPDATE {name} SET valid_to = ? WHERE customer_id = 'a'", [FEB])
        assert wh.fetch("SELECT count(valid_to) FROM segment_history")[0][0] == 0  # not yet written
    assert wh.fetch("SELECT customer_id, valid_to FROM segment_history ORDER BY 1") == [
        ("a", FEB),
        ("b", None),
    ]
    assert [p.name for p in (paths[1] / "segment_history").iterdir()] == [DATA_FILE]
    with pytest.raises(RuntimeError), wh.rewriting(SEGMENT_HISTORY) as name:
        wh.sql(f"DELETE FROM {name}")
        raise RuntimeError("failed")
    assert wh.count("segment_history") == 2
    # a failed statement is reported by its own cause, not by the clean-up after it
    with pytest.raises(Exception, match="no_such_column"), wh.rewriting(SEGMENT_HISTORY) as name:
        wh.sql(f"UPDATE {name} SET valid_to = CAST(no_such_column AS DATE)")
    assert wh.count("segment_history") == 2


def test_results_stored_in_the_file_move_into_the_lake(paths):
    with DuckDBWarehouse(paths[0]) as wh:
        wh.replace_frame(SEGMENT_MEMBERSHIPS, members(JAN, "active"), WHERE.format(JAN))
        wh.replace_frame(SEGMENT_MEMBERSHIPS, members(FEB, "lapsing", 2), WHERE.format(FEB))
        before = stored(wh)
    with LakeWarehouse(*paths) as wh:
        assert stored(wh) == before
        assert "segment_memberships" not in {r[0] for r in wh.fetch("SELECT table_name FROM duckdb_tables()")}
    assert sorted(p.name for p in (paths[1] / "segment_memberships").iterdir()) == [
        "as_of=2025-01-31",
        "as_of=2025-02-28",
    ]
    with LakeWarehouse(*paths) as wh:  # and opening it again finds them there
        assert stored(wh) == before


def test_results_follow_the_storage_setting_there_and_back(tmp_path):
    in_file = parse_config({}, tmp_path)
    in_lake = parse_config({"engine": {"storage": "lake"}}, tmp_path)
    summary = pd.DataFrame({c: [None, None] for c in CUSTOMER_SUMMARY.column_names})
    summary = summary.assign(customer_id=["a", "b"], as_of=JAN, orders=[3, 1])
    with open_warehouse(in_file) as wh:
        wh.replace_frame(CUSTOMER_SUMMARY, summary, WHERE.format(JAN))
        wh.replace_frame(SEGMENT_MEMBERSHIPS, members(JAN, "active"), WHERE.format(JAN))
        wh.sql("INSERT INTO snapshots VALUES (DATE '2025-01-31', now()::TIMESTAMP, 1, 2, 4, 'f')")
        before = stored(wh)
    with open_warehouse(in_lake) as wh:
        assert type(wh) is LakeWarehouse
        write(wh, FEB, "lapsing", 2)  # a run stored while in the lake
        after = stored(wh)
        assert after == [*before, (FEB, "lapsing", 2)]
    with open_warehouse(in_file) as wh:  # back to the file: the results come with it
        assert type(wh) is DuckDBWarehouse
        assert stored(wh) == after
        assert wh.fetch("SELECT customer_id, orders FROM customer_summary ORDER BY 1") == [("a", 3), ("b", 1)]
    with open_warehouse(in_lake) as wh:  # and there again
        assert stored(wh) == after

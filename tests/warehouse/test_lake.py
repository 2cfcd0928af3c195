"""A project with ``engine.storage = "lake"`` stores the same results as one with the DuckDB
file, as Hive partitions of Parquet that Spark reads; re-running a date replaces its partitions,
and a run that fails or is killed leaves the previous partitions of its date."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microseg import Project
from microseg.config import parse_config
from microseg.errors import ConfigError
from microseg.warehouse.lake import DATA_FILE, LAKE_TABLES, PARTITIONED, LakeWarehouse

MONTH_ENDS = [dt.date(2025, 10, 31), dt.date(2025, 11, 30), dt.date(2025, 12, 31)]
LAST = MONTH_ENDS[-1]


def use_lake(root) -> None:
    with open(root / "microseg.toml", "a", encoding="utf-8") as config:
        config.write('\n[engine]\nstorage = "lake"\nthreads = 1\n')


def use_one_thread(root) -> None:
    # one DuckDB thread: float sums in the same order on both, so results compare exactly
    with open(root / "microseg.toml", "a", encoding="utf-8") as config:
        config.write("\n[engine]\nthreads = 1\n")


def every_row(project: Project, table: str) -> pd.DataFrame:
    frame = project.warehouse.fetch_df(f"SELECT * FROM {table}")
    frame = frame.drop(columns=[c for c in ("computed_at", "seconds") if c in frame.columns])
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def results(project: Project) -> dict[str, pd.DataFrame]:
    return {table: every_row(project, table) for table in (*LAKE_TABLES, "snapshots", "segment_registry")}


def assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for table, frame in left.items():
        pd.testing.assert_frame_equal(right[table], frame, check_exact=True, obj=table)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """The 2,000-customer demo imported once, then backfilled over three month ends with its
    results in the DuckDB file and, in a copy, in the lake."""
    base = tmp_path_factory.mktemp("lake")
    in_file, in_lake = base / "file", base / "lake"
    project = Project.create_demo(in_file, customers=2000, seed=7)
    project.import_sources()
    project.close()
    shutil.copytree(in_file, in_lake)
    use_one_thread(in_file)
    use_lake(in_lake)
    for root in (in_file, in_lake):
        with Project(root) as project:
            project.backfill(MONTH_ENDS[0], LAST, every="month")
    return in_file, in_lake


@pytest.fixture
def lake_copy(twins, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(twins[1], copy)
    return copy


@pytest.mark.slow
def test_the_lake_stores_what_the_file_stores(twins):
    with Project(twins[0]) as in_file, Project(twins[1]) as in_lake:
        assert type(in_lake.warehouse) is LakeWarehouse and type(in_file.warehouse) is not LakeWarehouse
        expected = results(in_file)
        assert_same(expected, results(in_lake))
        assert sorted(expected["snapshots"]["as_of"].dt.date) == MONTH_ENDS
        for day in MONTH_ENDS:  # and the answers the project gives from them
            pd.testing.assert_frame_equal(in_lake.customer_summary(day), in_file.customer_summary(day))
            pd.testing.assert_frame_equal(
                in_lake.memberships("lifecycle", day), in_file.memberships("lifecycle", day)
            )
        assert len(expected["segment_history"]) > len(expected["segment_memberships"]) / len(MONTH_ENDS)
        # movement between snapshots is read through Ibis relations over the same tables
        pd.testing.assert_frame_equal(
            in_lake.transition_matrix("lifecycle", MONTH_ENDS[0], LAST),
            in_file.transition_matrix("lifecycle", MONTH_ENDS[0], LAST),
        )
        pd.testing.assert_frame_equal(
            in_lake.flows("lifecycle", MONTH_ENDS), in_file.flows("lifecycle", MONTH_ENDS)
        )


@pytest.mark.slow
def test_a_backfill_writes_one_partition_of_one_file_per_month_end(twins):
    lake = twins[1] / "lake"
    for table in PARTITIONED:
        folders = sorted(p.name for p in (lake / table).iterdir())
        assert folders == [f"as_of={day}" for day in MONTH_ENDS], table
        for folder in folders:
            assert [p.name for p in (lake / table / folder).iterdir()] == [DATA_FILE]
    assert [p.name for p in (lake / "segment_history").iterdir()] == [DATA_FILE]
    # files carry the contract's types: money is exact DECIMAL(18,4)
    schema = pq.read_schema(lake / "customer_summary" / f"as_of={LAST}" / DATA_FILE)
    assert schema.field("net_revenue").type == pa.decimal128(18, 4)
    assert schema.field("first_event_at").type == pa.timestamp("us")
    assert "as_of" not in schema.names  # the folder gives the date
    with Project(twins[1]) as project:
        in_file = {
            r[0]
            for r in project.warehouse.fetch("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")
        }
        assert not in_file & set(LAKE_TABLES)
        assert project.warehouse.count("events") > 0


@pytest.mark.slow
def test_running_a_date_again_replaces_its_partitions(lake_copy):
    partition = lake_copy / "lake" / "customer_summary" / f"as_of={LAST}"
    old_file = (partition / DATA_FILE).stat().st_ino
    with Project(lake_copy) as project:
        before = results(project)
        project.snapshot(LAST, force=True)
        after = results(project)
    assert (partition / DATA_FILE).stat().st_ino != old_file
    assert [p.name for p in partition.iterdir()] == [DATA_FILE]
    assert not [p for p in partition.parent.iterdir() if p.name.startswith("_")]
    before.pop("snapshots"), after.pop("snapshots")
    assert_same(before, after)  # the same inputs give the same results, each date once


@pytest.mark.slow
def test_a_failed_run_leaves_the_previous_partitions_of_its_date(lake_copy, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("clustering failed")

    with Project(lake_copy) as project:
        before = results(project)
        monkeypatch.setattr("microseg.pipeline.segment_customers", broken)
        with pytest.raises(RuntimeError, match="clustering failed"):
            project.snapshot(LAST, force=True)
        assert_same(before, results(project))
    for table in LAKE_TABLES:
        assert not [p for p in (lake_copy / "lake" / table).iterdir() if p.name.startswith("_")]


@pytest.mark.slow
def test_a_run_killed_at_its_last_step_leaves_the_previous_partitions_of_its_date(lake_copy):
    with Project(lake_copy) as project:
        before = results(project)
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, signal
        from microseg import Project

        def on_step(name, i, n):
            if name == "history":  # every partition of the date is written by now, none published
                os.kill(os.getpid(), signal.SIGKILL)

        Project({str(lake_copy)!r}).snapshot(dt.date({LAST.year}, {LAST.month}, {LAST.day}), force=True,
                                            on_step=on_step)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=300)
    assert done.returncode == -9, done.stderr.decode()
    assert [p for p in (lake_copy / "lake" / "customer_summary").iterdir() if p.name.startswith("_staging")]
    with Project(lake_copy) as project:
        assert_same(before, results(project))


def test_the_storage_setting_is_checked(tmp_path):
    config = parse_config({"engine": {"storage": "lake", "lake": "/data/lake"}}, tmp_path)
    assert (config.storage, str(config.lake)) == ("lake", "/data/lake")
    assert parse_config({}, tmp_path).lake == tmp_path / "lake"
    with pytest.raises(ConfigError, match="engine.storage"):
        parse_config({"engine": {"storage": "delta"}}, tmp_path)


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_lake_a_duckdb_run_wrote(twins, spark, tmp_path):
    import ibis

    spark_con = ibis.pyspark.connect(spark)
    with Project(twins[1]) as project:
        wh = project.warehouse
        assert wh.table("customer_summary").to_pyarrow().schema.field("net_revenue").type == pa.decimal128(
            18, 4
        )
        for table, key in (
            ("customer_summary", ["as_of", "customer_id"]),
            ("segment_memberships", ["as_of", "kind", "segment_id", "customer_id"]),
            ("segment_history", ["customer_id", "kind", "segment_id", "valid_from"]),
        ):
            # Arrow on both sides: money stays exact decimals
            on_spark = wh.spark_table(spark_con, table, tmp_path).to_pyarrow().to_pandas()
            on_duckdb = wh.table(table).to_pyarrow().to_pandas()
            assert set(on_spark.columns) == set(on_duckdb.columns), table
            on_spark = on_spark[list(on_duckdb.columns)].sort_values(key).reset_index(drop=True)
            on_duckdb = on_duckdb.sort_values(key).reset_index(drop=True)
            for column in on_duckdb.columns:
                if on_duckdb[column].dtype.kind == "M" or column in ("as_of", "valid_from", "valid_to"):
                    on_duckdb[column] = pd.to_datetime(on_duckdb[column]).astype("datetime64[us]")
                    on_spark[column] = pd.to_datetime(on_spark[column]).astype("datetime64[us]")
            assert len(on_duckdb) > 0
            pd.testing.assert_frame_equal(on_spark, on_duckdb, check_dtype=False, check_exact=True, obj=table)
    assert not (twins[1] / "lake" / "_exports").exists()  # read from the lake, not exported

"""Apache Spark (local mode or a cluster) as an Ibis backend."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from microseg.errors import MicrosegError, MissingDependencyError

_SESSIONS: dict[str, object] = {}


def _find_java_home() -> str | None:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    for candidate in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk*")):
        if (candidate / "bin" / "java").exists():
            return str(candidate)
    java = shutil.which("java")
    return str(Path(java).resolve().parent.parent) if java else None


def spark_session(master: str = "local[2]", driver_memory: str = "4g"):
    """A shared SparkSession configured for UTC and loopback-only networking."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise MissingDependencyError("pyspark", "spark") from None
    if master in _SESSIONS:
        return _SESSIONS[master]
    java_home = _find_java_home()
    if java_home is None:
        raise MicrosegError("Spark needs Java 17: install it or set JAVA_HOME")
    os.environ.setdefault("JAVA_HOME", java_home)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = (
        SparkSession.builder.master(master)
        .appName("microseg")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.ansi.enabled", "false")
    )
    if master.startswith("local"):
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    _SESSIONS[master] = session
    return session


def connect_spark(master: str = "local[2]"):
    """An Ibis connection to Spark."""
    try:
        import ibis
    except ImportError:  # pragma: no cover - ibis is a core dependency
        raise MissingDependencyError("ibis-framework", "spark") from None
    session = spark_session(master)
    return ibis.pyspark.connect(session)

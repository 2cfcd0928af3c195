"""Creating project folders: a commented ``microseg.toml`` for a new project, or a demo project
whose sources are generated data with planted truth (``microseg.demo``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from microseg.config import CONFIG_FILE
from microseg.errors import MicrosegError

if TYPE_CHECKING:
    from microseg.demo.shock import Shock

TEMPLATE = """\
# microseg project configuration: every setting is listed in docs/configuration.md
[project]
name = "{name}"
# analysis_date = "2025-12-31"   # "auto": the day of the latest event

[engine]
backend = "duckdb"               # or "spark"

# One table per source. Fields not listed under `columns` are matched by name.
# [sources.orders]
# path = "data/orders-*.csv"
# event_type = "purchase"
# columns = {{ customer_id = "CustomerID", ts = "InvoiceDate", order_id = "InvoiceNo" }}
"""


def new_project_folder(path: str | Path, name: str | None = None, force: bool = False) -> Path:
    """Write a commented ``microseg.toml`` (and an empty ``data`` folder) into ``path``; an
    existing configuration is only replaced with ``force``. Returns the folder.

    >>> import tempfile
    >>> root = new_project_folder(tempfile.mkdtemp(), name="shop")
    >>> (root / "microseg.toml").read_text().splitlines()[2]
    'name = "shop"'
    """
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_FILE
    if config.exists() and not force:
        raise MicrosegError(f"{config} already exists; use --force to overwrite it")
    config.write_text(TEMPLATE.format(name=name or root.name), encoding="utf-8")
    (root / "data").mkdir(exist_ok=True)
    return root


def demo_project_folder(
    path: str | Path,
    *,
    customers: int,
    seed: int,
    fmt: str,
    force: bool,
    progress: Callable[[int, int], None] | None,
    as_of: dt.date | None,
    years: float,
    shock: Shock | None,
) -> Path:
    """Generate demo data into ``path/data`` and write a configuration that imports it (see
    ``Project.create_demo``). Returns the folder."""
    from microseg.demo import generate_demo

    root = Path(path).resolve()
    if (root / CONFIG_FILE).exists() and not force:
        raise MicrosegError(f"{root / CONFIG_FILE} already exists; use --force to replace the demo")
    if force:
        _remove_results(root)
    manifest = generate_demo(
        root / "data",
        customers,
        seed=seed,
        fmt=fmt,
        progress=progress,
        shock=shock,
        years=years,
        **({"as_of": as_of} if as_of else {}),
    )
    lines = [
        "# microseg demo project: generated data with planted truth (data/truth.*)",
        "[project]",
        'name = "microseg-demo"',
        f'analysis_date = "{manifest.as_of.isoformat()}"',
        "",
    ]
    for name, body in manifest.sources().items():
        lines.append(f"[sources.{name}]")
        lines.append(f'path = "data/{body["path"]}"')
        lines.extend(f'{k} = "{v}"' for k, v in body.items() if k != "path")
        lines.append("")
    (root / CONFIG_FILE).write_text("\n".join(lines), encoding="utf-8")
    return root


def _remove_results(root: Path) -> None:
    """Remove what a project folder holds besides its sources and configuration: the warehouse
    (and its spill folder) and the Parquet lake, when the lake is inside the folder (a lake
    elsewhere may be shared, and is left alone)."""
    import contextlib
    import shutil

    from microseg.config import load_config

    lake = root / "lake"
    with contextlib.suppress(MicrosegError):  # an unreadable configuration: the default lake folder
        lake = load_config(root).lake or lake
    for stale in (root / "warehouse.duckdb", root / "warehouse.duckdb.wal"):
        stale.unlink(missing_ok=True)
    for folder in (root / "warehouse.duckdb.tmp", lake):
        if folder.resolve().is_relative_to(root) and folder.is_dir():
            shutil.rmtree(folder)

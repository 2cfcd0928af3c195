"""The quarantine table: list, summarise and clear rejected rows per source and per file.

A file is named as it was imported (its full path) or by its file name alone; a name that
matches no quarantined file is not an error (the quarantine of that file is simply empty).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from microseg.errors import ConfigError
from microseg.registry import suggest
from microseg.warehouse.duckdb import DuckDBWarehouse
from microseg.warehouse.queries import quarantined_in

COLUMNS = ("source", "file", "row_number", "reason", "record")


def _where(source: str | None, file: str | Path | None) -> tuple[str, list]:
    clauses, params = [], []
    if source is not None:
        clauses.append("q.source = ?")
        params.append(source)
    if file is not None:
        name = str(file)
        # the exact path, or any path whose last part is the given name
        clauses.append("(q.file = ? OR q.file = ? OR parse_filename(q.file) = ?)")
        params += [name, str(Path(name).resolve()), name]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def list_rows(
    wh: DuckDBWarehouse, source: str | None = None, file: str | Path | None = None, limit: int | None = None
) -> pd.DataFrame:
    """Quarantined rows (source, file, row_number, reason, record), newest import first."""
    where, params = _where(source, file)
    sql = (
        f"SELECT {', '.join('q.' + c for c in COLUMNS)} FROM quarantine q "
        f"LEFT JOIN imports i USING (import_id) {where} ORDER BY i.started_at DESC NULLS LAST, q.file, q.row_number"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return wh.fetch_df(sql, params)


def count_rows(wh: DuckDBWarehouse, source: str | None = None, file: str | Path | None = None) -> int:
    """How many quarantined rows ``list_rows`` would give without a limit."""
    where, params = _where(source, file)
    return int(wh.fetch(f"SELECT count(*) FROM quarantine q {where}", params)[0][0])


def clear(wh: DuckDBWarehouse, source: str | None = None, file: str | Path | None = None) -> int:
    """Delete quarantined rows (all of them when neither source nor file is given); returns how many."""
    where, params = _where(source, file)
    with wh.transaction():
        return wh.changed(f"DELETE FROM quarantine q {where}" if where else "DELETE FROM quarantine", params)


def check_source(wh: DuckDBWarehouse, sources: Iterable[str], source: str | None) -> None:
    """A source named for the quarantine must be configured (one of ``sources``) or have
    quarantined rows left from an earlier configuration."""
    known = list(sources)
    if source is None or source in known:
        return
    if quarantined_in(wh, source):
        return
    raise ConfigError(
        f"no such source{suggest(source, known)} (sources: {', '.join(known) or 'none configured'})",
        key=f"sources.{source}",
    )

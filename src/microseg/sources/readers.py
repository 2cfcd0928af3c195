"""Step 1 of an import: read a file as it is, numbering its rows.

CSV and JSON lines are read as text so that no value can make the read fail: converting values
is the staging step's job, where a bad value becomes a quarantine reason. Rows that cannot even
be split into columns (CSV) or parsed (JSON) are kept too, with their row number.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from microseg.engine.duckdb import DuckDBWarehouse, quote_ident, quote_literal
from microseg.errors import SourceError

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_IS_OBJECT = "coalesce(CASE WHEN json_valid(__line) THEN json_type(__line) = 'OBJECT' END, false)"


@dataclass
class RawFile:
    """A file as a relation: ``sql`` yields ``__row`` (1-based data row) and the source columns.

    For JSON lines the relation has ``__line`` (the text) and ``__ok`` (it is a JSON object);
    ``columns`` then lists the top-level keys seen in the first lines.
    """

    sql: str
    columns: dict[str, str]  # source column -> DuckDB type
    json_lines: bool = False
    rejects: int = 0  # rows quarantined while reading (CSV rows that cannot be split)


def format_of(path: Path, fmt: str, source: str) -> str:
    """The configured format, or the one the file's extension names."""
    if fmt != "auto":
        return fmt
    for suffix in reversed([s.lower() for s in path.suffixes]):
        if suffix in FORMATS:
            return FORMATS[suffix]
    raise SourceError(
        f"sources.{source}.format: cannot tell the format of {path.name} from its extension; "
        'set format = "csv", "parquet" or "jsonl"'
    )


def read_parquet(wh: DuckDBWarehouse, path: Path) -> RawFile:
    scan = f"read_parquet({quote_literal(str(path))}, file_row_number = true)"
    try:
        columns = wh.describe(scan)
    except Exception as exc:  # duckdb's own error types stay inside the engine layer
        raise SourceError(f"cannot read {path} as Parquet: {exc}") from None
    columns.pop("file_row_number", None)
    cols = ", ".join(quote_ident(c) for c in columns)
    return RawFile(f"(SELECT file_row_number + 1 AS __row, {cols} FROM {scan})", columns)


def read_csv(wh: DuckDBWarehouse, path: Path, tag: str, quarantine_as: tuple[str, str, str]) -> RawFile:
    """Read a CSV as text; rows the parser cannot split go straight to quarantine.

    DuckDB keeps rows in file order, so a parsed row's number is its ordinal among parsed rows
    plus the number of rejected rows before it. ``quarantine_as`` is (import id, source, file).
    """
    raw, rejects, scans = f"__raw_{tag}", f"__rejects_{tag}", f"__scans_{tag}"
    scan = (
        f"read_csv({quote_literal(str(path))}, all_varchar = true, header = true, "
        f"store_rejects = true, rejects_table = {quote_literal(rejects)}, "
        f"rejects_scan = {quote_literal(scans)})"
    )
    try:
        wh.sql(f"CREATE TEMP TABLE {raw} AS SELECT row_number() OVER () AS __ord, * FROM {scan}")
    except Exception as exc:
        raise SourceError(f"cannot read {path} as CSV: {exc}") from None
    bad = wh.fetch_df(
        f"SELECT line, any_value(csv_line) AS csv_line, "
        f"string_agg(DISTINCT error_message, '; ') AS error_message FROM {rejects} "
        f"GROUP BY line ORDER BY line"
    )
    wh.sql(f"DROP TABLE IF EXISTS {rejects}")
    wh.sql(f"DROP TABLE IF EXISTS {scans}")
    columns = {c: t for c, t in wh.describe(raw).items() if c != "__ord"}
    cols = ", ".join("r." + quote_ident(c) for c in columns)
    if len(bad) == 0:
        return RawFile(f"(SELECT r.__ord AS __row, {cols} FROM {raw} r)", columns)
    # Reject j (1-based, in file order) is data row line - 1 (the header is line 1); a parsed row
    # with ordinal i comes after every reject j with (row_j - j) < i.
    bad["record"] = bad["line"] - 1
    bad["j"] = range(1, len(bad) + 1)
    bad["before"] = bad["record"] - bad["j"]
    offsets = bad.groupby("before", as_index=False)["j"].max()  # consecutive rejects: the last counts
    import_id, source, file = quarantine_as
    wh.con.register(f"__offsets_{tag}", offsets)
    wh.con.register(f"__bad_{tag}", bad[["record", "csv_line", "error_message"]])
    try:
        wh.sql(f"CREATE TEMP TABLE __skips_{tag} AS SELECT * FROM __offsets_{tag}")
        wh.sql(
            f"INSERT INTO quarantine SELECT ?, ?, ?, record, "
            f"'row could not be parsed: ' || error_message, csv_line FROM __bad_{tag} b "
            f"WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source = ? AND q.file = ? "
            f"AND q.row_number = b.record AND q.record IS NOT DISTINCT FROM b.csv_line)",
            [import_id, source, file, source, file],
        )
    finally:
        wh.con.unregister(f"__offsets_{tag}")
        wh.con.unregister(f"__bad_{tag}")
    return RawFile(
        f"(SELECT r.__ord + coalesce(b.j, 0) AS __row, {cols} FROM {raw} r "
        f"ASOF LEFT JOIN __skips_{tag} b ON r.__ord > b.before)",
        columns,
        rejects=len(bad),
    )


def read_jsonl(wh: DuckDBWarehouse, path: Path, tag: str) -> RawFile:
    """Read JSON lines one line per row, so a malformed line is quarantined, not fatal.

    Blank lines are not rows; they keep their place in the numbering.
    """
    raw = f"__raw_{tag}"
    scan = (
        f"read_csv({quote_literal(str(path))}, columns = {{'__line': 'VARCHAR'}}, header = false, "
        r"delim = '\x01', quote = '', escape = '', auto_detect = false, strict_mode = false)"
    )
    try:
        wh.sql(
            f"CREATE TEMP TABLE {raw} AS SELECT * FROM (SELECT row_number() OVER () AS __row, "
            f"__line FROM {scan}) WHERE trim(coalesce(__line, '')) <> ''"
        )
    except Exception as exc:
        raise SourceError(f"cannot read {path} as JSON lines: {exc}") from None
    keys = wh.fetch(
        f"SELECT DISTINCT unnest(json_keys(__line)) FROM "
        f"(SELECT __line FROM {raw} WHERE {_IS_OBJECT} LIMIT 1000)"
    )
    return RawFile(
        f"(SELECT __row, __line, {_IS_OBJECT} AS __ok FROM {raw})",
        {k[0]: "VARCHAR" for k in keys},
        json_lines=True,
    )


def read_file(
    wh: DuckDBWarehouse, path: Path, fmt: str, tag: str, quarantine_as: tuple[str, str, str]
) -> RawFile:
    if fmt == "parquet":
        return read_parquet(wh, path)
    if fmt == "csv":
        return read_csv(wh, path, tag, quarantine_as)
    return read_jsonl(wh, path, tag)


def drop_temporaries(wh: DuckDBWarehouse, tag: str) -> None:
    for name in ("raw", "skips", "stage"):
        wh.sql(f"DROP TABLE IF EXISTS __{name}_{tag}")

"""Step 1 of an import: read a file as it is, numbering its rows.

Delimited text and JSON lines are read as text so that no value can make the read fail:
converting values is the staging step's job, where a bad value becomes a quarantine reason.
Rows that cannot even be split into columns (or are not valid text) are set aside in a rejects
table with their row number and reason, so nothing read is lost. Parquet keeps its own types;
spreadsheets (``spreadsheets``) keep date cells as timestamps and everything else as text.

Reasons are written in the marked form of ``staging``: a value inside a reason sits between
``VALUE_START`` and ``VALUE_END`` so that reasons can be grouped by pattern (``reasons``).
"""

from __future__ import annotations

import codecs
import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

from microseg.config import SourceConfig
from microseg.errors import SourceError
from microseg.sources import spreadsheets
from microseg.warehouse.duckdb import DuckDBWarehouse, quote_ident, quote_literal
from microseg.warehouse.ingest.markers import marked

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "jsonl",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip"}
TEXT_FORMATS = ("csv", "jsonl")
#: The longest line the text readers hold; longer lines make the file unreadable.
MAX_LINE_BYTES = 64 * 1024 * 1024
_IS_OBJECT = "coalesce(CASE WHEN json_valid(__line) THEN json_type(__line) = 'OBJECT' END, false)"


@dataclass
class RawFile:
    """A file as a relation: ``sql`` yields ``__row`` (1-based data row) and the source columns.

    For JSON lines the relation has ``__line`` (the text) and ``__ok`` (it is a JSON object);
    ``columns`` then lists the top-level keys seen in the first lines. ``rejects`` names a
    table of rows set aside while reading: ``(__row, __reason, __record)``.
    """

    sql: str
    columns: dict[str, str]  # source column -> DuckDB type
    json_lines: bool = False
    rejects: str | None = None
    rejected: int = 0


@dataclass(frozen=True)
class FileKind:
    """How a file is stored: its format and, for text, its compression."""

    format: str
    compression: str = "none"

    @property
    def is_text(self) -> bool:
        return self.format in TEXT_FORMATS


def kind_of(path: Path, source: SourceConfig) -> FileKind:
    """The configured format and compression, or the ones the file's extensions name."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = source.compression
    if compression == "auto":
        compression = COMPRESSIONS.get(suffixes[-1], "none") if suffixes else "none"
    fmt = source.format
    if fmt == "auto":
        for suffix in reversed(suffixes):
            if suffix in FORMATS:
                fmt = FORMATS[suffix]
                break
        else:
            raise SourceError(
                f"sources.{source.name}.format: cannot tell the format of {path.name} from its extension; "
                'set format = "csv", "parquet", "jsonl" or "xlsx"'
            )
    if fmt == "jsonl" or fmt == "csv":
        return FileKind(fmt, compression)
    return FileKind(fmt)


# --- text checks before reading -------------------------------------------------------------------


def _head(path: Path, kind: FileKind, size: int = 4096) -> bytes:
    opener = gzip.open if kind.compression == "gzip" else open
    try:
        with opener(path, "rb") as f:
            return f.read(size)
    except (OSError, EOFError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None


def _looks_like_utf16(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    sample = head[:2048]
    return len(sample) >= 4 and sample.count(0) > len(sample) // 4


def prepare_text(path: Path, kind: FileKind, source: SourceConfig, workdir: Path) -> Path:
    """The text file to read: ``path`` itself, or a UTF-8 copy of it in ``workdir``.

    Refuses an empty file and a UTF-16 file read as UTF-8 with a message that says so.
    """
    head = _head(path, kind)
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise SourceError(f"sources.{source.name}: cannot read {path}: the file is empty")
    if source.encoding == "utf-8":
        if _looks_like_utf16(head):
            raise SourceError(
                f"sources.{source.name}.encoding: cannot read {path}: the file is not UTF-8 "
                '(it looks like UTF-16); set encoding = "utf-16"'
            )
        return path
    return _to_utf8(path, kind, source.encoding, workdir)


def _to_utf8(path: Path, kind: FileKind, encoding: str, workdir: Path) -> Path:
    """Stream a text file into UTF-8. Bytes the encoding cannot read pass through unchanged, so
    the reader quarantines just the rows that hold them."""
    target = workdir / (path.name.removesuffix(".gz") + ".utf8")
    opener = gzip.open if kind.compression == "gzip" else open
    decoder = codecs.getincrementaldecoder(encoding)(errors="surrogateescape")
    with opener(path, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(decoder.decode(chunk).encode("utf-8", "surrogateescape"))
        out.write(decoder.decode(b"", final=True).encode("utf-8", "surrogateescape"))
    return target


# --- row numbers and rejects ----------------------------------------------------------------------

# DuckDB's reasons for rows it cannot split, in words (values marked for grouping)
_REJECT_REASONS = f"""CASE
    WHEN error_type IN ('MISSING COLUMNS', 'TOO MANY COLUMNS') THEN 'row: '
        || {marked("regexp_extract(error_message, 'Found: ([0-9]+)', 1)")} || ' fields where '
        || {marked("regexp_extract(error_message, 'Expected Number of Columns: ([0-9]+)', 1)")}
        || ' are expected'
    WHEN error_type = 'UNQUOTED VALUE' AND error_message ILIKE '%unterminated%'
        THEN 'row: a quote opens a value and never closes'
    WHEN error_type = 'UNQUOTED VALUE' THEN 'row: a quoted value has text after its closing quote'
    WHEN error_type = 'INVALID ENCODING' OR error_type ILIKE '%UNICODE%'
        THEN 'row: not UTF-8 text (set encoding to the file''s encoding)'
    WHEN error_type ILIKE 'LINE SIZE%' THEN 'row: the line is longer than {MAX_LINE_BYTES // 2**20} MB'
    ELSE 'row: cannot be split into fields: ' || {marked("error_message")}
END"""


def _number_rows(wh: DuckDBWarehouse, tag: str, parsed: str, rejects: str, header_lines: int) -> str:
    """Give parsed rows and rejected rows one numbering in file order; returns the parsed rows'
    relation (``__row`` and the columns). ``parsed`` has ``__ord`` (ordinal among parsed rows);
    ``rejects`` is DuckDB's rejects table, its ``line`` counting the header.

    Reject j (1-based, in file order) is data row ``line - header_lines``; a parsed row with
    ordinal i comes after every reject j with (row_j - j) < i. A quote that never closes swallows
    the rest of the file into one reject: its lines are set aside one row each.
    """
    out = f"__rejects_{tag}"
    if not _count(wh, rejects):
        wh.sql(f"CREATE TEMP TABLE {out} (__row BIGINT, __reason VARCHAR, __record VARCHAR)")
        wh.sql(f"DROP TABLE IF EXISTS {rejects}")
        return f"(SELECT __ord AS __row, * EXCLUDE (__ord) FROM {parsed})"
    lines = f"__reject_lines_{tag}"
    wh.sql(
        f"CREATE TEMP TABLE {lines} AS SELECT line - {header_lines} AS first_row, "
        f"any_value(csv_line) AS csv_line, string_agg(DISTINCT ({_REJECT_REASONS}), chr(30)) AS reason, "
        f"bool_or(error_type = 'UNQUOTED VALUE' AND error_message ILIKE '%unterminated%') AS open_quote "
        f"FROM {rejects} GROUP BY line"
    )
    wh.sql(f"DROP TABLE IF EXISTS {rejects}")
    # a reject spanning several lines (an open quote) is one row per line
    wh.sql(
        f"CREATE TEMP TABLE {out} AS WITH split AS ("
        f"SELECT first_row, reason, open_quote, unnest(CASE WHEN open_quote THEN "
        f"string_split(rtrim(replace(csv_line, chr(13), ''), chr(10)), chr(10)) ELSE [csv_line] END) AS record, "
        f"generate_subscripts(CASE WHEN open_quote THEN "
        f"string_split(rtrim(replace(csv_line, chr(13), ''), chr(10)), chr(10)) ELSE [csv_line] END, 1) AS k "
        f"FROM {lines}) "
        f"SELECT first_row + k - 1 AS __row, CASE WHEN k = 1 THEN reason ELSE 'row: follows a quote that opens "
        f"on row ' || {marked('first_row')} || ' and never closes' END AS __reason, record AS __record FROM split"
    )
    wh.sql(f"DROP TABLE {lines}")
    wh.sql(
        f"CREATE TEMP TABLE __skips_{tag} AS SELECT before, max(j) AS j FROM ("
        f"SELECT __row - j AS before, j FROM (SELECT __row, row_number() OVER (ORDER BY __row) AS j "
        f"FROM {out})) GROUP BY before"
    )
    return (
        f"(SELECT r.__ord + coalesce(b.j, 0) AS __row, r.* EXCLUDE (__ord) FROM {parsed} r "
        f"ASOF LEFT JOIN __skips_{tag} b ON r.__ord > b.before)"
    )


def _count(wh: DuckDBWarehouse, table: str) -> int:
    return int(wh.fetch(f"SELECT count(*) FROM {table}")[0][0])


def _scan_options(tag: str, kind: FileKind) -> str:
    rejects, scans = f"__duck_rejects_{tag}", f"__duck_scans_{tag}"
    compression = "gzip" if kind.compression == "gzip" else "none"
    return (
        f"store_rejects = true, rejects_table = {quote_literal(rejects)}, rejects_scan = {quote_literal(scans)}, "
        f"max_line_size = {MAX_LINE_BYTES}, compression = {quote_literal(compression)}"
    )


def _finish_scan(wh: DuckDBWarehouse, tag: str) -> str:
    wh.sql(f"DROP TABLE IF EXISTS __duck_scans_{tag}")
    return f"__duck_rejects_{tag}"


# --- delimited text ---------------------------------------------------------------------------------


def _sniff(wh: DuckDBWarehouse, path: Path, kind: FileKind, source: SourceConfig) -> dict:
    options = [f"header = {str(source.header).lower()}"]
    if source.delimiter not in ("auto", "whitespace"):
        options.append(f"delim = {quote_literal(source.delimiter)}")
    options.append(f"compression = {quote_literal('gzip' if kind.compression == 'gzip' else 'none')}")
    try:
        row = wh.fetch_df(
            f"SELECT Delimiter, Quote, Escape, Columns FROM sniff_csv({quote_literal(str(path))}, "
            f"{', '.join(options)}, sample_size = 20480, max_line_size = {MAX_LINE_BYTES}, ignore_errors = true)"
        ).iloc[0]
    except Exception as exc:
        raise SourceError(
            f"sources.{source.name}: cannot read {path} as delimited text: {brief(exc)}"
        ) from None
    return {
        "delim": row["Delimiter"],
        "quote": "" if row["Quote"] == "(empty)" else row["Quote"],
        "escape": "" if row["Escape"] == "(empty)" else row["Escape"],
        "names": [c["name"] for c in row["Columns"]],
    }


def brief(exc: BaseException) -> str:
    """An engine error in a few lines: its messages can quote a whole (huge) line of the file."""
    lines = [line[:200] + ("…" if len(line) > 200 else "") for line in str(exc).splitlines()[:3]]
    return " ".join(line.strip() for line in lines if line.strip())


def _column_names(source: SourceConfig, found: list[str], path: Path) -> list[str]:
    if not source.column_names:
        return found
    if len(source.column_names) != len(found):
        raise SourceError(
            f"sources.{source.name}.column_names: {len(source.column_names)} names for "
            f"{len(found)} columns in {path.name}"
        )
    return list(source.column_names)


def read_csv(wh: DuckDBWarehouse, path: Path, kind: FileKind, source: SourceConfig, tag: str) -> RawFile:
    """Read delimited text as text; rows the parser cannot split are set aside as rejects.

    The dialect (delimiter, quoting) is detected on a sample, then the whole file is read with a
    double quote as quote character even where the sample showed none, so that a quote that
    never closes is caught rather than read as part of a value.
    """
    if source.delimiter == "whitespace":
        return read_whitespace(wh, path, kind, source, tag)
    dialect = _sniff(wh, path, kind, source)
    names = _column_names(source, dialect["names"], path)
    quote = dialect["quote"] or '"'
    escape = dialect["escape"] or quote
    columns = "{" + ", ".join(f"{quote_literal(n)}: 'VARCHAR'" for n in names) + "}"
    scan = (
        f"read_csv({quote_literal(str(path))}, auto_detect = false, header = {str(source.header).lower()}, "
        f"delim = {quote_literal(dialect['delim'])}, quote = {quote_literal(quote)}, "
        f"escape = {quote_literal(escape)}, columns = {columns}, {_scan_options(tag, kind)})"
    )
    raw = f"__raw_{tag}"
    try:
        wh.sql(f"CREATE TEMP TABLE {raw} AS SELECT row_number() OVER () AS __ord, * FROM {scan}")
    except Exception as exc:
        raise SourceError(
            f"sources.{source.name}: cannot read {path} as delimited text: {brief(exc)}"
        ) from None
    rejects = _finish_scan(wh, tag)
    rows = _number_rows(wh, tag, raw, rejects, 1 if source.header else 0)
    return RawFile(
        rows,
        {n: "VARCHAR" for n in names},
        rejects=f"__rejects_{tag}",
        rejected=_count(wh, f"__rejects_{tag}"),
    )


def _read_lines(
    wh: DuckDBWarehouse, path: Path, kind: FileKind, tag: str, what: str, source: SourceConfig
) -> str:
    """Every line of a text file as ``__ord, __line`` in ``__lines_<tag>`` (blank lines included,
    so line numbers hold); returns DuckDB's rejects table (lines that are not valid text)."""
    scan = (
        f"read_csv({quote_literal(str(path))}, columns = {{'__line': 'VARCHAR'}}, header = false, "
        r"delim = '\x01', quote = '', escape = '', auto_detect = false, strict_mode = false, "
        f"{_scan_options(tag, kind)})"
    )
    try:
        wh.sql(f"CREATE TEMP TABLE __lines_{tag} AS SELECT row_number() OVER () AS __ord, __line FROM {scan}")
    except Exception as exc:
        raise SourceError(f"sources.{source.name}: cannot read {path} as {what}: {brief(exc)}") from None
    return _finish_scan(wh, tag)


def read_whitespace(
    wh: DuckDBWarehouse, path: Path, kind: FileKind, source: SourceConfig, tag: str
) -> RawFile:
    """Fields separated by runs of spaces or tabs, one row per non-blank line."""
    rejects = _read_lines(wh, path, kind, tag, "whitespace-separated text", source)
    numbered = _number_rows(wh, tag, f"__lines_{tag}", rejects, 0)
    fields = r"string_split_regex(trim(__line, ' ' || chr(9) || chr(13)), '[ \t]+')"
    wh.sql(
        f"CREATE TEMP TABLE __split_{tag} AS SELECT __row, __line, {fields} AS __fields FROM {numbered} "
        f"WHERE trim(coalesce(__line, ''), ' ' || chr(9) || chr(13)) <> ''"
    )
    if source.header:
        # the first non-blank line names the columns; data rows are numbered after it
        first = wh.fetch(f"SELECT __row, __fields FROM __split_{tag} ORDER BY __row LIMIT 1")
        header_line, found = (int(first[0][0]), list(first[0][1])) if first else (0, [])
        wh.sql(f"DELETE FROM __split_{tag} WHERE __row = {header_line}")
        for table in (f"__split_{tag}", f"__rejects_{tag}"):
            wh.sql(f"UPDATE {table} SET __row = __row - {header_line}")
    else:
        width = wh.fetch(f"SELECT mode(len(__fields)) FROM __split_{tag}")[0][0] or 0
        found = [f"column{i}" for i in range(int(width))]
    names = _column_names(source, found, path)
    n = len(names)
    wh.sql(
        f"INSERT INTO __rejects_{tag} SELECT __row, 'row: ' || {marked('len(__fields)')} || ' fields where "
        f"{n} are expected', __line FROM __split_{tag} WHERE len(__fields) <> {n}"
    )
    cols = ", ".join(f"__fields[{i + 1}] AS {quote_ident(name)}" for i, name in enumerate(names))
    sql = f"(SELECT __row, {cols} FROM __split_{tag} WHERE len(__fields) = {n})"
    return RawFile(
        sql,
        {name: "VARCHAR" for name in names},
        rejects=f"__rejects_{tag}",
        rejected=_count(wh, f"__rejects_{tag}"),
    )


def read_jsonl(wh: DuckDBWarehouse, path: Path, kind: FileKind, source: SourceConfig, tag: str) -> RawFile:
    """Read JSON lines one line per row, so a malformed line is quarantined, not fatal.

    Blank lines are not rows; they keep their place in the numbering.
    """
    rejects = _read_lines(wh, path, kind, tag, "JSON lines", source)
    numbered = _number_rows(wh, tag, f"__lines_{tag}", rejects, 0)
    raw = f"__raw_{tag}"
    wh.sql(f"CREATE TEMP TABLE {raw} AS SELECT * FROM {numbered} WHERE trim(coalesce(__line, '')) <> ''")
    keys = wh.fetch(
        f"SELECT DISTINCT unnest(json_keys(__line)) FROM "
        f"(SELECT __line FROM {raw} WHERE {_IS_OBJECT} LIMIT 1000)"
    )
    return RawFile(
        f"(SELECT __row, __line, {_IS_OBJECT} AS __ok FROM {raw})",
        {k[0]: "VARCHAR" for k in keys},
        json_lines=True,
        rejects=f"__rejects_{tag}",
        rejected=_count(wh, f"__rejects_{tag}"),
    )


# --- typed formats -------------------------------------------------------------------------------


def read_parquet(wh: DuckDBWarehouse, path: Path, source: SourceConfig) -> RawFile:
    """A Parquet file with its own column types, numbered by its row order."""
    scan = f"read_parquet({quote_literal(str(path))}, file_row_number = true)"
    try:
        columns = wh.describe(scan)
    except Exception as exc:  # duckdb's own error types stay inside the engine layer
        raise SourceError(f"sources.{source.name}: cannot read {path} as Parquet: {brief(exc)}") from None
    columns.pop("file_row_number", None)
    cols = ", ".join(quote_ident(c) for c in columns)
    return RawFile(f"(SELECT file_row_number + 1 AS __row, {cols} FROM {scan})", columns)


def read_xlsx(wh: DuckDBWarehouse, path: Path, source: SourceConfig, tag: str) -> RawFile:
    """One sheet of a workbook (see ``spreadsheets``); rows wider than the header are rejects."""
    sheet = spreadsheets.read_sheet(path, source.sheet, source.header, source.name)
    names = _column_names(source, sheet.names, path)
    table = sheet.to_arrow(names)
    name = f"__arrow_{tag}"
    wh.con.register(name, table)
    try:
        wh.sql(f"CREATE TEMP TABLE __raw_{tag} AS SELECT * FROM {name}")
    finally:
        wh.con.unregister(name)
    wh.sql(f"CREATE TEMP TABLE __rejects_{tag} (__row BIGINT, __reason VARCHAR, __record VARCHAR)")
    if sheet.too_wide:
        wh.con.register(name, sheet.too_wide_arrow(len(names)))
        try:
            wh.sql(f"INSERT INTO __rejects_{tag} SELECT __row, __reason, __record FROM {name}")
        finally:
            wh.con.unregister(name)
    columns = {c: t for c, t in wh.describe(f"__raw_{tag}").items() if c != "__row"}
    cols = ", ".join(quote_ident(c) for c in columns)
    return RawFile(
        f"(SELECT __row, {cols} FROM __raw_{tag})",
        columns,
        rejects=f"__rejects_{tag}",
        rejected=_count(wh, f"__rejects_{tag}"),
    )


def read_file(wh: DuckDBWarehouse, path: Path, kind: FileKind, source: SourceConfig, tag: str) -> RawFile:
    """Read one file (already prepared by ``prepare_text`` when it is text)."""
    if kind.format == "parquet":
        return read_parquet(wh, path, source)
    if kind.format == "xlsx":
        return read_xlsx(wh, path, source, tag)
    if kind.format == "csv":
        return read_csv(wh, path, kind, source, tag)
    return read_jsonl(wh, path, kind, source, tag)


def drop_temporaries(wh: DuckDBWarehouse, tag: str) -> None:
    """Drop the temporary tables of the import ``tag``."""
    for name in (
        "raw",
        "skips",
        "stage",
        "rejects",
        "lines",
        "split",
        "duck_rejects",
        "duck_scans",
        "reject_lines",
        "known",
        "status",
    ):
        wh.sql(f"DROP TABLE IF EXISTS __{name}_{tag}")


def remove_workdir(workdir: Path | None) -> None:
    """Remove the folder of an import's converted copies (when it made one)."""
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)

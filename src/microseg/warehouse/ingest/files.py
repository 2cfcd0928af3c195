"""Import delimited text, Parquet, JSON-lines and .xlsx files into the warehouse.

One file is imported in four set-based steps on DuckDB, so that tens of millions of rows load in
seconds:

1. **read** the file as it is (``readers``: text as text, Parquet with its own types, sheets
   with date cells as timestamps), setting aside rows that cannot be split into fields;
2. **stage**: map source columns to the table contract, convert types, and collect for every row
   every check it fails (``staging``: one ``reason`` per row, empty when the row is good);
3. **quarantine** the failed rows with file, row number, reason and the row as read, replacing
   what earlier imports of the same file (or of the same content under another name) left;
4. **load** the good rows: a row whose event is new is stored, a row that repeats a stored
   event unchanged is a duplicate, and a row that changes one is a correction (the newer
   version wins). An event is identified by the source's ``event_id``, by its ``event_key``
   fields, or else by its line in the file (``lineage``): identical lines are separate events.

Nothing is silently dropped: ``rows_read = loaded + duplicates + corrected + quarantined`` for
every file, and ``check_rejections`` turns a file with too many quarantined rows into an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from microseg.config import ProjectConfig, SourceConfig
from microseg.errors import ConfigError, RejectedRowsError, SourceError
from microseg.schema import CUSTOMERS, EVENTS, PRODUCTS, Table
from microseg.warehouse.duckdb import DuckDBWarehouse, quote_ident, quote_literal
from microseg.warehouse.ingest import reasons
from microseg.warehouse.ingest.lineage import FileIdentity, identify
from microseg.warehouse.ingest.markers import stored
from microseg.warehouse.ingest.readers import (
    FileKind,
    RawFile,
    brief,
    drop_temporaries,
    kind_of,
    prepare_text,
    read_file,
    remove_workdir,
)
from microseg.warehouse.ingest.staging import (
    CUSTOMER_PREFIX,
    PRODUCT_PREFIX,
    Mapping,
    StagePlan,
    build_stage,
    resolve_mapping,
)

#: Event columns compared to tell a duplicate (same content) from a correction.
CONTENT_COLUMNS = [c for c in EVENTS.columns if c.name not in ("event_id", "source", "import_id")]


@dataclass
class ImportResult:
    """What one file's import did.

    ``rows_read = loaded + duplicates + corrected + quarantined``; ``details`` holds counts by
    event type, missing and rounded values, removed events and the rejection reasons.
    """

    source: str
    file: str
    import_id: str
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    corrected: int = 0
    quarantined: int = 0
    seconds: float = 0.0
    max_rejected_share: float = 1.0
    details: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else float("inf")

    @property
    def rejected_share(self) -> float:
        """Share of the file's rows that were quarantined (0 for a file without rows)."""
        return self.quarantined / self.rows_read if self.rows_read else 0.0

    @property
    def over_limit(self) -> bool:
        """More rows were quarantined than the source's ``max_rejected_share`` allows."""
        return self.rejected_share > self.max_rejected_share

    def reason_counts(self) -> list[tuple[str, int]]:
        """(reason pattern, rows) of the quarantined rows, most frequent first; a pattern is a
        reason with its values left out, e.g. ``ts (day): cannot read … as a timestamp``."""
        return [(r["pattern"], r["rows"]) for r in self.details.get("reasons", [])]

    def hints(self) -> list[str]:
        """Settings that would likely read the rejected rows (see ``reasons.hints``)."""
        return reasons.hints(self.source, self.details.get("reasons", []))


def check_rejections(results: list[ImportResult]) -> None:
    """Raise ``RejectedRowsError`` when any file had more rows quarantined than its source's
    ``max_rejected_share`` allows; the message names each such file, its share and the setting."""
    over = [r for r in results if r.over_limit]
    if not over:
        return
    lines = [
        f"{r.quarantined:,} of {r.rows_read:,} rows of {Path(r.file).name} ({r.rejected_share:.0%}) were "
        f"quarantined, more than sources.{r.source}.max_rejected_share = {r.max_rejected_share:g} allows"
        for r in over
    ]
    raise RejectedRowsError("; ".join(lines), over)


# --- the import of one file -----------------------------------------------------------------------


def import_file(
    wh: DuckDBWarehouse, source: SourceConfig, path: Path, *, currency: str = "GBP"
) -> ImportResult:
    """Import one file of ``source`` into the warehouse and log it in ``imports``.

    The import is one transaction: it lands whole or, on error, not at all (a failure is
    reported by its cause, such as a full disk, even when the rollback fails too).
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    result = ImportResult(
        source=source.name,
        file=str(path),
        import_id=uuid.uuid4().hex[:16],
        max_rejected_share=source.max_rejected_share,
    )
    tag = result.import_id
    table = {"events": EVENTS, "customers": CUSTOMERS, "products": PRODUCTS}[source.kind]
    kind = kind_of(path, source)
    workdir = (
        Path(tempfile.mkdtemp(prefix="microseg-import-"))
        if kind.is_text and source.encoding != "utf-8"
        else None
    )
    try:
        readable = prepare_text(path, kind, source, workdir) if kind.is_text else path
        if readable != path:  # a UTF-8 copy, uncompressed
            kind = FileKind(kind.format)
        if table is EVENTS:
            _refuse_content_keyed_reimport(wh, source, path)
        identity = identify(
            wh, source.name, path, appendable=readable == path and kind.is_text and kind.compression == "none"
        )
        with wh.transaction():
            raw = read_file(wh, readable, kind, source, tag)
            mapping = resolve_mapping(source, raw)
            plan = build_stage(source, raw, mapping, table, currency, identity.lineage)
            _stage(wh, tag, source, plan, path)
            _quarantine(wh, tag, result, raw, identity)
            if table is EVENTS:
                _load_events(wh, tag, source, mapping, identity, result, raw.rejects)
                _merge_from_events(wh, tag, source, mapping)
            else:
                _load_entities(wh, tag, source, table, result)
            result.details["missing"] = _flag_counts(wh, tag, "__missing:", plan.missing)
            result.details["rounded"] = _flag_counts(wh, tag, "__rounded:", plan.rounded)
            result.details["reasons"] = reasons.summarise(wh, f"__stage_{tag}", raw.rejects)
            result.seconds = time.perf_counter() - started
            _log(wh, result, started_at, identity)
    finally:
        with contextlib.suppress(Exception):  # after a failed transaction they are gone already
            wh.sql("SET TimeZone = 'UTC'")
            drop_temporaries(wh, tag)
        remove_workdir(workdir)
    return result


def _refuse_content_keyed_reimport(wh: DuckDBWarehouse, source: SourceConfig, path: Path) -> None:
    """A file imported by a version of microseg that identified rows by their content (its
    imports have no lineage) would be stored a second time under line ids: refuse that."""
    if "event_id" in source.columns or source.event_key:
        return
    earlier = wh.fetch(
        "SELECT count(*) FROM imports WHERE source = ? AND file = ? AND lineage IS NULL",
        [source.name, str(path)],
    )[0][0]
    if earlier:
        raise SourceError(
            f"sources.{source.name}: {path} was imported by an earlier version of microseg, which identified "
            "events by their content; importing it again would store its lines a second time. Set event_key "
            "to the fields that identify an event, or rebuild the warehouse (delete it and import again)"
        )


def _stage(wh: DuckDBWarehouse, tag: str, source: SourceConfig, plan: StagePlan, path: Path) -> None:
    wh.sql(f"SET TimeZone = {quote_literal(source.timezone)}")
    try:
        wh.sql(f"CREATE TEMP TABLE __stage_{tag} AS {plan.sql}")
    except Exception as exc:  # e.g. a timestamp_format DuckDB rejects
        raise SourceError(f"sources.{source.name}: cannot read {path}: {brief(exc)}") from None
    wh.sql("SET TimeZone = 'UTC'")  # (after a failure, import_file sets it back)


def _log(wh: DuckDBWarehouse, result: ImportResult, started_at: dt.datetime, identity: FileIdentity) -> None:
    wh.sql(
        "INSERT INTO imports (import_id, source, file, started_at, seconds, rows_read, loaded, duplicates, "
        "quarantined, details, corrected, fingerprint, bytes, lineage) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            result.import_id,
            result.source,
            result.file,
            started_at,
            result.seconds,
            result.rows_read,
            result.loaded,
            result.duplicates,
            result.quarantined,
            json.dumps(result.details),
            result.corrected,
            identity.fingerprint,
            identity.size,
            identity.lineage,
        ],
    )


def _quarantine(
    wh: DuckDBWarehouse, tag: str, result: ImportResult, raw: RawFile, identity: FileIdentity
) -> None:
    """Replace the quarantine rows of this file, and of the same content or an earlier version of
    it under another name, by this import's."""
    versions = sorted({identity.fingerprint, *identity.earlier_versions})
    marks = ", ".join("?" for _ in versions)
    wh.sql(
        f"DELETE FROM quarantine WHERE source = ? AND (file = ? OR import_id IN (SELECT import_id FROM imports "
        f"WHERE source = ? AND fingerprint IN ({marks})))",
        [result.source, result.file, result.source, *versions],
    )
    where = [result.import_id, result.source, result.file]
    if raw.rejects:
        wh.sql(
            f"INSERT INTO quarantine SELECT ?, ?, ?, __row, {stored('__reason')}, __record FROM {raw.rejects}",
            where,
        )
    wh.sql(
        f"INSERT INTO quarantine SELECT ?, ?, ?, __row, {stored('__reason')}, __record "
        f"FROM __stage_{tag} WHERE __reason <> ''",
        where,
    )
    staged, bad = wh.fetch(f"SELECT count(*), count(*) FILTER (WHERE __reason <> '') FROM __stage_{tag}")[0]
    result.rows_read = int(staged) + raw.rejected
    result.quarantined = int(bad) + raw.rejected


def _content_hash(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return (
        "hash(" + ", ".join(f"CAST({prefix}{quote_ident(c.name)} AS {c.type})" for c in CONTENT_COLUMNS) + ")"
    )


def _load_events(
    wh: DuckDBWarehouse,
    tag: str,
    source: SourceConfig,
    mapping: Mapping,
    identity: FileIdentity,
    result: ImportResult,
    rejects: str | None,
) -> None:
    """Store new events, apply corrections, count duplicates (see the module doc)."""
    values = ", ".join(
        quote_literal(source.name)
        if c.name == "source"
        else quote_literal(result.import_id)
        if c.name == "import_id"
        else quote_ident(c.name)
        for c in EVENTS.columns
    )
    good = f"(SELECT * FROM __stage_{tag} WHERE __reason = '')"
    keyed = "event_id" in mapping.fields or bool(source.event_key)
    if keyed:
        n_good, n_ids = wh.fetch(f"SELECT count(*), count(DISTINCT event_id) FROM {good}")[0]
    else:  # one event per line: ids cannot repeat within the file
        n_good = n_ids = wh.fetch(f"SELECT count(*) FROM {good}")[0][0]
    repeats = n_good != n_ids
    if not keyed and identity.basis == "new":
        known = 0  # a file never seen: every good line is a new event, nothing to compare
    else:
        wh.sql(
            f"CREATE TEMP TABLE __known_{tag} AS SELECT event_id, {_content_hash()} AS __stored FROM events "
            f"WHERE event_id IN (SELECT event_id FROM {good})"
        )
        known = wh.count(f"__known_{tag}")
    if not known and not repeats:
        result.loaded = wh.changed(f"INSERT INTO events SELECT {values} FROM {good}")
        written = good
    else:
        # one narrow row per staged row: its status, and whether it is the version to store
        order = "PARTITION BY event_id ORDER BY __row"
        previous = f"lag(__h) OVER ({order})" if repeats else "NULL"
        last = "row_number() OVER (PARTITION BY event_id ORDER BY __row DESC) = 1" if repeats else "true"
        wh.sql(
            f"CREATE TEMP TABLE __status_{tag} AS SELECT __row, event_id, __stored IS NOT NULL AS __known, CASE "
            f"WHEN __prev IS NOT NULL THEN (CASE WHEN __prev = __h THEN 'duplicate' ELSE 'corrected' END) "
            f"WHEN __stored IS NULL THEN 'loaded' WHEN __stored = __h THEN 'duplicate' ELSE 'corrected' END "
            f"AS __status, __last AND (__stored IS NULL OR __stored <> __h) AS __write FROM ("
            f"SELECT s.__row, s.event_id, s.__h, k.__stored, {previous} AS __prev, {last} AS __last FROM "
            f"(SELECT __row, event_id, {_content_hash()} AS __h FROM {good}) s "
            f"LEFT JOIN __known_{tag} k USING (event_id))"
        )
        counts = dict(wh.fetch(f"SELECT __status, count(*) FROM __status_{tag} GROUP BY 1"))
        result.loaded = int(counts.get("loaded", 0))
        result.corrected = int(counts.get("corrected", 0))
        if result.corrected:
            wh.sql(
                f"DELETE FROM events WHERE event_id IN "
                f"(SELECT event_id FROM __status_{tag} WHERE __write AND __known)"
            )
        if result.loaded or result.corrected:
            wh.changed(
                f"INSERT INTO events SELECT {values} FROM {good} "
                f"WHERE __row IN (SELECT __row FROM __status_{tag} WHERE __write)"
            )
        written = f"(SELECT * FROM {good} WHERE __row IN (SELECT __row FROM __status_{tag} WHERE __status = 'loaded'))"
    result.duplicates = int(n_good) - result.loaded - result.corrected
    if not keyed and identity.basis != "new":
        result.details["removed"] = _remove_withdrawn(wh, tag, source, identity, result, rejects)
    by_type = wh.fetch(
        f"SELECT event_type, count(*), count(*) FILTER (WHERE customer_id IS NULL) FROM {written} "
        "GROUP BY 1 ORDER BY 1"
    )
    result.details["by_event_type"] = {t: int(n) for t, n, _ in by_type}
    result.details["anonymous"] = sum(int(a) for _, _, a in by_type)


def _remove_withdrawn(
    wh: DuckDBWarehouse,
    tag: str,
    source: SourceConfig,
    identity: FileIdentity,
    result: ImportResult,
    rejects: str | None,
) -> int:
    """Events of this file's lineage whose line is now quarantined, or (for a changed file) no
    longer in the file: the newer version of the file wins. Returns how many were removed."""
    prefix = identity.lineage + "#"
    line = "TRY_CAST(split_part(event_id, '#', 2) AS BIGINT)"
    withdrawn = [f"SELECT __row FROM __stage_{tag} WHERE __reason <> ''"]
    if rejects:
        withdrawn.append(f"SELECT __row FROM {rejects}")
    gone = (
        f" OR ({line} > {int(result.rows_read)} AND {line} <= {int(identity.previous_rows)})"
        if identity.basis == "changed"
        else ""
    )
    return wh.changed(
        f"DELETE FROM events WHERE source = ? AND starts_with(event_id, ?) AND "
        f"({line} IN ({' UNION ALL '.join(withdrawn)}){gone})",
        [source.name, prefix],
    )


def _flag_counts(wh: DuckDBWarehouse, tag: str, prefix: str, labels: list[str]) -> dict[str, int]:
    """Rows per flag column (``__missing:<label>``, ``__rounded:<label>``) of the stage, non-zero only."""
    if not labels:
        return {}
    sums = ", ".join(f"count(*) FILTER (WHERE {quote_ident(prefix + label)})" for label in labels)
    row = wh.fetch(f"SELECT {sums} FROM __stage_{tag}")[0]
    return {label: int(n) for label, n in zip(labels, row, strict=True) if n}


def _merge(
    wh: DuckDBWarehouse, table: Table, new_rows_sql: str, fields: list[str], source: str
) -> tuple[int, int]:
    """Upsert rows into customers/products: new keys are inserted, known keys get their
    non-empty new values. Returns the numbers of (inserted, updated) rows."""
    key = table.key[0]
    tmp = f"__merge_{table.name}"
    wh.sql(f"CREATE OR REPLACE TEMP TABLE {tmp} AS {new_rows_sql}")
    now = "now() AT TIME ZONE 'UTC'"
    if fields:
        sets = ", ".join(
            f"{quote_ident(f)} = coalesce(n.{quote_ident(f)}, t.{quote_ident(f)})" for f in fields
        )
        changed = " OR ".join(
            f"(n.{quote_ident(f)} IS NOT NULL AND n.{quote_ident(f)} IS DISTINCT FROM t.{quote_ident(f)})"
            for f in fields
        )
        updated = wh.changed(
            f"UPDATE {table.name} AS t SET {sets}, source = {quote_literal(source)}, updated_at = {now} "
            f"FROM {tmp} AS n WHERE t.{key} = n.{key} AND ({changed})"
        )
    else:
        updated = 0
    cols = ", ".join(
        quote_literal(source)
        if c.name == "source"
        else now
        if c.name == "updated_at"
        else f"n.{quote_ident(c.name)}"
        if c.name in fields or c.name == key
        else f"CAST(NULL AS {c.type})"
        for c in table.columns
    )
    inserted = wh.changed(
        f"INSERT INTO {table.name} SELECT {cols} FROM {tmp} n "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table.name} t WHERE t.{key} = n.{key})"
    )
    wh.sql(f"DROP TABLE {tmp}")
    return inserted, updated


def _merge_from_events(wh: DuckDBWarehouse, tag: str, source: SourceConfig, mapping: Mapping) -> None:
    """Every customer and product seen in good event rows gets a row; mapped traits update it."""
    good = f"__stage_{tag} WHERE __reason = ''"
    for table, key, fields in (
        (CUSTOMERS, "customer_id", list(mapping.customer)),
        (PRODUCTS, "product_id", list(mapping.product)),
    ):
        prefix = CUSTOMER_PREFIX if table is CUSTOMERS else PRODUCT_PREFIX
        aggs = "".join(
            f", arg_max({quote_ident(prefix + f)}, ts) FILTER (WHERE {quote_ident(prefix + f)} IS NOT NULL) "
            f"AS {quote_ident(f)}"
            for f in fields
        )
        _merge(
            wh,
            table,
            f"SELECT {key}{aggs} FROM {good} AND {key} IS NOT NULL GROUP BY {key}",
            fields,
            source.name,
        )


def _load_entities(
    wh: DuckDBWarehouse, tag: str, source: SourceConfig, table: Table, result: ImportResult
) -> None:
    key = table.key[0]
    fields = [c.name for c in table.columns if c.name not in (key, "source", "updated_at")]
    good = wh.fetch(f"SELECT count(*) FROM __stage_{tag} WHERE __reason = ''")[0][0]
    # the last row of a key in the file wins
    aggs = ", ".join(f"arg_max({quote_ident(f)}, __row) AS {quote_ident(f)}" for f in fields)
    inserted, updated = _merge(
        wh,
        table,
        f"SELECT {key}, {aggs} FROM __stage_{tag} WHERE __reason = '' GROUP BY {key}",
        fields,
        source.name,
    )
    # an updated record counts as loaded; a row that changes nothing is a duplicate
    result.loaded = inserted + updated
    result.duplicates = int(good) - result.loaded
    result.details["updated"] = updated


# --- a whole source -------------------------------------------------------------------------------


def source_files(source: SourceConfig, root: Path) -> list[Path]:
    """The files a source's path or glob pattern names, in a stable order."""
    pattern = Path(source.path)
    pattern = pattern if pattern.is_absolute() else root / pattern
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    files = [p for p in matches if p.is_file()]
    if not files:
        raise SourceError(f"sources.{source.name}.path: no file matches {str(pattern)!r}")
    return files


def import_source(
    wh: DuckDBWarehouse,
    source: SourceConfig,
    root: Path,
    *,
    currency: str = "GBP",
    on_file: Callable[[Path, ImportResult | None], None] | None = None,
) -> list[ImportResult]:
    """Import every file of a source; ``on_file`` is told before and after each file."""
    results = []
    for path in source_files(source, root):
        if on_file:
            on_file(path, None)
        result = import_file(wh, source, path, currency=currency)
        results.append(result)
        if on_file:
            on_file(path, result)
    return results


#: Customers and products are imported before events, so that traits are in place when events arrive.
KIND_ORDER = {"customers": 0, "products": 1, "events": 2}


def import_sources(
    wh: DuckDBWarehouse,
    config: ProjectConfig,
    names: Iterable[str] | None = None,
    on_file: Callable[[str, Path, ImportResult | None], None] | None = None,
) -> list[ImportResult]:
    """Import the named sources of ``config`` (all when ``names`` is empty), customers and
    products first; ``on_file`` is told the source name before and after each file.

    Returns one result per file. A file with more quarantined rows than its source's
    ``max_rejected_share`` is imported all the same; ``check_rejections`` raises for it (as
    ``microseg import`` exits 1)."""
    sources = config.sources
    wanted = list(names) if names else list(sources)
    for name in wanted:
        if name not in sources:
            known = ", ".join(sources) or "none configured"
            raise ConfigError(f"no such source (sources: {known})", key=f"sources.{name}")
    wanted.sort(key=lambda n: KIND_ORDER[sources[n].kind])
    results: list[ImportResult] = []
    for name in wanted:
        callback = (lambda p, r, n=name: on_file(n, p, r)) if on_file else None
        results += import_source(wh, sources[name], config.root, currency=config.currency, on_file=callback)
    return results

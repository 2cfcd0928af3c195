"""Which earlier file a file continues: the identity of lines without an event key.

Without a natural key, an event is a line of a file, and its id is ``<lineage>#<row>``. The
lineage is the file family the line belongs to, found from the imports log:

* **same content**: a file whose bytes were imported before (under any name) continues that
  import's lineage, so importing it again stores nothing twice;
* **appended**: a text file that starts with the complete bytes of an earlier import (a daily
  export appended to) continues that lineage: its earlier lines keep their ids, the new lines
  are new events;
* **changed**: a file at a path imported before, whose content changed otherwise, continues the
  lineage of that path: line n is still line n, and a line with new content corrects its event;
* **new**: anything else starts a lineage of its own.

The fingerprint is a SHA-256 of the file's bytes; the prefixes of earlier imports are hashed in
the same single pass over the file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from microseg.warehouse.duckdb import DuckDBWarehouse

_CHUNK = 1 << 20


@dataclass
class FileIdentity:
    fingerprint: str
    size: int
    lineage: str
    basis: str  # "new", "same content", "appended" or "changed"
    previous_rows: int = 0  # rows of the earlier version when the basis is "changed"
    earlier_versions: list[str] = field(default_factory=list)  # fingerprints this file contains


def _hash_file(path: Path, checkpoints: set[int]) -> tuple[str, dict[int, str]]:
    """The file's SHA-256, and the SHA-256 of its first n bytes for each n in ``checkpoints``."""
    digest = hashlib.sha256()
    at: dict[int, str] = {}
    done = 0
    with open(path, "rb") as f:
        for stop in sorted(checkpoints) + [None]:
            while stop is None or done < stop:
                want = _CHUNK if stop is None else min(_CHUNK, stop - done)
                chunk = f.read(want)
                if not chunk:
                    break
                digest.update(chunk)
                done += len(chunk)
            if stop is not None and done == stop:
                at[stop] = digest.copy().hexdigest()
    return digest.hexdigest(), at


def new_lineage(source: str, fingerprint: str) -> str:
    """The lineage a file starts: 16 hex digits of the source and the file's fingerprint.

    >>> new_lineage("orders", "0" * 64)
    '22c28f04e9c9fa2c'
    """
    return hashlib.sha256(f"{source}\0{fingerprint}".encode()).hexdigest()[:16]


def identify(wh: DuckDBWarehouse, source: str, path: Path, appendable: bool) -> FileIdentity:
    """Fingerprint ``path`` and find the lineage its lines continue (see the module doc).

    ``appendable``: the file is uncompressed text, where an earlier version can be a prefix.
    """
    size = path.stat().st_size
    known = wh.fetch(
        "SELECT fingerprint, bytes, lineage, file, rows_read FROM imports "
        "WHERE source = ? AND lineage IS NOT NULL ORDER BY started_at",
        [source],
    )
    smaller = {int(b) for _, b, *_ in known if b is not None and 0 < b < size} if appendable else set()
    fingerprint, prefixes = _hash_file(path, smaller)
    for fp, _, lineage, _, _ in known:
        if fp == fingerprint:
            return FileIdentity(fingerprint, size, lineage, "same content", earlier_versions=[fp])
    contained = [
        (int(b), fp, lineage) for fp, b, lineage, _, _ in known if b in prefixes and prefixes[b] == fp
    ]
    if contained and _ends_a_line(path, max(b for b, _, _ in contained)):
        longest = max(contained)
        return FileIdentity(
            fingerprint, size, longest[2], "appended", earlier_versions=sorted({fp for _, fp, _ in contained})
        )
    same_path = [(lineage, rows) for _, _, lineage, file, rows in known if file == str(path)]
    if same_path:
        lineage, rows = same_path[-1]
        return FileIdentity(fingerprint, size, lineage, "changed", previous_rows=int(rows or 0))
    return FileIdentity(fingerprint, size, new_lineage(source, fingerprint), "new")


def _ends_a_line(path: Path, size: int) -> bool:
    """Whether the first ``size`` bytes of the file end with a line break (a whole last line)."""
    with open(path, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"

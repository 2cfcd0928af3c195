"""Writing the demo tables as parquet, CSV or JSON lines, and reading them back."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

# Columns with many distinct values: dictionary encoding would only cost time in parquet.
_UNIQUE_COLUMNS = {"event_id", "order_id", "customer_id", "anonymous_id", "email", "crm_id",
                   "device_id", "postal_code", "ts", "dropout_at", "first_purchase_at",
                   "last_purchase_at", "lam", "p_drop", "spend_mean", "base_response",
                   "uplift_email", "uplift_email_xmas", "uplift_discount"}  # fmt: skip


def _parquet_options(schema: pa.Schema) -> dict:
    return {
        "compression": "zstd",
        "use_dictionary": [f.name for f in schema if f.name not in _UNIQUE_COLUMNS],
    }


def _for_parquet(table: pa.Table) -> pa.Table:
    """Timestamps in microseconds, the resolution every parquet reader understands."""
    return _cast_timestamps(table, pa.timestamp("us"))


def _for_text(table: pa.Table) -> pa.Table:
    """Timestamps as ``YYYY-MM-DD HH:MM:SS`` strings (the second-resolution cast gives exactly that)."""
    return _cast_timestamps(table, pa.string())


def _cast_timestamps(table: pa.Table, target: pa.DataType) -> pa.Table:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(target))
    return table


# JSON lines are built this many rows at a time, far below Arrow's 2 GiB limit per string array.
_JSON_ROWS_PER_SLICE = 200_000


def _json_lines(table: pa.Table) -> pa.Buffer:
    """The rows of ``table`` as newline-delimited JSON, built column-wise by Arrow kernels.

    Each column becomes its JSON text (quoted strings, ``null`` for nulls); the columns are then
    joined row-wise with the keys, so no Python object is created per row.
    """
    if table.num_rows == 0:
        return pa.py_buffer(b"")
    pieces: list[object] = []
    for i, f in enumerate(table.schema):
        column = table.column(i).combine_chunks()
        if pa.types.is_string(f.type):
            text = _json_strings(column)
        elif (
            pa.types.is_boolean(f.type)
            or pa.types.is_integer(f.type)
            or pa.types.is_decimal(f.type)
            or pa.types.is_floating(f.type)
        ):
            text = column.cast(pa.string())
        elif pa.types.is_date(f.type):
            text = pc.binary_join_element_wise('"', column.cast(pa.string()), '"', "")
        else:  # pragma: no cover - the generator writes no other types
            raise TypeError(f"cannot write {f.type} as JSON")
        if text.null_count:
            text = pc.fill_null(text, "null")
        pieces.append(("{" if i == 0 else ",") + json.dumps(f.name) + ":")
        pieces.append(text)
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    # The joined strings lie back to back in the array's data buffer: that buffer is the file.
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    return lines.buffers()[2][offsets[0] : offsets[len(lines)]]


def _json_strings(column: pa.Array) -> pa.Array:
    """Strings as JSON string literals (nulls stay null)."""
    if pc.any(pc.match_substring_regex(column, r'["\\\x00-\x1f]')).as_py():
        # Never needed for the generator's own vocabularies, but exact for anything else.
        values = column.to_pylist()
        return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values])
    return pc.binary_join_element_wise('"', column, '"', "")


def _write_table(table: pa.Table, path: Path, fmt: str) -> None:
    """Write one table as one file."""
    with _StreamWriter(path, fmt) as writer:
        writer.write(table)


class _StreamWriter:
    """Writes a file in pieces (one per block) in any of the formats, with one CSV header."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._writer = None
        self._file = None

    def __enter__(self) -> _StreamWriter:
        if self.fmt == "jsonl":
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def write(self, table: pa.Table) -> None:
        if self.fmt == "parquet":
            table = _for_parquet(table)
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, table.schema, **_parquet_options(table.schema))
            self._writer.write_table(table)
        elif self.fmt == "csv":
            table = _for_text(table)
            if self._writer is None:
                self._writer = pa_csv.CSVWriter(self.path, table.schema)
            self._writer.write_table(table)
        else:
            table = _for_text(table)
            for start in range(0, table.num_rows, _JSON_ROWS_PER_SLICE):
                self._file.write(_json_lines(table.slice(start, _JSON_ROWS_PER_SLICE)))

    def __exit__(self, *exc) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()


def _read_files(paths: Sequence[Path], fmt: str) -> pa.Table:
    """Read files this module wrote back into one Arrow table."""
    tables = []
    for path in paths:
        if fmt == "parquet":
            tables.append(pq.read_table(path))
        elif fmt == "csv":
            # An empty field is a null: the generator never writes empty strings.
            options = pa_csv.ConvertOptions(strings_can_be_null=True)
            tables.append(pa_csv.read_csv(path, convert_options=options))
        else:
            tables.append(pa_json.read_json(path))
    return pa.concat_tables(tables, promote_options="permissive")

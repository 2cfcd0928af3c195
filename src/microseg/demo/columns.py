"""Arrow column builders shared by the demo generator's tables (ids, strings, times, money)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _fixed_width(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """Strings ``prefix`` + ``numbers`` zero-padded to ``digits``, built by Arrow kernels."""
    text = pa.array(np.asarray(numbers, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, digits, "0"), "")


def _strings(values: Sequence[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """``values[index]`` as an Arrow string array; rows where ``mask`` is True are null."""
    taken = pa.array(list(values), pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))
    if mask is not None and mask.any():
        taken = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), taken)
    return taken


def _timestamps(seconds: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Epoch seconds as an Arrow timestamp array (second resolution); masked rows are null."""
    return pa.array(np.asarray(seconds, dtype="datetime64[s]"), pa.timestamp("s"), mask=mask)


def _money(cents: np.ndarray) -> pa.Array:
    """Amounts in pence as exact decimal128(12, 2) pounds, built straight from the buffer."""
    cents = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension of the 128-bit little-endian integer
    return pa.Array.from_buffers(pa.decimal128(12, 2), len(cents), [None, pa.py_buffer(words)])


def _constant(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)

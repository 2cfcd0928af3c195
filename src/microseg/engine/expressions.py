"""Small Ibis expressions every engine evaluates alike."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir


def number(value: ir.Value) -> ir.FloatingValue:
    """A numeric value as a float where NaN counts as missing, as pandas has it (Spark and
    DuckDB keep NaN apart from null).

    >>> import ibis
    >>> t = ibis.memtable({"x": [1.0, float("nan")]}, schema={"x": "float64"})
    >>> t.select(y=number(t.x)).to_pandas()["y"].isna().tolist()
    [False, True]
    """
    value = value.cast("float64")
    return ibis.ifelse(value.isnan(), ibis.null("float64"), value)

"""Helpers shared by the import tests: sources built from plain dicts, small files written on the fly."""

from __future__ import annotations

from pathlib import Path

from microseg.config import SourceConfig, parse_source

ORDERS_COLUMNS = {
    "customer_id": "customer",
    "ts": "day",
    "product_id": "sku",
    "quantity": "qty",
    "unit_price": "price",
}


def orders_source(path: Path | str, name: str = "orders", **settings) -> SourceConfig:
    """A purchase source over files with columns customer, day, sku, qty, price."""
    body = {"path": str(path), "event_type": "purchase", "columns": dict(ORDERS_COLUMNS), **settings}
    return parse_source(name, body)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path

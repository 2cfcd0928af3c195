"""Per-customer features, computed in Ibis so they run on every engine."""

from microseg.features.summary import customer_summary

__all__ = ["customer_summary"]

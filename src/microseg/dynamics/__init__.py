"""Segments over time: snapshots, membership history, migration, forecasts, alerts and reports."""

"""Importing source files into the warehouse: reading (CSV, Parquet, JSON, spreadsheets),
validation against the table contracts, quarantine of rejected rows with their reasons,
deduplication and lineage of every import."""

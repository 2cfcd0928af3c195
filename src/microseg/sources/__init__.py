"""Data sources in the formats users have: what to read and how (spreadsheets here); importing
them into the warehouse, with validation, quarantine and lineage, is ``microseg.warehouse.ingest``."""

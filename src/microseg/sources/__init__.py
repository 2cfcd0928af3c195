"""Data sources: files, and the validation, quarantine and deduplication every row goes through."""

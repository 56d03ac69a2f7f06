"""The domain's records: the JSON Schemas (package data), the categories, and the importers
that turn CSV, XLSX and JSON into submissions."""

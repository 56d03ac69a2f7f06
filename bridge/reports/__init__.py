"""Reconciliation reports: ``rules`` (how statuses count), ``model`` (the report's values),
``build`` (the report from the store's grouped rows), all pure; and ``render/`` (text, JSON,
CSV, HTML), where only the text renderer imports rich."""

"""The SQLite store: repositories, the schema and its migrations."""

"""Storage adapters behind the engine's ports."""

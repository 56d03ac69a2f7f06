"""The pure core: the protocol's data and rules, with no I/O framework (no asyncio, aiohttp,
sqlite3 or nats). Everything above builds on it; it imports nothing above it."""

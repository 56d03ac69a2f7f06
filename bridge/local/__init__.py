"""The local API on the Unix socket, and who may use it."""

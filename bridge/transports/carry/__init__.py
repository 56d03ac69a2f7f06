"""The offline carrier: envelopes and their answers in files a delegate carries across
(PROTOCOL.md §12). The format is the core's (``bridge.core.carry``); this package writes and
reads the files, and hands them to the daemon's local API."""

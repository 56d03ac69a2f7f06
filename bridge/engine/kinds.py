"""The envelope kinds of version 1 (PROTOCOL.md §8.1): what an envelope's payload is. Any other
kind is refused with ``unknown_kind`` (the dispatch table is in ``bridge.engine.inbound``)."""

from __future__ import annotations

KIND_CHUNK = "chunk"
KIND_KEY_ROTATION = "key-rotation"
KIND_KEY_REVOCATION = "key-revocation"
KIND_CHECKPOINT = "checkpoint"
"""A party's witnessed checkpoint and its records about the peer (PROTOCOL.md §13.7)."""

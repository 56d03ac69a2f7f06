"""What a process beside the daemon runs for a streamed submission: one batch, given as its
items' msgpack bytes, decoded and checked (``bridge.local.stream_beside``).

Kept apart from the HTTP side of the stream so that such a process imports only this: the
decoder, the checks and the entries (about 30 MB of interpreter, against over 50 with aiohttp
and the engine), and nothing that opens a socket or the store.
"""

from __future__ import annotations

from bridge.engine.stream_batch import BatchRules, CheckedBatch, check_batch
from bridge.local.msgpack_frames import decode_values


def check_packed(rules: BatchRules, first: int, salts: bytes, packed: bytes) -> CheckedBatch:
    """Items ``first``, ``first + 1``, ... of a stream, given as their msgpack bytes: decoded
    and checked as a streamed value is, then as a batch is (``check_batch``). Pure work."""
    items = decode_values(packed, lambda n: f"items[{first + n}]")
    return check_batch(rules, first, salts, items)


__all__ = ["check_packed"]

"""Building a transcript (PROTOCOL.md §11.4) from the documents and envelopes of an exchange,
and telling one from a receipt at a glance."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from bridge.core import codec
from bridge.core.transcript.model import (
    TRANSCRIPT,
    TRANSCRIPT_LIMITS,
    TRANSCRIPT_VERSION,
    TranscriptDocument,
    TranscriptEnvelope,
    chunk_continues,
)


def build_transcript(*, parties: tuple[str, str], exported_at: int,
                     documents: Sequence[TranscriptDocument],
                     outbound: Sequence[TranscriptEnvelope],
                     inbound: Sequence[TranscriptEnvelope]) -> bytes:
    """``parties`` is (exporter, peer); ``outbound`` the exporter's envelopes to the peer with
    the peer's receipts, ``inbound`` the peer's envelopes with the exporter's receipts."""
    a, b = parties

    def env(e: TranscriptEnvelope) -> dict[str, Any]:
        carries = None if e.doc is None else {"doc": e.doc, "first": e.first, "n": e.n}
        return {"carries": carries, "ct": e.ct, "ct_hash": e.ct_hash, "hash": e.hash,
                "header": e.header, "receipt": e.receipt, "sig": e.sig}

    return codec.encode({
        "v": TRANSCRIPT_VERSION, "type": TRANSCRIPT, "parties": [a, b],
        "exported_at": exported_at,
        "documents": [{"doc": d.signed.to_map(),
                       "entries": None if d.entries is None else list(d.entries)}
                      for d in documents],
        "links": [{"from": a, "to": b, "envelopes": [env(e) for e in outbound]},
                  {"from": b, "to": a, "envelopes": [env(e) for e in inbound]}],
    })


def _str_next(data: bytes, at: int) -> bool:
    """Whether the value at ``at`` is a MessagePack str (fixstr, str 8/16/32)."""
    return at < len(data) and (0xA0 <= data[at] <= 0xBF or 0xD9 <= data[at] <= 0xDB)


def is_transcript(data: bytes) -> bool:
    """A cheap look at the ``type`` of a top-level map, without building the rest (so that
    ``bridge verify`` can tell a transcript from a receipt before decoding either)."""
    try:
        # Read through a file object: the unpacker buffers a little at a time instead of
        # copying a transcript of hundreds of megabytes.
        unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False,
                                    max_str_len=TRANSCRIPT_LIMITS.max_str,
                                    max_bin_len=TRANSCRIPT_LIMITS.max_bin,
                                    max_array_len=TRANSCRIPT_LIMITS.max_items,
                                    max_map_len=TRANSCRIPT_LIMITS.max_items)
        for _ in range(unpacker.read_map_header()):
            # Only a str is ever built (short: max_str); anything else is skipped, which
            # builds nothing, so a key or value of a million empty arrays costs no memory.
            if not _str_next(data, unpacker.tell()):
                return False
            key = unpacker.unpack()
            if key == "type":
                return _str_next(data, unpacker.tell()) and unpacker.unpack() == TRANSCRIPT
            unpacker.skip()
    except Exception:  # anything malformed is for the full decoder to name
        return False
    return False


def accountable(envelopes: Sequence[TranscriptEnvelope],
                counts: Mapping[bytes, int]) -> list[TranscriptEnvelope]:
    """``envelopes`` with ``carries`` cleared where it does not continue its document (by
    document hash, in ``counts`` with its entry count) as §11.5 step 5.10 requires. A hostile
    peer can send such chunks (a chunk again, or of another size): the recipient refuses or
    takes each on its own, and its transcript then says that their content is not accounted
    for instead of failing to verify."""
    state: dict[bytes, tuple[int, int]] = {}
    out = []
    for e in envelopes:
        if e.doc is not None and e.doc in counts and e.first is not None and e.n is not None:
            carried, size = state.get(e.doc, (0, 0))
            if chunk_continues(carried=carried, size=size, first=e.first, n=e.n,
                               count=counts[e.doc]):
                state[e.doc] = (carried + e.n, size or e.n)
            else:
                e = dataclasses.replace(e, doc=None, first=None, n=None)
        out.append(e)
    return out


__all__ = ["accountable", "build_transcript", "is_transcript"]

"""Building a transcript (PROTOCOL.md §11.4) from the documents and envelopes of an exchange."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from bridge.core import codec
from bridge.core.crypto.hashes import sha256
from bridge.core.documents import SignedHeader
from bridge.core.errors import StoreError
from bridge.core.transcript.model import (
    TRANSCRIPT,
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
    return codec.encode(_skeleton(
        parties, exported_at,
        [(d.signed, None if d.entries is None else list(d.entries)) for d in documents],
        [_envelope(e) for e in outbound], [_envelope(e) for e in inbound]))


@dataclass(frozen=True, kw_only=True)
class StreamedDocument:
    """A document of a streamed transcript: its signed header, and a way to read its entries
    in index order when their turn comes (None: not included)."""
    signed: SignedHeader
    entries: Callable[[], Iterable[bytes]] | None = field(repr=False)


def stream_transcript(*, parties: tuple[str, str], exported_at: int,
                      documents: Sequence[StreamedDocument],
                      outbound: tuple[int, Iterable[TranscriptEnvelope]],
                      inbound: Sequence[TranscriptEnvelope],
                      witnessed: list[dict[str, Any]] | None = None) -> Iterator[bytes]:
    """The bytes of ``build_transcript`` (with ``witnessed`` as ``with_witnessed`` adds it), a
    piece at a time: each document's entries and the exporter's envelopes (``outbound``: how
    many, then each, ciphertext included) are read as they are sent, never held together.

    The map is encoded canonically with a placeholder in place of each such array (a map's
    key order does not depend on its values), and at each placeholder the array's header and
    elements go instead: an array's encoding is its header and its elements' encodings."""
    # Here, not at the top: the receipts import this package (for TRANSCRIPT).
    from bridge.core.receipts.stream import spliced
    from bridge.core.receipts.witnessed import WITNESSED

    tokens = [_token(exported_at, n) for n in range(len(documents) + 1)]
    count, envelopes = outbound
    parts: list[Iterator[bytes]] = [
        _entries(d.signed, d.entries) for d in documents if d.entries is not None]
    parts.append(_array(count, (codec.encode(_envelope(e)) for e in envelopes), "envelopes"))
    entry_tokens = iter(tokens)
    skeleton = _skeleton(parties, exported_at,
                         [(d.signed, None if d.entries is None else next(entry_tokens))
                          for d in documents],
                         next(entry_tokens), [_envelope(e) for e in inbound])
    if witnessed:
        skeleton[WITNESSED] = witnessed
    yield from spliced(codec.encode(skeleton), tokens[:len(parts)], parts)


def _skeleton(parties: tuple[str, str], exported_at: int,
              documents: Sequence[tuple[SignedHeader, object]], outbound: object,
              inbound: object) -> dict[str, Any]:
    a, b = parties
    return {
        "v": TRANSCRIPT_VERSION, "type": TRANSCRIPT, "parties": [a, b],
        "exported_at": exported_at,
        "documents": [{"doc": signed.to_map(), "entries": entries}
                      for signed, entries in documents],
        "links": [{"from": a, "to": b, "envelopes": outbound},
                  {"from": b, "to": a, "envelopes": inbound}],
    }


def _envelope(e: TranscriptEnvelope) -> dict[str, Any]:
    carries = None if e.doc is None else {"doc": e.doc, "first": e.first, "n": e.n}
    return {"carries": carries, "ct": e.ct, "ct_hash": e.ct_hash, "hash": e.hash,
            "header": e.header, "receipt": e.receipt, "sig": e.sig}


def _entries(signed: SignedHeader, read: Callable[[], Iterable[bytes]]) -> Iterator[bytes]:
    pack = msgpack.Packer(use_bin_type=True)
    return _array(signed.header.count, (pack.pack(leaf) for leaf in read()),
                  f"entries of {signed.header.id}")


def _array(count: int, encoded: Iterable[bytes], what: str) -> Iterator[bytes]:
    """An array announced as ``count`` elements: its header, then each element's encoding;
    other than ``count`` of them (the store changed under a read it must not change under)
    raises, and the file being written is not kept."""
    yield msgpack.Packer(use_bin_type=True).pack_array_header(count)
    n = 0
    for n, piece in enumerate(encoded, 1):
        if n > count:
            break
        yield piece
    if n != count:
        raise StoreError(f"the {what} are not the {count} announced")


def _token(exported_at: int, n: int) -> bytes:
    return sha256(b"bridge transcript placeholder\x00" + exported_at.to_bytes(8, "big")
                  + n.to_bytes(4, "big"))


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


__all__ = ["StreamedDocument", "accountable", "build_transcript", "stream_transcript"]

"""What a transcript is made of (PROTOCOL.md §11.4): its wire constants and limits, the
documents and envelopes it lists, and what a check of it shows (§11.5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec, envelope
from bridge.core.crypto.hashes import sha256
from bridge.core.documents import SignedHeader
from bridge.core.printable import printable as _printable
from bridge.core.receipts import iso_time

TRANSCRIPT = "bridge.transcript"
# Version 2 carries what binds each envelope header (signature, ciphertext hash, ciphertext);
# version 1 carried the header alone, bound by nothing, and is refused.
TRANSCRIPT_VERSION = 2
ZERO_HASH = bytes(32)
KIND_CHUNK = "chunk"  # the one envelope kind that carries a document chunk (PROTOCOL.md §8.1)
# An envelope's ciphertext is at most what a receiver accepts as a payload (PROTOCOL.md §8.1).
MAX_CIPHERTEXT = 256 * 1024 * 1024
TRANSCRIPT_LIMITS = codec.Limits(
    # Headers, hashes, receipts, entries and the exporter's own ciphertexts: 256 MiB holds
    # some 400,000 envelopes without entries, or the exchange of a 100,000-item manifest and
    # its acknowledgements with them. The decoded objects take at most twice the file's size
    # (§2.4), so a bomb of tiny values is refused when its budget runs out.
    max_bytes=256 * 1024 * 1024,
    max_expansion=2,
    # transcript → links → link → envelopes → envelope → carries (depth 5)
    max_depth=6,
    max_items=1_000_000,
    max_str=1024,
    # Headers, entries and receipts are each decoded again with SMALL_LIMITS; ciphertexts
    # are only hashed.
    max_bin=MAX_CIPHERTEXT,
)
# The keys of a transcript and of its parts, exactly (PROTOCOL.md §11.4).
KEYS = frozenset({"v", "type", "parties", "exported_at", "documents", "links"})
LINK_KEYS = frozenset({"from", "to", "envelopes"})
ENVELOPE_KEYS = frozenset({"header", "sig", "ct_hash", "ct", "hash", "receipt", "carries"})
CARRIES_KEYS = frozenset({"doc", "first", "n"})


@dataclass(frozen=True, kw_only=True)
class TranscriptDocument:
    signed: SignedHeader
    entries: Sequence[bytes] | None = field(repr=False)  # None: not included


@dataclass(frozen=True, kw_only=True)
class TranscriptEnvelope:
    header: bytes = field(repr=False)  # the envelope header bytes (PROTOCOL.md §5.1)
    sig: bytes = field(repr=False)  # the sender's envelope signature (§5.3)
    ct_hash: bytes = field(repr=False)  # SHA-256 of the ciphertext, which ``sig`` covers
    hash: bytes  # the envelope hash (§5.4)
    receipt: bytes = field(repr=False)  # the recipient's signed transport receipt (§8.3)
    # The ciphertext, when the exporter has it (its own envelopes): with it the envelope hash
    # is recomputed, so the recipient's receipt binds the header as well.
    ct: bytes | None = field(default=None, repr=False)
    doc: bytes | None = None  # the document chunk it carries, when known
    first: int | None = None
    n: int | None = None

    @classmethod
    def from_wire(cls, data: bytes, *, receipt: bytes, doc: bytes | None = None,
                  first: int | None = None, n: int | None = None,
                  limits: codec.Limits = codec.DEFAULT_LIMITS) -> TranscriptEnvelope:
        """From an envelope's wire bytes (one the exporter sealed): everything, ciphertext
        included."""
        _, header, ct, sig = envelope.parse(data, limits=limits)
        return cls(header=header, sig=sig, ct_hash=sha256(ct),
                   hash=envelope.envelope_hash(data), receipt=receipt, ct=ct, doc=doc,
                   first=first, n=n)


@dataclass(frozen=True, kw_only=True)
class TranscriptResult:
    """What a transcript shows, or the first reason it does not hold."""

    ok: bool
    reason: str | None = None
    diagnosis: str | None = None
    parties: tuple[str, str] | None = None
    documents: int = 0  # rosters and manifests
    acks: int = 0  # acknowledgement documents
    without_entries: int = 0  # documents whose entries were not included
    without_entries_ids: tuple[str, ...] = ()  # … by id
    # Acknowledgements with entries not checked item by item against their document, because
    # the document's or an earlier acknowledgement's entries are not included (step 4).
    unchecked: tuple[str, ...] = ()
    envelopes: tuple[int, int] = (0, 0)  # parties[0] → parties[1], and back
    refused: int = 0  # envelopes whose receipt says the content was refused
    undelivered: tuple[str, ...] = ()  # documents not (yet) carried whole by accepted envelopes
    # Chunk envelopes whose content the transcript does not name ("envelope 4 beta→alpha").
    unaccounted: tuple[str, ...] = ()
    # Envelopes listed without their ciphertext: their headers are bound by the sender's
    # signature, but their hash (what the recipient's receipt names) is not recomputed.
    without_ciphertext: int = 0
    first_at: int | None = None
    last_at: int | None = None
    # Documents signed, before its since, by a key later revoked (PROTOCOL.md §4.5).
    caveats: tuple[str, ...] = ()

    def summary(self) -> str:
        if not self.ok:
            return f"{_printable(self.diagnosis or 'transcript does not verify')} [{self.reason}]"
        assert self.parties is not None
        a, b = self.parties
        k1, k2 = self.envelopes
        envs = (f"{k1} envelope{plural(k1)} each way" if k1 == k2 else
                f"{k1} envelope{plural(k1)} {a}→{b} and {k2} {b}→{a}")
        line = (f"transcript {a}↔{b}: {self.documents} document{plural(self.documents)}, "
                f"{self.acks} acknowledgement{plural(self.acks)}, {envs} with signed receipts")
        if self.first_at is not None and self.last_at is not None:
            line += f", from {iso_time(self.first_at)} to {iso_time(self.last_at)}"
        notes = []
        if self.refused:
            notes.append(f"{self.refused} envelope{plural(self.refused)} refused by the recipient")
        if self.without_entries:
            notes.append(f"entries of {self.without_entries} document"
                         f"{plural(self.without_entries)} not included (headers only): "
                         f"{_some(self.without_entries_ids)}")
        if self.unchecked:
            notes.append("acknowledgements not checked item by item (entries of their document "
                         f"or of an earlier acknowledgement not included): "
                         f"{_some(self.unchecked)}")
        if self.undelivered:
            notes.append(f"not carried whole by accepted envelopes: {_some(self.undelivered)}")
        if self.unaccounted:
            # What the transcript leaves out must be said (PROTOCOL.md §11.5 step 6): an
            # envelope that carried a chunk of a document not listed, or not said which.
            notes.append(f"content not accounted for: {_some(self.unaccounted)}")
        if self.without_ciphertext:
            notes.append(f"{self.without_ciphertext} envelope{plural(self.without_ciphertext)} "
                         "without ciphertext (header bound by its sender's signature only)")
        notes += [f"CAUTION: {_printable(c)}" for c in self.caveats]
        return line + "".join(f"; {n}" for n in notes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "kind": "transcript", "reason": self.reason,
                               "diagnosis": self.diagnosis}
        if self.ok:
            assert self.parties is not None
            out.update({
                "parties": list(self.parties), "documents": self.documents, "acks": self.acks,
                "without_entries": self.without_entries,
                "without_entries_ids": list(self.without_entries_ids),
                "unchecked": list(self.unchecked),
                "envelopes": {f"{self.parties[0]}→{self.parties[1]}": self.envelopes[0],
                              f"{self.parties[1]}→{self.parties[0]}": self.envelopes[1]},
                "refused": self.refused, "undelivered": list(self.undelivered),
                "unaccounted": list(self.unaccounted),
                "without_ciphertext": self.without_ciphertext,
                "first_at": iso_time(self.first_at) if self.first_at is not None else None,
                "last_at": iso_time(self.last_at) if self.last_at is not None else None,
                "caveats": list(self.caveats)})
        return out


def plural(n: int) -> str:
    return "" if n == 1 else "s"


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(_printable(d) for d in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def chunk_continues(*, carried: int, size: int, first: int, n: int, count: int) -> bool:
    """Whether a chunk of ``n`` entries from ``first`` continues a document of ``count``
    entries of which ``carried`` were carried before, in chunks of ``size`` (0 before the
    first). Chunks are aligned runs of one power-of-two size C, the last one shorter (§8.1):
    so a document's chunks cannot be recut to make room for an envelope whose content is
    hidden."""
    if first != carried or n < 1 or first + n > count:
        return False
    ends = first + n == count
    if not size:  # the first chunk sets C (a single chunk may be any length)
        return ends or n & (n - 1) == 0
    return n == size or (ends and n < size)


__all__ = ["CARRIES_KEYS", "ENVELOPE_KEYS", "KEYS", "KIND_CHUNK", "LINK_KEYS", "MAX_CIPHERTEXT",
           "TRANSCRIPT", "TRANSCRIPT_LIMITS", "TRANSCRIPT_VERSION", "ZERO_HASH",
           "TranscriptDocument", "TranscriptEnvelope", "TranscriptResult", "chunk_continues",
           "plural"]

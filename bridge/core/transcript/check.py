"""Checking a transcript (PROTOCOL.md §11.5): the entry points, and steps 1 (decoding), 2 (the
parties and links) and 6 (what was delivered); steps 3 and 4 are in ``check_documents``, step 5
in ``check_links``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bridge.core.crypto.identity import PARTY_RE, Keyring
from bridge.core.documents import ACK
from bridge.core.errors import BridgeError, DecodeError, VerificationError
from bridge.core.pieces import Opener, of_bytes
from bridge.core.receipts import iso_time
from bridge.core.transcript import layout
from bridge.core.transcript.check_documents import check_documents
from bridge.core.transcript.check_entries import check_entries
from bridge.core.transcript.check_links import check_link
from bridge.core.transcript.check_state import CheckedDocument, Times, fail
from bridge.core.transcript.layout import WITNESSED
from bridge.core.transcript.model import (
    KEYS,
    TRANSCRIPT,
    TRANSCRIPT_VERSION,
    TranscriptResult,
    plural,
)


def check_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Check a transcript held in memory against ``keys`` (the two parties' identities).
    Never raises for bad input: the result names the first step that failed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return TranscriptResult(ok=False, reason="bad_transcript",
                                diagnosis="a transcript is bytes")
    return check_transcript_file(of_bytes(bytes(data)), keys)


def check_transcript_file(open_file: Opener, keys: Keyring) -> TranscriptResult:
    """Check the transcript that ``open_file`` reads, a piece at a time: what it holds is
    never in memory at once (``reader``). Never raises for bad input."""
    try:
        return _check(open_file, keys)
    except DecodeError as exc:
        return TranscriptResult(ok=False, reason=exc.reason,
                                diagnosis=f"not a canonical Bridge encoding: {exc.message}")
    except BridgeError as err:
        return TranscriptResult(ok=False, reason=err.code, diagnosis=err.message)


def verify_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Like ``check_transcript``, but raises ``VerificationError`` unless it holds."""
    result = check_transcript(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "transcript does not verify",
                                reason=result.reason or "invalid")
    return result


def _check(open_file: Opener, keys: Keyring) -> TranscriptResult:
    # 1. Decode strictly (PROTOCOL.md §2.4) within TRANSCRIPT_LIMITS, a piece at a time; the
    #    shape of §11.4. The witnessed times (§13.5) are checked on their own.
    found = layout.read_layout(open_file)
    value = found.small if found is not None else {}
    if (found is None or found.keys - {WITNESSED} != KEYS or type(value["v"]) is not int
            or value["v"] != TRANSCRIPT_VERSION or value["type"] != TRANSCRIPT):
        raise fail(f"not a version {TRANSCRIPT_VERSION} Bridge transcript", "bad_transcript")
    # 2. Parties and links: two parties, one link each way.
    parties = value["parties"]
    if (not isinstance(parties, list) or len(parties) != 2
            or not all(isinstance(p, str) and PARTY_RE.match(p) for p in parties)
            or parties[0] == parties[1]):
        raise fail("parties must be two different party names", "bad_transcript")
    a, b = parties
    listed = layout.documents(open_file, found.at["documents"])
    if type(value["exported_at"]) is not int or listed is None:
        raise fail("exported_at must be an integer and documents a list", "bad_transcript")
    links = layout.links(open_file, found.at["links"])
    if (links is None or (links[0].sender, links[0].recipient) != (a, b)
            or (links[1].sender, links[1].recipient) != (b, a)):
        raise fail(f"links must be {a}→{b} then {b}→{a}", "bad_transcript")
    times = Times()
    docs = check_documents(layout.each_document(open_file, listed), (a, b), keys, times,
                           open_file)
    # 4. Entries: what each acknowledgement says about each declared item.
    unchecked = check_entries(docs, keys, open_file)
    by_digest = {d.signed.digest: d for d in docs}
    seen = [check_link(link.sender, link.recipient,
                       functools.partial(layout.envelopes, open_file, link.envelopes),
                       link.envelopes.count, by_digest, keys, times)
            for link in links]
    # 6. What was delivered (reported, not required: a transcript may be taken mid-exchange).
    undelivered = tuple(d.signed.header.id for d in docs
                        if d.delivered != d.signed.header.count)
    return TranscriptResult(
        ok=True, parties=(a, b), documents=sum(d.signed.header.type != ACK for d in docs),
        acks=sum(d.signed.header.type == ACK for d in docs),
        without_entries=sum(d.entries is None for d in docs),
        without_entries_ids=tuple(d.signed.header.id for d in docs if d.entries is None),
        unchecked=unchecked,
        envelopes=(seen[0].count, seen[1].count), refused=seen[0].refused + seen[1].refused,
        undelivered=undelivered, unaccounted=seen[0].unaccounted + seen[1].unaccounted,
        without_ciphertext=seen[0].without_ciphertext + seen[1].without_ciphertext,
        first_at=times.first, last_at=times.last, caveats=_revocation_caveats(docs, keys))


def _revocation_caveats(docs: Sequence[CheckedDocument], keys: Keyring) -> tuple[str, ...]:
    """Per key later revoked: how many documents it signed dated before ``since``, which only
    the other party's countersignatures dated before ``since`` can prove (PROTOCOL.md §4.5)."""
    counts: dict[bytes, int] = {}
    for d in docs:
        h = d.signed.header
        if keys.revoked_later(h.issuer_key, h.created) is not None:
            counts[h.issuer_key] = counts.get(h.issuer_key, 0) + 1
    out = []
    for key_id, n in counts.items():
        ident = keys.get(key_id)
        assert ident is not None  # every document's signature was checked against ``keys``
        out.append(f"{n} document{plural(n)} signed by {ident.party}'s key {ident.fingerprint}, "
                   f"revoked from {iso_time(keys.revoked[key_id])}, dated before that only by "
                   "that key's own claim: each proves something only as far as the other "
                   "party's acknowledgements and receipts dated before then countersign it")
    return tuple(out)


__all__ = ["check_transcript", "check_transcript_file", "verify_transcript"]

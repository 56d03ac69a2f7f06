"""Checking a transcript (PROTOCOL.md §11.5): the entry points, and steps 1 (decoding), 2 (the
parties and links) and 6 (what was delivered); steps 3 and 4 are in ``check_documents``, step 5
in ``check_links``."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.core import codec
from bridge.core.crypto.identity import PARTY_RE, Keyring
from bridge.core.documents import ACK
from bridge.core.errors import BridgeError, DecodeError, VerificationError
from bridge.core.receipts import iso_time
from bridge.core.transcript.check_documents import check_documents, check_entries
from bridge.core.transcript.check_links import check_link
from bridge.core.transcript.check_state import CheckedDocument, Times, fail
from bridge.core.transcript.model import (
    KEYS,
    LINK_KEYS,
    TRANSCRIPT,
    TRANSCRIPT_LIMITS,
    TRANSCRIPT_VERSION,
    TranscriptResult,
    plural,
)


def check_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Check a transcript against ``keys`` (the two parties' identities). Never raises for bad
    input: the result names the first step that failed."""
    try:
        return _check(data, keys)
    except BridgeError as err:
        return TranscriptResult(ok=False, reason=err.code, diagnosis=err.message)


def verify_transcript(data: bytes, keys: Keyring) -> TranscriptResult:
    """Like ``check_transcript``, but raises ``VerificationError`` unless it holds."""
    result = check_transcript(data, keys)
    if not result.ok:
        raise VerificationError(result.diagnosis or "transcript does not verify",
                                reason=result.reason or "invalid")
    return result


def _check(data: bytes, keys: Keyring) -> TranscriptResult:
    # 1. Decode strictly (PROTOCOL.md §2.4) within TRANSCRIPT_LIMITS; the shape of §11.4.
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise fail("a transcript is bytes", "bad_transcript")
    try:
        value = codec.decode(bytes(data), TRANSCRIPT_LIMITS)
    except DecodeError as exc:
        raise fail(f"not a canonical Bridge encoding: {exc.message}", exc.reason) from exc
    if isinstance(value, dict):
        value.pop("witnessed", None)  # witnessed times (§13.5): checked on their own
    if (not isinstance(value, dict) or set(value) != KEYS or type(value["v"]) is not int
            or value["v"] != TRANSCRIPT_VERSION or value["type"] != TRANSCRIPT):
        raise fail(f"not a version {TRANSCRIPT_VERSION} Bridge transcript", "bad_transcript")
    # 2. Parties and links: two parties, one link each way.
    parties = value["parties"]
    if (not isinstance(parties, list) or len(parties) != 2
            or not all(isinstance(p, str) and PARTY_RE.match(p) for p in parties)
            or parties[0] == parties[1]):
        raise fail("parties must be two different party names", "bad_transcript")
    a, b = parties
    if type(value["exported_at"]) is not int or not isinstance(value["documents"], list):
        raise fail("exported_at must be an integer and documents a list", "bad_transcript")
    links = value["links"]
    if (not isinstance(links, list) or len(links) != 2
            or not all(isinstance(x, dict) and set(x) == LINK_KEYS
                       and isinstance(x["envelopes"], list) for x in links)
            or (links[0]["from"], links[0]["to"]) != (a, b)
            or (links[1]["from"], links[1]["to"]) != (b, a)):
        raise fail(f"links must be {a}→{b} then {b}→{a}", "bad_transcript")
    times = Times()
    docs = check_documents(value["documents"], (a, b), keys, times)
    # 4. Entries: what each acknowledgement says about each declared item.
    unchecked = check_entries(docs, keys)
    by_digest = {d.signed.digest: d for d in docs}
    seen = [check_link(link["from"], link["to"], link["envelopes"], by_digest, keys, times)
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


__all__ = ["check_transcript", "verify_transcript"]

"""Transcripts (bridge/transcript.py, PROTOCOL.md §11.4–11.5), without daemons: a synthetic
exchange is signed, chunked, sealed and receipted exactly as two bridges would, then checked;
each attack is named after what it tries and must fail with its reason code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from bridge import chunks, codec, documents, envelope, merkle, transport
from bridge.documents import AckItem, Item, SignedDocument
from bridge.identity import TAG_DOCUMENT, Keyring, PrivateIdentity
from bridge.transcript import (
    TRANSCRIPT_LIMITS,
    TranscriptDocument,
    TranscriptEnvelope,
    build_transcript,
    check_transcript,
    is_transcript,
    verify_transcript,
)

T0 = 1_772_463_600_000  # 2026-03-02T15:00:00.000Z
CHUNK = 2


@dataclasses.dataclass
class Link:
    """One direction: its envelopes as a transcript lists them, and the chain so far."""

    sender: PrivateIdentity
    recipient: PrivateIdentity
    envelopes: list[TranscriptEnvelope] = dataclasses.field(default_factory=list)

    def send(self, doc: SignedDocument, at: int, *, result: str = "accepted") -> None:
        for chunk in chunks.split(doc, CHUNK):
            seq = len(self.envelopes) + 1
            prev = self.envelopes[-1].hash if self.envelopes else bytes(32)
            env = envelope.seal(self.sender, self.recipient.public,
                                message_id=bytes([seq]) * 16, seq=seq, prev=prev, sent_at=at,
                                kind="chunk", payload=chunk.payload)
            receipt = transport.sign_answer(self.recipient, transport.TransportAnswer(
                sender=self.sender.party, recipient=self.recipient.party,
                by_key=self.recipient.key_id, envelope=env.digest,
                message_id=env.header.message_id, seq=seq, at=at + 10, result=result,
                reason=None if result == "accepted" else "invalid_content"))
            self.envelopes.append(TranscriptEnvelope(
                header=codec.encode(env.header.to_map()), hash=env.digest, receipt=receipt,
                doc=doc.digest, first=chunk.first, n=len(chunk.entries)))


@dataclasses.dataclass
class Exchange:
    alpha: PrivateIdentity
    beta: PrivateIdentity
    docs: list[SignedDocument]
    out: Link
    back: Link

    def transcript(self, *, entries: bool = True) -> bytes:
        return build_transcript(
            parties=("alpha", "beta"), exported_at=T0 + 10_000_000,
            documents=[TranscriptDocument(signed=d.signed, entries=d.leaves if entries else None)
                       for d in self.docs],
            outbound=self.out.envelopes, inbound=self.back.envelopes)


@pytest.fixture(scope="module")
def ex(alpha: PrivateIdentity, beta: PrivateIdentity) -> Exchange:
    """alpha sends a five-item manifest (3 envelopes); beta acknowledges every item (3
    envelopes), then changes one item's status (1 envelope)."""
    items = [Item(id=f"REM-TEST-{n:04d}", data={"kind": "remains_package", "bag": f"B-{n}"})
             for n in range(5)]
    manifest = documents.sign_document(alpha, doc_type="manifest", doc_id="MAN-TEST-1",
                                       recipient="beta", created=T0, meta={"batch": 1},
                                       items=items, salt_key=bytes(32))
    lh = {i.id: merkle.leaf_hash(manifest.leaves[n]) for n, i in enumerate(items)}
    ack1 = documents.sign_ack(beta, answers=manifest.signed, ack_id="ACK-TEST-1",
                              created=T0 + 60_000,
                              items=[AckItem(id=i.id, status="RECEIVED") for i in items],
                              declared_leaf_hashes=lh, salt_key=bytes([1]) * 32)
    ack2 = documents.sign_ack(beta, answers=manifest.signed, ack_id="ACK-TEST-2",
                              created=T0 + 120_000,
                              items=[AckItem(id=items[2].id, status="DISPUTED",
                                             reason="tag differs")],
                              declared_leaf_hashes=lh, salt_key=bytes([2]) * 32)
    out, back = Link(alpha, beta), Link(beta, alpha)
    out.send(manifest, T0)
    back.send(ack1, T0 + 60_000)
    back.send(ack2, T0 + 120_000)
    return Exchange(alpha=alpha, beta=beta, docs=[manifest, ack1, ack2], out=out, back=back)


def edit(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    value = codec.decode(data, TRANSCRIPT_LIMITS)
    change(value)
    return codec.encode(value)


def fails(data: bytes, keys: Keyring, reason: str) -> str:
    result = check_transcript(data, keys)
    assert not result.ok, result.summary()
    assert result.reason == reason, result.summary()
    assert result.summary().endswith(f"[{reason}]")
    return result.diagnosis or ""


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


# ---------------------------------------------------------------- what holds


def test_intact_transcript_holds(ex: Exchange, keyring: Keyring) -> None:
    result = verify_transcript(ex.transcript(), keyring)
    assert result.summary() == (
        "transcript alpha↔beta: 1 document, 2 acknowledgements, 3 envelopes alpha→beta and "
        "4 beta→alpha with signed receipts, from 2026-03-02T15:00:00.000Z to "
        "2026-03-02T15:02:00.010Z")
    assert result.envelopes == (3, 4) and result.undelivered == ()
    assert result.to_json()["envelopes"] == {"alpha→beta": 3, "beta→alpha": 4}


def test_the_other_side_exports_the_same_exchange(ex: Exchange, keyring: Keyring) -> None:
    data = build_transcript(parties=("beta", "alpha"), exported_at=T0, documents=[
        TranscriptDocument(signed=d.signed, entries=d.leaves) for d in ex.docs],
        outbound=ex.back.envelopes, inbound=ex.out.envelopes)
    result = verify_transcript(data, keyring)
    assert result.summary().startswith("transcript beta↔alpha: 1 document, 2 acknowledgements,"
                                       " 4 envelopes beta→alpha and 3 alpha→beta")


def test_headers_only_holds_and_says_so(ex: Exchange, keyring: Keyring) -> None:
    result = verify_transcript(ex.transcript(entries=False), keyring)
    assert result.without_entries == 3
    assert "entries of 3 documents not included (headers only)" in result.summary()


def test_same_count_each_way_is_said_once(ex: Exchange, keyring: Keyring) -> None:
    def drop_last(v: dict[str, Any]) -> None:
        del v["links"][1]["envelopes"][3:]
        del v["documents"][2]

    result = verify_transcript(edit(ex.transcript(), drop_last), keyring)
    assert "3 envelopes each way with signed receipts" in result.summary()


def test_last_envelope_left_out_holds_but_shows_the_document_undelivered(
        ex: Exchange, keyring: Keyring) -> None:
    """A prefix of the exchange is consistent: what it cannot show is reported."""
    result = verify_transcript(edit(ex.transcript(),
                                    lambda v: v["links"][0]["envelopes"].pop()), keyring)
    assert result.undelivered == ("MAN-TEST-1",)
    assert "not carried whole by accepted envelopes: MAN-TEST-1" in result.summary()


def test_is_transcript_tells_transcripts_from_other_files(ex: Exchange) -> None:
    assert is_transcript(ex.transcript())
    assert not is_transcript(codec.encode({"type": "bridge.receipt.document", "v": 1}))
    assert not is_transcript(b"\xc1garbage")
    assert not is_transcript(b"")


# ---------------------------------------------------------------- attacks on envelopes


def test_flipped_byte_in_a_receipt_signature(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        e = v["links"][0]["envelopes"][1]
        e["receipt"] = flip(e["receipt"], len(e["receipt"]) - 1)

    why = fails(edit(ex.transcript(), change), keyring, "bad_signature")
    assert "envelope 2 alpha→beta" in why


def test_flipped_byte_in_a_receipt_statement(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        e = v["links"][1]["envelopes"][0]
        outer = codec.decode(e["receipt"])
        r = codec.decode(outer["r"])
        r["at"] += 1
        e["receipt"] = codec.encode({"r": codec.encode(r), "s": outer["s"]})

    fails(edit(ex.transcript(), change), keyring, "bad_signature")


def test_envelope_dropped(ex: Exchange, keyring: Keyring) -> None:
    why = fails(edit(ex.transcript(), lambda v: v["links"][1]["envelopes"].pop(1)), keyring,
                "missing_envelope")
    assert why == "envelope 2 is missing from beta→alpha: after 1 comes 3"


def test_two_envelopes_reordered(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        envs = v["links"][0]["envelopes"]
        envs[0], envs[1] = envs[1], envs[0]

    why = fails(edit(ex.transcript(), change), keyring, "envelope_order")
    assert "envelope 2 stands where envelope 1 should" in why


def test_receipts_of_two_envelopes_swapped(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        envs = v["links"][0]["envelopes"]
        envs[0]["receipt"], envs[1]["receipt"] = envs[1]["receipt"], envs[0]["receipt"]

    fails(edit(ex.transcript(), change), keyring, "receipt_mismatch")


def test_envelope_hash_replaced(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        v["links"][0]["envelopes"][2]["hash"] = bytes(32)

    fails(edit(ex.transcript(), change), keyring, "receipt_mismatch")


def test_chain_link_changed(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        e = v["links"][0]["envelopes"][1]
        h = codec.decode(e["header"])
        h["prev"] = bytes(32)
        e["header"] = codec.encode(h)

    why = fails(edit(ex.transcript(), change), keyring, "chain_broken")
    assert "does not name the hash of envelope 1" in why


def test_receipt_signed_by_the_sender_itself(ex: Exchange, keyring: Keyring) -> None:
    """alpha 'proves' delivery of its own envelope with a receipt it signed."""
    def change(v: dict[str, Any]) -> None:
        e = v["links"][0]["envelopes"][0]
        answer = transport.parse_answer(e["receipt"], ex.beta.public)
        forged = dataclasses.replace(answer, by_key=ex.alpha.key_id)
        e["receipt"] = transport.sign_answer(ex.alpha, forged)

    fails(edit(ex.transcript(), change), keyring, "wrong_issuer")


def test_receipt_signature_made_under_the_document_tag(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        e = v["links"][0]["envelopes"][0]
        outer = codec.decode(e["receipt"])
        e["receipt"] = codec.encode({"r": outer["r"],
                                     "s": ex.beta.sign(TAG_DOCUMENT, outer["r"])})

    fails(edit(ex.transcript(), change), keyring, "bad_signature")


def test_rejection_shown_as_proof_of_delivery(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        e = v["links"][0]["envelopes"][0]
        answer = transport.parse_answer(e["receipt"], ex.beta.public)
        e["receipt"] = transport.sign_answer(ex.beta, dataclasses.replace(
            answer, result="rejected", reason="unauthenticated"))

    fails(edit(ex.transcript(), change), keyring, "not_delivered")


def test_chunk_claimed_out_of_order(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        v["links"][0]["envelopes"][1]["carries"]["first"] = 4

    fails(edit(ex.transcript(), change), keyring, "bad_chunk")


# ---------------------------------------------------------------- attacks on documents


def test_document_header_tampered(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        signed = v["documents"][0]["doc"]
        h = codec.decode(signed["header"])
        h["meta"]["batch"] = 2
        signed["header"] = codec.encode(h)

    fails(edit(ex.transcript(), change), keyring, "bad_signature")


def test_declared_entry_changed(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        entries = v["documents"][0]["entries"]
        entries[3] = flip(entries[3], len(entries[3]) - 3)

    fails(edit(ex.transcript(), change), keyring, "root_mismatch")


def test_declared_entry_dropped(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v["documents"][0]["entries"].pop()), keyring,
          "count_mismatch")


def test_acknowledgement_dropped_but_its_envelope_kept(ex: Exchange, keyring: Keyring) -> None:
    why = fails(edit(ex.transcript(), lambda v: v["documents"].pop(2)), keyring,
                "unknown_document")
    assert "envelope 4 beta→alpha" in why


def test_document_dropped_but_its_acknowledgements_kept(ex: Exchange,
                                                       keyring: Keyring) -> None:
    why = fails(edit(ex.transcript(), lambda v: v["documents"].pop(0)), keyring,
                "unknown_document")
    assert "acknowledgement ACK-TEST-1 answers MAN-TEST-1" in why


def test_acknowledgement_listed_before_its_document(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        v["documents"].insert(0, v["documents"].pop(1))

    fails(edit(ex.transcript(), change), keyring, "unknown_document")


def test_acknowledgements_reordered(ex: Exchange, keyring: Keyring) -> None:
    def change(v: dict[str, Any]) -> None:
        d = v["documents"]
        d[1], d[2] = d[2], d[1]

    fails(edit(ex.transcript(), change), keyring, "ack_order")


def test_document_listed_twice(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v["documents"].insert(1, v["documents"][0])),
          keyring, "duplicate_document")


def test_acknowledgement_signed_by_an_unpinned_key(ex: Exchange, alpha: PrivateIdentity,
                                                  mallory: PrivateIdentity) -> None:
    """Verified with alpha's and mallory's keys only: beta's signatures name no given key."""
    fails(ex.transcript(), Keyring.of([alpha.public, mallory.public]), "unknown_key")


def test_document_to_a_third_party(ex: Exchange, keyring: Keyring,
                                   alpha: PrivateIdentity) -> None:
    other = documents.sign_document(alpha, doc_type="roster", doc_id="ROS-TEST-9",
                                    recipient="gamma", created=T0, meta={},
                                    items=[Item(id="X-1", data={})], salt_key=bytes(32))

    def change(v: dict[str, Any]) -> None:
        v["documents"].append(other.to_map())

    fails(edit(ex.transcript(), change), keyring, "wrong_party")


def test_key_revoked_before_it_signed(ex: Exchange, alpha: PrivateIdentity,
                                      beta: PrivateIdentity) -> None:
    keys = Keyring.of([alpha.public, beta.public], {beta.key_id: T0 + 1})
    why = fails(ex.transcript(), keys, "revoked_key")
    assert "ACK-TEST-1" in why


# ---------------------------------------------------------------- attacks on the file


def test_truncated_transcript(ex: Exchange, keyring: Keyring) -> None:
    data = ex.transcript()
    fails(data[: len(data) // 2], keyring, "truncated")


def test_non_canonical_encoding(ex: Exchange, keyring: Keyring) -> None:
    data = ex.transcript()
    assert data.endswith(b"\xa1v\x01")  # "v": 1, the last key of the map, as fixint
    fails(data[:-3] + b"\xa1v\xcc\x01", keyring, "not_canonical")


def test_unsupported_version(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v.update(v=2)), keyring, "bad_transcript")


def test_links_in_the_wrong_order(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v["links"].reverse()), keyring, "bad_transcript")


def test_not_bytes_is_a_result_not_an_exception(keyring: Keyring) -> None:
    result = check_transcript("text", keyring)  # type: ignore[arg-type]
    assert not result.ok and result.reason == "bad_transcript"

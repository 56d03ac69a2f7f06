"""Transcripts (bridge/core/transcript/, PROTOCOL.md §11.4–11.5), without daemons: a synthetic
exchange is signed, chunked, sealed and receipted exactly as two bridges would, then checked;
each attack is named after what it tries and must fail with its reason code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from forgeries import envelope_forgeries

from bridge.core import answers as transport
from bridge.core import chunks, codec, documents, envelope, merkle
from bridge.core.crypto import identity
from bridge.core.crypto.identity import TAG_DOCUMENT, Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item, SignedDocument
from bridge.core.errors import StoreError
from bridge.core.receipts.witnessed import with_witnessed
from bridge.core.transcript import (
    TRANSCRIPT_LIMITS,
    StreamedDocument,
    TranscriptDocument,
    TranscriptEnvelope,
    build_transcript,
    check_transcript,
    is_transcript,
    stream_transcript,
    verify_transcript,
)
from bridge.store.sqlite import audit_db
from bridge.store.sqlite.store import Store

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
            whole = TranscriptEnvelope.from_wire(env.data, receipt=receipt, doc=doc.digest,
                                                 first=chunk.first, n=len(chunk.entries))
            # As an exporter lists them: its own envelopes whole, the peer's without the
            # ciphertext (its inbox keeps the header, signature and ciphertext hash).
            self.envelopes.append(whole if self.sender.party == "alpha"
                                  else dataclasses.replace(whole, ct=None))


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
        "2026-03-02T15:02:00.010Z; 4 envelopes without ciphertext (header bound by its "
        "sender's signature only)")
    assert result.envelopes == (3, 4) and result.undelivered == () and result.unaccounted == ()
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


def _streamed(ex: Exchange, *, entries: bool, witnessed: list[dict[str, Any]] | None = None,
              short: bool = False) -> bytes:
    """``ex.transcript`` made by ``stream_transcript``, entries read as their turn comes;
    ``short``: the last document's entries one short of its count."""
    def reader(leaves: list[bytes]) -> Callable[[], Any]:
        return lambda: iter(leaves[:-1] if short and leaves is ex.docs[-1].leaves else leaves)
    docs = [StreamedDocument(signed=d.signed, entries=reader(d.leaves) if entries else None)
            for d in ex.docs]
    return b"".join(stream_transcript(
        parties=("alpha", "beta"), exported_at=T0 + 10_000_000, documents=docs,
        outbound=(len(ex.out.envelopes), iter(ex.out.envelopes)), inbound=ex.back.envelopes,
        witnessed=witnessed))


@pytest.mark.parametrize("entries", [True, False], ids=["with-entries", "headers-only"])
def test_a_streamed_transcript_is_the_built_one_byte_for_byte(ex: Exchange,
                                                              entries: bool) -> None:
    assert _streamed(ex, entries=entries) == ex.transcript(entries=entries)
    witnessed = [{"doc": bytes(32), "checkpoint": "a checkpoint", "log": [b"x"]}]
    assert _streamed(ex, entries=entries, witnessed=witnessed) == with_witnessed(
        ex.transcript(entries=entries), witnessed, TRANSCRIPT_LIMITS)


def test_a_streamed_transcript_whose_entries_fall_short_of_the_count_stops(
        ex: Exchange) -> None:
    with pytest.raises(StoreError, match="not the 1 announced"):
        _streamed(ex, entries=True, short=True)


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
    def change(link: int) -> Callable[[dict[str, Any]], None]:
        def at(v: dict[str, Any]) -> None:
            v["links"][link]["envelopes"][-1]["hash"] = bytes(32)
        return at

    # With the ciphertext the hash is recomputed; without it, the receipt still names it.
    fails(edit(ex.transcript(), change(0)), keyring, "hash_mismatch")
    fails(edit(ex.transcript(), change(1)), keyring, "receipt_mismatch")


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


def test_transcript_signed_before_a_later_revocation_says_it_proves_only_so_much(
        ex: Exchange, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    # alpha's key is revoked after everything in the transcript was signed: it verifies, but
    # its documents are dated only by the revoked key's claim (PROTOCOL.md §4.5).
    keys = Keyring.of([alpha.public, beta.public], {alpha.key_id: 2**50})
    result = check_transcript(ex.transcript(), keys)
    assert result.ok and len(result.caveats) == 1
    assert "alpha's key" in result.caveats[0] and "CAUTION" in result.summary()
    assert check_transcript(ex.transcript(), Keyring.of([alpha.public, beta.public])).caveats == ()


# ---------------------------------------------------------------- attacks on the file


def test_truncated_transcript(ex: Exchange, keyring: Keyring) -> None:
    data = ex.transcript()
    fails(data[: len(data) // 2], keyring, "truncated")


def test_non_canonical_encoding(ex: Exchange, keyring: Keyring) -> None:
    data = ex.transcript()
    assert data.endswith(b"\xa1v\x02")  # "v": 2, the last key of the map, as fixint
    fails(data[:-3] + b"\xa1v\xcc\x02", keyring, "not_canonical")


def test_unsupported_version(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v.update(v=3)), keyring, "bad_transcript")


def test_version_1_transcript_whose_headers_nothing_binds_is_refused(
        ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v.update(v=1)), keyring, "bad_transcript")


def test_links_in_the_wrong_order(ex: Exchange, keyring: Keyring) -> None:
    fails(edit(ex.transcript(), lambda v: v["links"].reverse()), keyring, "bad_transcript")


def test_not_bytes_is_a_result_not_an_exception(keyring: Keyring) -> None:
    result = check_transcript("text", keyring)  # type: ignore[arg-type]
    assert not result.ok and result.reason == "bad_transcript"


# ---------------------------------------------------------------- what binds each envelope


def test_forged_envelope_header_fields_never_verify(ex: Exchange, keyring: Keyring) -> None:
    """Finding: kind, at, from_key or to_key of an envelope could be changed in a transcript
    and it still verified (nothing bound the header). Now each header field of each envelope
    changed, re-signed by the exporter where it could, fails."""
    forgeries = envelope_forgeries(ex.transcript(), keyring, {"alpha": ex.alpha})
    passed = [name for name, data in forgeries if check_transcript(data, keyring).ok]
    assert len(forgeries) > 150
    assert passed == []


def test_exporter_re_signing_its_own_envelope_header_breaks_the_envelope_hash(
        ex: Exchange, keyring: Keyring) -> None:
    """The exporter holds its own key: a re-signed header verifies as its word, but the
    ciphertext it must include no longer gives the hash that the peer's receipt names."""
    def later(v: dict[str, Any]) -> None:
        env = v["links"][0]["envelopes"][0]
        header = codec.decode(env["header"], codec.SMALL_LIMITS)
        env["header"] = codec.encode({**header, "at": header["at"] + 365 * 24 * 3600 * 1000})
        env["sig"] = ex.alpha.sign(identity.TAG_ENVELOPE,
                                   envelope.signed_body(env["header"], env["ct_hash"]))

    fails(edit(ex.transcript(), later), keyring, "hash_mismatch")


def test_envelope_signature_or_ciphertext_swapped(ex: Exchange, keyring: Keyring) -> None:
    def swap(key: str) -> Callable[[dict[str, Any]], None]:
        def change(v: dict[str, Any]) -> None:
            envs = v["links"][0]["envelopes"]
            envs[0][key], envs[1][key] = envs[1][key], envs[0][key]
        return change

    fails(edit(ex.transcript(), swap("sig")), keyring, "bad_signature")
    fails(edit(ex.transcript(), swap("ct_hash")), keyring, "bad_signature")
    fails(edit(ex.transcript(), swap("ct")), keyring, "ciphertext_mismatch")


def test_signed_time_range_comes_from_signed_bytes_only(ex: Exchange, keyring: Keyring) -> None:
    """The reported range is that of the documents, headers and receipts as signed: moving an
    envelope's ``at`` a year on is refused rather than reported."""
    def later(v: dict[str, Any]) -> None:
        env = v["links"][1]["envelopes"][-1]
        header = codec.decode(env["header"], codec.SMALL_LIMITS)
        env["header"] = codec.encode({**header, "at": header["at"] + 365 * 24 * 3600 * 1000})

    fails(edit(ex.transcript(), later), keyring, "bad_signature")


# ---------------------------------------------------------------- what each envelope carried


def test_acknowledgement_omitted_from_the_middle_is_said(ex: Exchange,
                                                         keyring: Keyring) -> None:
    """Finding: dropping the later DISPUTED acknowledgement and setting its envelope's
    ``carries`` to nil verified as "1 acknowledgement" with no note. The envelope's signed
    kind says it carried a chunk: the result says which envelope's content is left out."""
    def omit(v: dict[str, Any]) -> None:
        del v["documents"][2]
        v["links"][1]["envelopes"][3]["carries"] = None

    result = verify_transcript(edit(ex.transcript(), omit), keyring)
    assert result.acks == 1
    assert result.unaccounted == ("envelope 4 beta→alpha",)
    assert "content not accounted for: envelope 4 beta→alpha" in result.summary()
    assert result.to_json()["unaccounted"] == ["envelope 4 beta→alpha"]


def test_acknowledgement_hidden_by_recutting_another_into_more_chunks_fails(
        ex: Exchange, keyring: Keyring) -> None:
    """The omission disguised instead of said: the DISPUTED acknowledgement dropped, and the
    first acknowledgement (5 entries in chunks of 2, 2, 1) claimed as 2, 1, 1, 1 so that its
    envelope seems accounted for. Chunks are aligned runs of one size (§8.1): refused."""
    def recut(v: dict[str, Any]) -> None:
        del v["documents"][2]
        envs = v["links"][1]["envelopes"]
        ack1 = envs[0]["carries"]["doc"]
        for env, (first, n) in zip(envs, [(0, 2), (2, 1), (3, 1), (4, 1)], strict=True):
            env["carries"] = {"doc": ack1, "first": first, "n": n}

    fails(edit(ex.transcript(), recut), keyring, "bad_chunk")


def test_chunk_envelope_disguised_as_a_key_statement_fails(ex: Exchange,
                                                           keyring: Keyring) -> None:
    def disguise(v: dict[str, Any]) -> None:
        del v["documents"][2]
        env = v["links"][1]["envelopes"][3]
        env["carries"] = None
        header = codec.decode(env["header"], codec.SMALL_LIMITS)
        env["header"] = codec.encode({**header, "kind": "key-rotation"})

    fails(edit(ex.transcript(), disguise), keyring, "bad_signature")


def test_key_statement_envelope_claiming_a_chunk_fails(alpha: PrivateIdentity,
                                                       beta: PrivateIdentity,
                                                       keyring: Keyring) -> None:
    env = envelope.seal(alpha, beta.public, message_id=bytes(16), seq=1, prev=bytes(32),
                        sent_at=T0, kind="key-rotation", payload=b"statement")
    receipt = transport.sign_answer(beta, transport.TransportAnswer(
        sender="alpha", recipient="beta", by_key=beta.key_id, envelope=env.digest,
        message_id=bytes(16), seq=1, at=T0 + 1, result="accepted", reason=None))
    listed = TranscriptEnvelope.from_wire(env.data, receipt=receipt)
    plain = build_transcript(parties=("alpha", "beta"), exported_at=T0, documents=[],
                             outbound=[listed], inbound=[])
    assert verify_transcript(plain, keyring).unaccounted == ()
    claims = build_transcript(parties=("alpha", "beta"), exported_at=T0, documents=[],
                              outbound=[dataclasses.replace(listed, doc=bytes(32), first=0,
                                                            n=1)], inbound=[])
    fails(claims, keyring, "bad_transcript")


def test_refused_envelope_counts_towards_first(ex: Exchange, alpha: PrivateIdentity,
                                               beta: PrivateIdentity,
                                               keyring: Keyring) -> None:
    """PROTOCOL.md §11.5 step 5.10: the chunks of a refused envelope count towards ``first``
    (the sender sent every chunk in order); only accepted ones count as delivered."""
    manifest = ex.docs[0]
    link = Link(alpha, beta)
    pieces = chunks.split(manifest, CHUNK)
    link.send(manifest, T0, result="refused")
    assert len(link.envelopes) == len(pieces) == 3

    def transcript(envs: list[TranscriptEnvelope]) -> bytes:
        return build_transcript(parties=("alpha", "beta"), exported_at=T0,
                                documents=[TranscriptDocument(signed=manifest.signed,
                                                              entries=manifest.leaves)],
                                outbound=envs, inbound=[])

    result = verify_transcript(transcript(link.envelopes), keyring)
    assert result.refused == 3 and result.undelivered == ("MAN-TEST-1",)
    # Counting only accepted envelopes would make the second start again at 0: refused.
    restart = [link.envelopes[0], *(dataclasses.replace(e, first=e.first - CHUNK)
                                    for e in link.envelopes[1:2] if e.first is not None)]
    fails(transcript(restart), keyring, "bad_chunk")


def test_malformed_doc_is_the_transcripts_fault_bad_header_bytes_the_headers(
        ex: Exchange, keyring: Keyring) -> None:
    """PROTOCOL.md §11.5 steps 3.1 and 3.2: a ``doc`` that is not {header: bin, sig: bin} is
    ``bad_transcript``; header bytes that are not a document header are ``bad_header``."""
    fails(edit(ex.transcript(), lambda v: v["documents"][0].update(doc=5)), keyring,
          "bad_transcript")
    fails(edit(ex.transcript(), lambda v: v["documents"][0]["doc"].update(extra=b"")), keyring,
          "bad_transcript")
    fails(edit(ex.transcript(), lambda v: v["documents"][0]["doc"].update(header=b"\x90")),
          keyring, "bad_header")


def test_acknowledgement_entries_stripped_says_which_are_not_checked(
        ex: Exchange, keyring: Keyring) -> None:
    """Stripping the entries of the first acknowledgement leaves the second unchecked against
    the manifest item by item (§11.5 step 4): both are named, not only counted."""
    result = verify_transcript(edit(ex.transcript(),
                                    lambda v: v["documents"][1].update(entries=None)), keyring)
    assert result.without_entries_ids == ("ACK-TEST-1",)
    assert result.unchecked == ("ACK-TEST-2",)
    assert ("entries of 1 document not included (headers only): ACK-TEST-1; acknowledgements "
            "not checked item by item (entries of their document or of an earlier "
            "acknowledgement not included): ACK-TEST-2") in result.summary()


# ---------------------------------------------------------------- a store of release 0.1.0


def test_store_of_release_0_1_0_exports_what_it_can_bind_and_says_what_it_cannot(
        tmp_path: Path) -> None:
    """Bridge 0.1.0 kept neither the peer's envelope signatures nor the ciphertext hashes:
    once migrated, its export leaves the peer's envelopes out (and counts them), and lists its
    own whole, each hash recomputed from the envelope kept in the outbox."""
    path = tmp_path / "bridge.db"
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "fixtures" / "store-0.1.0-beta.sql").read_text())
    con.close()
    Store(path).close()  # migrated on opening, as on the daemon's first start
    conn = audit_db.connect(path)
    with contextlib.closing(conn), audit_db.snapshot(conn):
        inbox = conn.execute("SELECT COUNT(*) FROM inbox WHERE peer='alpha'").fetchone()[0]
        parts = audit_db.transcript_parts(conn, "alpha", with_entries=True)
    assert inbox > 0 and (parts.unbound, parts.inbound) == (inbox, [])
    assert parts.outbound and all(e.ct is not None for e in parts.outbound)

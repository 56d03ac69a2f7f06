"""Receipt bundles built from freshly signed documents: what they prove, and every way they fail.

Each failure test is named after the attack it tries; each checks that ``check_receipt`` says
ok=False with the stable reason code, and that ``verify_receipt`` raises with the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core import codec, entries, merkle
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    TAG_ENVELOPE,
    TAG_IDENTITY,
    TAG_TRANSPORT_RECEIPT,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
)
from bridge.core.documents import (
    ACK,
    AckItem,
    DocumentHeader,
    Item,
    SignedDocument,
    SignedHeader,
    decode_ack_entry,
    decode_declared_entry,
    encode_ack_entry,
    leaf_salts,
    sign_ack,
    sign_document,
)
from bridge.core.errors import InputError, VerificationError
from bridge.core.receipts import (
    ReceiptResult,
    build_document_receipt,
    build_item_receipt,
    build_item_receipts,
    check_receipt,
    iso_time,
    verify_receipt,
)
from bridge.core.receipts.steps import _document_signature_holds

T0 = 1_772_438_400_000  # 2026-03-02T08:00:00Z
HOUR = 3_600_000


def _salt(name: str) -> bytes:
    return hashlib.sha256(b"test-salt/" + name.encode()).digest()


def _items(n: int) -> list[Item]:
    return [Item(id=f"P-{k:04d}", data={"surname": f"Samplename-{k:04d}",
                                       "first_names": "Synthetic", "category": "pow",
                                       "date_of_birth": f"1999-01-{k % 28 + 1:02d}"})
            for k in range(n)]


def _hashes(doc: SignedDocument) -> dict[str, bytes]:
    return {e.item_id: merkle.leaf_hash(doc.leaves[e.index]) for e in doc.declared_entries()}


@dataclass(frozen=True, kw_only=True)
class Exchange:
    alpha: PrivateIdentity
    beta: PrivateIdentity
    mallory: PrivateIdentity
    doc: SignedDocument
    acks: list[SignedDocument]
    keys: Keyring


def _sign_ack(signer: PrivateIdentity, doc: SignedDocument, ack_id: str, created: int,
              items: list[AckItem]) -> SignedDocument:
    return sign_ack(signer, answers=doc.signed, ack_id=ack_id, created=created, items=items,
                    declared_leaf_hashes=_hashes(doc), salt_key=_salt(ack_id))


@pytest.fixture(scope="module")
def ex(request: pytest.FixtureRequest) -> Exchange:
    alpha: PrivateIdentity = request.getfixturevalue("alpha")
    beta: PrivateIdentity = request.getfixturevalue("beta")
    mallory: PrivateIdentity = request.getfixturevalue("mallory")
    doc = sign_document(alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                        created=T0, meta={"batch": 7, "agreement": "AGR-1"}, items=_items(6),
                        salt_key=_salt("M-1"))
    a1 = _sign_ack(beta, doc, "A-1", T0 + HOUR, [
        AckItem(id="P-0000", status="RECEIVED"),
        AckItem(id="P-0001", status="RECEIVED"),
        AckItem(id="P-0002", status="NOT_RECEIVED", reason="not at the handover point"),
        AckItem(id="P-0003", status="RECEIVED"),
        AckItem(id="X-0099", status="RECEIVED_UNDECLARED", reason="not on the manifest"),
    ])
    a2 = _sign_ack(beta, doc, "A-2", T0 + 2 * HOUR, [
        AckItem(id="P-0001", status="PENDING_IDENTIFICATION", evidence="SMP-1"),
        AckItem(id="P-0003", status="DISPUTED", reason="birth date differs"),
    ])
    a3 = _sign_ack(beta, doc, "A-3", T0 + 3 * HOUR, [
        AckItem(id="P-0001", status="IDENTITY_CONFIRMED", evidence="MR-1"),
    ])
    return Exchange(alpha=alpha, beta=beta, mallory=mallory, doc=doc, acks=[a1, a2, a3],
                    keys=Keyring.of([alpha.public, beta.public]))


def _item(ex: Exchange, item_id: str = "P-0001") -> dict[str, Any]:
    value = codec.decode(build_item_receipt(ex.doc, item_id, ex.acks))
    assert isinstance(value, dict)
    return value


def _document(ex: Exchange) -> dict[str, Any]:
    value = codec.decode(build_document_receipt(ex.doc, ex.acks))
    assert isinstance(value, dict)
    return value


def _sign_header(signer: PrivateIdentity, header: DocumentHeader, *,
                 tag: bytes = TAG_DOCUMENT) -> dict[str, bytes]:
    data = codec.encode(header.to_map())
    return {"header": data, "sig": signer.sign(tag, data)}


def _header(signed: SignedHeader, **changes: Any) -> DocumentHeader:
    fields = {k: getattr(signed.header, k) for k in
              ("type", "id", "issuer", "issuer_key", "recipient", "created", "count", "root",
               "meta", "answers", "answers_id")}
    fields.update(changes)
    return DocumentHeader(**fields)


def _raw_ack(signer: PrivateIdentity, doc: SignedDocument, ack_id: str, created: int,
             entries: list[tuple[AckItem, bytes | None]]) -> SignedDocument:
    """An acknowledgement without sign_ack's safety checks: the leaf is chosen freely."""
    salts = leaf_salts(_salt(ack_id), len(entries))
    leaves = tuple(encode_ack_entry(n, salts[n], item, leaf)
                   for n, (item, leaf) in enumerate(entries))
    tree = merkle.MerkleTree.from_leaves(leaves)
    header = DocumentHeader(type=ACK, id=ack_id, issuer=signer.party, issuer_key=signer.key_id,
                            recipient=doc.header.issuer, created=created, count=len(leaves),
                            root=tree.root, meta={}, answers=doc.digest,
                            answers_id=doc.header.id)
    data = codec.encode(header.to_map())
    signed = SignedHeader(header=header, data=data, signature=signer.sign(TAG_DOCUMENT, data))
    return SignedDocument(signed=signed, leaves=leaves)


def _block(ack: SignedDocument, item_id: str) -> dict[str, Any]:
    i = next(e.index for e in ack.ack_entries() if e.item_id == item_id)
    return {"ack": {"header": ack.signed.data, "sig": ack.signed.signature},
            "entry": ack.leaves[i], "proof": ack.proof(i)}


def _fails(data: bytes, keys: Keyring, reason: str) -> ReceiptResult:
    result = check_receipt(data, keys)
    assert not result.ok, result.summary()
    assert result.reason == reason, result.diagnosis
    assert result.checks and not result.checks[-1].passed
    assert all(c.passed for c in result.checks[:-1])
    with pytest.raises(VerificationError) as info:
        verify_receipt(data, keys)
    assert info.value.reason == reason
    assert str(info.value) == result.diagnosis
    return result


# ---------------------------------------------------------------- what a valid receipt says


def test_item_receipt_reports_declaration_acknowledgement_and_history(ex: Exchange) -> None:
    result = verify_receipt(build_item_receipt(ex.doc, "P-0001", ex.acks), ex.keys)
    assert result.ok and result.kind == "item" and result.reason is None
    assert (result.item_id, result.doc_type, result.doc_id, result.batch) == (
        "P-0001", "manifest", "M-1", "7")
    assert result.declared_by is not None and result.declared_by.party == "alpha"
    assert result.declared_by.fingerprint == ex.alpha.public.fingerprint
    assert result.acknowledged_by is not None and result.acknowledged_by.party == "beta"
    assert result.status == "IDENTITY_CONFIRMED" and result.evidence == "MR-1"
    assert result.time == "2026-03-02T11:00:00.000Z"
    assert [c.status for c in result.history] == [
        "RECEIVED", "PENDING_IDENTIFICATION", "IDENTITY_CONFIRMED"]
    assert [c.ack_id for c in result.history] == ["A-1", "A-2", "A-3"]
    assert [c.number for c in result.checks] == list(range(1, len(result.checks) + 1))
    assert all(c.passed for c in result.checks)
    line = result.summary()
    assert "P-0001" in line and "alpha" in line and "IDENTITY_CONFIRMED" in line
    assert "RECEIVED → PENDING_IDENTIFICATION → IDENTITY_CONFIRMED" in line


def test_item_receipt_with_a_reason(ex: Exchange) -> None:
    result = verify_receipt(build_item_receipt(ex.doc, "P-0003", ex.acks), ex.keys)
    assert (result.status, result.status_reason) == ("DISPUTED", "birth date differs")
    assert "birth date differs" in result.summary()


def test_item_receipt_only_carries_acks_that_name_the_item(ex: Exchange) -> None:
    result = verify_receipt(build_item_receipt(ex.doc, "P-0002", ex.acks), ex.keys)
    assert [c.ack_id for c in result.history] == ["A-1"]
    assert result.status == "NOT_RECEIVED"


def test_acks_are_put_in_chronological_order_by_the_builder(ex: Exchange) -> None:
    shuffled = [ex.acks[2], ex.acks[0], ex.acks[1]]
    assert (build_item_receipt(ex.doc, "P-0001", shuffled)
            == build_item_receipt(ex.doc, "P-0001", ex.acks))


def test_document_receipt_reports_final_statuses(ex: Exchange) -> None:
    result = verify_receipt(build_document_receipt(ex.doc, ex.acks), ex.keys)
    assert result.ok and result.kind == "document"
    assert (result.item_count, result.ack_count, result.unacknowledged, result.undeclared) == (
        6, 3, 2, 1)
    assert dict(result.counts) == {"RECEIVED": 1, "IDENTITY_CONFIRMED": 1, "NOT_RECEIVED": 1,
                                   "DISPUTED": 1, "RECEIVED_UNDECLARED": 1}
    assert dict(result.statuses) == {"P-0000": "RECEIVED", "P-0001": "IDENTITY_CONFIRMED",
                                     "P-0002": "NOT_RECEIVED", "P-0003": "DISPUTED",
                                     "X-0099": "RECEIVED_UNDECLARED"}
    assert result.time == iso_time(T0 + 3 * HOUR)
    assert "2 unacknowledged" in result.summary()
    # One signature check per header, not per item.
    assert sum("signature" in c.name for c in result.checks) == 4


def test_bulk_builder_matches_the_single_builder(ex: Exchange) -> None:
    every = build_item_receipts(ex.doc, ex.acks)
    assert set(every) == {"P-0000", "P-0001", "P-0002", "P-0003"}
    for item_id, data in every.items():
        assert data == build_item_receipt(ex.doc, item_id, ex.acks)


def test_per_item_receipt_discloses_no_other_item(ex: Exchange) -> None:
    data = build_item_receipt(ex.doc, "P-0001", ex.acks)
    for entry in ex.doc.declared_entries():
        if entry.item_id != "P-0001":
            assert entry.item_id.encode() not in data
            assert entry.salt not in data
            assert str(entry.data["surname"]).encode() not in data
    for ack in ex.acks:
        for e in ack.ack_entries():
            if e.item_id != "P-0001":
                assert e.item_id.encode() not in data
                assert e.salt not in data


def test_to_json_is_plain_data(ex: Exchange) -> None:
    import json

    for data in (build_item_receipt(ex.doc, "P-0001", ex.acks),
                 build_document_receipt(ex.doc, ex.acks)):
        out = json.loads(json.dumps(check_receipt(data, ex.keys).to_json()))
        assert out["ok"] is True and out["declared_by"]["party"] == "alpha"


def test_iso_time() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(T0 + 1234) == "2026-03-02T08:00:01.234Z"
    # A signed far-future time still prints, in ISO 8601's expanded-year form.
    assert iso_time(2**64 - 1) == "+584556019-04-03T14:25:51.615Z"


def test_signer_text_cannot_forge_output_lines(ex: Exchange) -> None:
    """A reason is the signer's free text: it must not add lines or terminal controls."""
    evil = _sign_ack(ex.beta, ex.doc, "A-9", T0 + 9 * HOUR, [
        AckItem(id="P-0000", status="DISPUTED", reason="x\nOK: forged.receipt: \x1b[2Jall fine")])
    line = verify_receipt(build_item_receipt(ex.doc, "P-0000", [*ex.acks, evil]),
                          ex.keys).summary()
    assert "\n" not in line and "\x1b" not in line
    assert "\\n" in line and "\\x1b" in line


# ---------------------------------------------------------------- builders refuse


def test_builder_refuses_unknown_item(ex: Exchange) -> None:
    with pytest.raises(InputError):
        build_item_receipt(ex.doc, "P-9999", ex.acks)


def test_builder_refuses_unacknowledged_item(ex: Exchange) -> None:
    with pytest.raises(InputError):
        build_item_receipt(ex.doc, "P-0005", ex.acks)


def test_builder_refuses_ack_of_another_document(ex: Exchange) -> None:
    other = sign_document(ex.alpha, doc_type="roster", doc_id="R-2", recipient="beta",
                          created=T0, meta={}, items=_items(2), salt_key=_salt("R-2"))
    with pytest.raises(InputError):
        build_item_receipt(other, "P-0001", ex.acks)
    with pytest.raises(InputError):
        build_document_receipt(other, ex.acks)


def test_builder_refuses_acks_with_the_same_time(ex: Exchange) -> None:
    twin = _sign_ack(ex.beta, ex.doc, "A-1b", ex.acks[0].header.created,
                     [AckItem(id="P-0000", status="DISPUTED")])
    with pytest.raises(InputError):
        build_item_receipt(ex.doc, "P-0000", [*ex.acks, twin])


def test_acks_of_other_items_at_the_same_time_do_not_block_an_item_receipt(
        ex: Exchange) -> None:
    twin = _sign_ack(ex.beta, ex.doc, "A-1c", ex.acks[0].header.created,
                     [AckItem(id="P-0005", status="RECEIVED")])
    assert verify_receipt(build_item_receipt(ex.doc, "P-0001", [*ex.acks, twin]), ex.keys).ok
    assert set(build_item_receipts(ex.doc, [*ex.acks, twin])) >= {"P-0001", "P-0005"}
    with pytest.raises(InputError):  # the whole document needs a strict order of all acks
        build_document_receipt(ex.doc, [*ex.acks, twin])


def test_builder_refuses_no_acks(ex: Exchange) -> None:
    with pytest.raises(InputError):
        build_document_receipt(ex.doc, [])


# ---------------------------------------------------------------- per-item attacks

Mutation = Callable[[Exchange, dict[str, Any]], object]


def _set(path: list[Any], value: Any) -> Mutation:
    def mutate(ex: Exchange, b: dict[str, Any]) -> None:
        target: Any = b
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(ex, b) if callable(value) else value
    return mutate


def _flip_entry(ex: Exchange, b: dict[str, Any]) -> None:
    b["entry"] = b["entry"].replace(b"Samplename-0001", b"Samplename-0002")


def _non_canonical_entry(ex: Exchange, b: dict[str, Any]) -> None:
    # Same value, keys out of order: must be refused even before the hash is compared.
    value = codec.decode(b["entry"])
    b["entry"] = msgpack.packb(dict(reversed(list(value.items()))), use_bin_type=True)


def _count_inflated(ex: Exchange, b: dict[str, Any]) -> None:
    # 16 leaves need a path of 4 hashes where 6 leaves need 3: RFC 9162 §2.1.3.2 rejects it.
    b["document"] = _sign_header(ex.alpha, _header(ex.doc.signed, count=16))


def _issuer_impersonated(ex: Exchange, b: dict[str, Any]) -> None:
    b["document"] = _sign_header(ex.beta, _header(ex.doc.signed, issuer_key=ex.beta.key_id))


def _mallory_ack(ex: Exchange, b: dict[str, Any]) -> None:
    forged = _header(ex.acks[1].signed, issuer_key=ex.mallory.key_id)
    b["acks"][1]["ack"] = _sign_header(ex.mallory, forged)


def _ack_signed_under(tag: bytes) -> Mutation:
    def mutate(ex: Exchange, b: dict[str, Any]) -> None:
        b["acks"][0]["ack"]["sig"] = ex.beta.sign(tag, ex.acks[0].signed.data)
    return mutate


def _document_signed_under_envelope_tag(ex: Exchange, b: dict[str, Any]) -> None:
    b["document"]["sig"] = ex.alpha.sign(TAG_ENVELOPE, ex.doc.signed.data)


def _ack_of_other_document(ex: Exchange, b: dict[str, Any]) -> None:
    # Same id and items, signed again: only the document hash tells them apart.
    again = sign_document(ex.alpha, doc_type="manifest", doc_id="M-1", recipient="beta",
                          created=T0 + 1, meta={"batch": 7, "agreement": "AGR-1"},
                          items=_items(6), salt_key=_salt("M-1 again"))
    b["acks"][0] = _block(_sign_ack(ex.beta, again, "A-X", T0 + HOUR,
                                    [AckItem(id="P-0001", status="RECEIVED")]), "P-0001")


def _self_ack(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"][0] = _block(_sign_ack(ex.alpha, ex.doc, "A-S", T0 + HOUR,
                                    [AckItem(id="P-0001", status="RECEIVED")]), "P-0001")


def _ack_to_third_party(ex: Exchange, b: dict[str, Any]) -> None:
    ack = _raw_ack(ex.beta, ex.doc, "A-T", T0 + HOUR,
                   [(AckItem(id="P-0001", status="RECEIVED"), _hashes(ex.doc)["P-0001"])])
    b["acks"][0] = {**_block(ack, "P-0001"),
                    "ack": _sign_header(ex.beta, _header(ack.signed, recipient="mallory"))}


def _ack_entry_of_other_item(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"][0] = _block(ex.acks[0], "P-0000")


def _ack_binds_other_leaf(ex: Exchange, b: dict[str, Any]) -> None:
    ack = _raw_ack(ex.beta, ex.doc, "A-L", T0 + HOUR,
                   [(AckItem(id="P-0001", status="RECEIVED"), _hashes(ex.doc)["P-0000"])])
    b["acks"][0] = _block(ack, "P-0001")


def _undeclared_in_item_receipt(ex: Exchange, b: dict[str, Any]) -> None:
    ack = _raw_ack(ex.beta, ex.doc, "A-U", T0 + HOUR,
                   [(AckItem(id="P-0001", status="RECEIVED_UNDECLARED"), None)])
    b["acks"][0] = _block(ack, "P-0001")


def _received_undeclared_with_leaf(ex: Exchange, b: dict[str, Any]) -> None:
    ack = _raw_ack(ex.beta, ex.doc, "A-W", T0 + HOUR,
                   [(AckItem(id="P-0001", status="RECEIVED_UNDECLARED"),
                     _hashes(ex.doc)["P-0001"])])
    b["acks"][0] = _block(ack, "P-0001")


def _status_rewritten(ex: Exchange, b: dict[str, Any]) -> None:
    # Still a well-formed, canonical ack entry; only its leaf hash gives it away.
    b["acks"][1]["entry"] = codec.encode(
        {**codec.decode(b["acks"][1]["entry"]), "status": "IDENTITY_CONFIRMED"})


def _swap_ack_headers(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"][0]["ack"], b["acks"][1]["ack"] = b["acks"][1]["ack"], b["acks"][0]["ack"]


def _reorder_acks(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"] = [b["acks"][1], b["acks"][0], b["acks"][2]]


def _repeat_ack(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"] = [b["acks"][0], b["acks"][0]]


def _ack_as_document(ex: Exchange, b: dict[str, Any]) -> None:
    b["document"] = b["acks"][0]["ack"]


def _document_as_ack(ex: Exchange, b: dict[str, Any]) -> None:
    b["acks"][0]["ack"] = b["document"]


def _header_garbage(ex: Exchange, b: dict[str, Any]) -> None:
    b["document"]["header"] = b"\x81\xa1v\x01"


ITEM_ATTACKS: dict[str, tuple[Mutation, str]] = {
    "unsupported_version": (_set(["v"], 2), "bad_bundle"),
    "true_as_version": (_set(["v"], True), "bad_bundle"),
    "unknown_bundle_type": (_set(["type"], "bridge.receipt.other"), "bad_bundle"),
    "extra_field": (_set(["extra"], 1), "bad_bundle"),
    "no_acks": (_set(["acks"], []), "bad_bundle"),
    "proof_hash_of_wrong_length": (_set(["proof"], [b"\x00" * 31]), "bad_bundle"),
    "entry_as_str": (_set(["entry"], "text"), "bad_bundle"),
    "header_not_a_document_header": (_header_garbage, "bad_header"),
    "ack_as_document": (_ack_as_document, "wrong_type"),
    "document_as_ack": (_document_as_ack, "wrong_type"),
    "flipped_byte_in_entry": (_flip_entry, "bad_proof"),
    "non_canonical_entry": (_non_canonical_entry, "bad_entry"),
    "entry_not_msgpack": (_set(["entry"], b"\xc1"), "bad_entry"),
    "proof_for_another_item": (_set(["proof"], lambda ex, b: ex.doc.proof(0)), "bad_proof"),
    "reordered_proof": (_set(["proof"], lambda ex, b: b["proof"][::-1]), "bad_proof"),
    "truncated_proof": (_set(["proof"], lambda ex, b: b["proof"][:-1]), "bad_proof"),
    "extended_proof": (_set(["proof"], lambda ex, b: [*b["proof"], b["proof"][0]]),
                       "bad_proof"),
    "count_inflated": (_count_inflated, "bad_proof"),
    "document_header_tampered": (
        _set(["document", "header"], lambda ex, b: codec.encode(
            _header(ex.doc.signed, meta={"batch": 8, "agreement": "AGR-1"}).to_map())),
        "bad_signature"),
    "issuer_impersonated": (_issuer_impersonated, "wrong_issuer"),
    "document_signed_under_envelope_tag": (_document_signed_under_envelope_tag,
                                           "bad_signature"),
    "signed_by_unknown_key": (_mallory_ack, "unknown_key"),
    "envelope_signature_as_receipt_signature": (_ack_signed_under(TAG_ENVELOPE),
                                                "bad_signature"),
    "transport_receipt_signature_as_ack_signature": (_ack_signed_under(TAG_TRANSPORT_RECEIPT),
                                                     "bad_signature"),
    "identity_signature_as_ack_signature": (_ack_signed_under(TAG_IDENTITY), "bad_signature"),
    "ack_of_different_document": (_ack_of_other_document, "wrong_document"),
    "ack_by_wrong_party": (_self_ack, "wrong_party"),
    "ack_addressed_to_third_party": (_ack_to_third_party, "wrong_party"),
    "ack_entry_for_other_item": (_ack_entry_of_other_item, "wrong_item"),
    "ack_binds_other_entry": (_ack_binds_other_leaf, "wrong_leaf"),
    "undeclared_ack_in_item_receipt": (_undeclared_in_item_receipt, "undeclared"),
    "received_undeclared_with_a_leaf": (_received_undeclared_with_leaf, "bad_entry"),
    "status_changed_in_ack_entry": (_status_rewritten, "bad_proof"),
    "swapped_ack_root": (_swap_ack_headers, "bad_proof"),
    "acks_out_of_order": (_reorder_acks, "ack_order"),
    "same_ack_twice": (_repeat_ack, "ack_order"),
}


@pytest.mark.parametrize("attack", list(ITEM_ATTACKS))
def test_item_receipt_attack_fails(ex: Exchange, attack: str) -> None:
    mutate, reason = ITEM_ATTACKS[attack]
    bundle = _item(ex)
    mutate(ex, bundle)
    _fails(codec.encode(bundle), ex.keys, reason)


def test_unknown_keyring_fails_as_unknown_key(ex: Exchange) -> None:
    data = build_item_receipt(ex.doc, "P-0001", ex.acks)
    _fails(data, Keyring.of([ex.beta.public]), "unknown_key")
    _fails(data, Keyring.of([ex.alpha.public]), "unknown_key")


@pytest.mark.parametrize(("attack", "cut", "reason"), [
    ("truncated_bundle", lambda d: d[: len(d) // 2], "truncated"),
    ("empty_file", lambda d: b"", "truncated"),
    ("trailing_garbage", lambda d: d + b"\x00", "trailing"),
    ("non_canonical_encoding", lambda d: d[:-1] + b"\xcc\x01", "not_canonical"),
    ("float_in_bundle", lambda d: msgpack.packb(1.5), "float"),
    ("depth_bomb", lambda d: b"\x91" * 50 + b"\xc0", "too_deep"),
    ("not_a_map", lambda d: codec.encode([1, 2]), "bad_bundle"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bundle_bytes_attack_fails(ex: Exchange, attack: str, cut: Callable[[bytes], bytes],
                                   reason: str) -> None:
    _fails(cut(build_item_receipt(ex.doc, "P-0001", ex.acks)), ex.keys, reason)


def test_not_bytes_is_a_failure_not_a_crash(ex: Exchange) -> None:
    result = check_receipt("a string", ex.keys)  # type: ignore[arg-type]
    assert not result.ok and result.reason == "bad_bundle"


# ---------------------------------------------------------------- whole-document attacks


def _doc_set_entries(fn: Callable[[list[bytes]], object]) -> Mutation:
    def mutate(ex: Exchange, d: dict[str, Any]) -> None:
        fn(d["document"]["entries"])
    return mutate


def _swap01(e: list[bytes]) -> None:
    e[0], e[1] = e[1], e[0]


def _entry_as_str(ex: Exchange, d: dict[str, Any]) -> None:
    d["document"]["entries"][0] = "text"


def _append_ack(make: Callable[[Exchange], SignedDocument]) -> Mutation:
    def mutate(ex: Exchange, d: dict[str, Any]) -> None:
        d["acks"].append(make(ex).to_map())
    return mutate


def _doc_with_duplicate_ids(ex: Exchange, d: dict[str, Any]) -> None:
    # The sender signs a document with one id twice (sign_document refuses to): built by hand.
    salts = leaf_salts(_salt("dup"), 3)
    leaves = [codec.encode({"data": {}, "i": n, "id": "P-0000", "salt": salts[n]})
              for n in range(3)]
    tree = merkle.MerkleTree.from_leaves(leaves)
    header = _header(ex.doc.signed, count=3, root=tree.root)
    d["document"] = {"doc": _sign_header(ex.alpha, header), "entries": leaves}


def _ack_with_duplicate_ids(ex: Exchange) -> SignedDocument:
    h = _hashes(ex.doc)["P-0000"]
    return _raw_ack(ex.beta, ex.doc, "A-D", T0 + 5 * HOUR,
                    [(AckItem(id="P-0000", status="RECEIVED"), h),
                     (AckItem(id="P-0000", status="DISPUTED"), h)])


DOCUMENT_ATTACKS: dict[str, tuple[Mutation, str]] = {
    "missing_acks_field": (lambda ex, d: d.pop("acks"), "bad_bundle"),
    "entry_as_str": (_entry_as_str, "bad_bundle"),
    "document_entry_dropped": (_doc_set_entries(lambda e: e.pop()), "count_mismatch"),
    "document_entry_added": (_doc_set_entries(lambda e: e.append(e[0])), "count_mismatch"),
    "document_entries_swapped": (_doc_set_entries(_swap01), "root_mismatch"),
    "duplicate_declared_item": (_doc_with_duplicate_ids, "duplicate_item"),
    "ack_entry_dropped": (lambda ex, d: d["acks"][0]["entries"].pop(), "count_mismatch"),
    "ack_entries_swapped": (lambda ex, d: _swap01(d["acks"][0]["entries"]), "root_mismatch"),
    "ack_signed_by_unknown_key": (
        lambda ex, d: d["acks"][0]["doc"].update(_sign_header(
            ex.mallory, _header(ex.acks[0].signed, issuer_key=ex.mallory.key_id))),
        "unknown_key"),
    "duplicate_acknowledged_item": (_append_ack(_ack_with_duplicate_ids), "duplicate_item"),
    "undeclared_claim_for_declared_item": (
        _append_ack(lambda ex: _raw_ack(ex.beta, ex.doc, "A-N", T0 + 5 * HOUR, [
            (AckItem(id="P-0004", status="RECEIVED_UNDECLARED"), None)])), "wrong_item"),
    "nil_leaf_with_another_status": (
        _append_ack(lambda ex: _raw_ack(ex.beta, ex.doc, "A-N", T0 + 5 * HOUR, [
            (AckItem(id="Z-1", status="RECEIVED"), None)])), "bad_entry"),
    "received_undeclared_with_a_leaf": (
        _append_ack(lambda ex: _raw_ack(ex.beta, ex.doc, "A-N", T0 + 5 * HOUR, [
            (AckItem(id="P-0004", status="RECEIVED_UNDECLARED"), _hashes(ex.doc)["P-0004"])])),
        "bad_entry"),
    "ack_of_item_never_declared": (
        _append_ack(lambda ex: _raw_ack(ex.beta, ex.doc, "A-N", T0 + 5 * HOUR, [
            (AckItem(id="Z-1", status="RECEIVED"), _hashes(ex.doc)["P-0004"])])), "wrong_item"),
    "ack_binds_other_entry": (
        _append_ack(lambda ex: _raw_ack(ex.beta, ex.doc, "A-N", T0 + 5 * HOUR, [
            (AckItem(id="P-0004", status="RECEIVED"), _hashes(ex.doc)["P-0005"])])),
        "wrong_leaf"),
    "ack_by_wrong_party": (
        _append_ack(lambda ex: _sign_ack(ex.alpha, ex.doc, "A-S", T0 + 5 * HOUR,
                                         [AckItem(id="P-0004", status="RECEIVED")])),
        "wrong_party"),
    "document_acks_out_of_order": (lambda ex, d: d["acks"].reverse(), "ack_order"),
}


@pytest.mark.parametrize("attack", list(DOCUMENT_ATTACKS))
def test_document_receipt_attack_fails(ex: Exchange, attack: str) -> None:
    mutate, reason = DOCUMENT_ATTACKS[attack]
    bundle = _document(ex)
    mutate(ex, bundle)
    _fails(codec.encode(bundle), ex.keys, reason)


# ---------------------------------------------------------------- robustness


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_mutated_bundle_never_crashes(ex: Exchange, data: st.DataObject) -> None:
    """Any byte-level damage gives a result (usually a failure), never an exception."""
    which = data.draw(st.sampled_from(["item", "document"]))
    good = (build_item_receipt(ex.doc, "P-0001", ex.acks) if which == "item"
            else build_document_receipt(ex.doc, ex.acks))
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    # Every byte is structure, signed, hashed or a signature (Ed25519 as libsodium checks it
    # is not malleable), so any change at all must fail.
    assert check_receipt(bytes(raw), ex.keys).ok == (bytes(raw) == good)


# ------------------------------------------------------- one decoder, two paths, one answer


def _decoded(decode: Callable[..., object], leaf: bytes, index: int | None, *,
             strict_only: bool) -> tuple[str, object]:
    """What ``decode`` answers; with ``strict_only`` its quick path is switched off, so the
    answer is the strict path's alone."""
    quick = (lambda *_: None) if strict_only else entries._quick_map
    with mock.patch.object(entries, "_quick_map", quick):
        try:
            return ("ok", decode(leaf, index))
        except VerificationError as exc:
            return ("fail", exc.reason)


def _both_paths_agree(leaf: bytes, index: int | None = 0) -> None:
    for decode in (decode_declared_entry, decode_ack_entry):
        assert (_decoded(decode, leaf, index, strict_only=False)
                == _decoded(decode, leaf, index, strict_only=True))
    if index == 0:  # the views over a whole document answer the same, field by field
        declared = _decoded(decode_declared_entry, leaf, 0, strict_only=False)
        ack = _decoded(decode_ack_entry, leaf, 0, strict_only=False)
        assert _decoded(_first_declared_id, leaf, 0, strict_only=False) == (
            ("ok", _fields(declared[1], "item_id")[0]) if declared[0] == "ok" else declared)
        assert _decoded(_first_acknowledged, leaf, 0, strict_only=False) == (
            ("ok", _fields(ack[1], "item_id", "status", "leaf")) if ack[0] == "ok" else ack)


def _first_declared_id(leaf: bytes, _index: object) -> str:
    return entries.declared_item_ids([leaf])[0]


def _first_acknowledged(leaf: bytes, _index: object) -> tuple[object, ...]:
    return entries.acknowledged_items([leaf])[0]


def _fields(entry: object, *names: str) -> tuple[object, ...]:
    return tuple(getattr(entry, n) for n in names)


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


ODD_DECLARED = [
    codec.encode({"data": {"a": 1}, "i": 0, "id": "P-1", "salt": b"s" * 16}),
    msgpack.packb({"data": {"b": 1, "a": 2}, "i": 0, "id": "P-1", "salt": b"s" * 16},
                  use_bin_type=True),  # unsorted nested keys
    msgpack.packb({"data": {"a": 1.5}, "i": 0, "id": "P-1", "salt": b"s" * 16},
                  use_bin_type=True),  # float
    msgpack.packb({"data": {"a": 1}, "i": True, "id": "P-1", "salt": b"s" * 16},
                  use_bin_type=True),  # true as index
    msgpack.packb({"data": {"a": 1}, "i": 0, "id": "P-1\n", "salt": b"s" * 16},
                  use_bin_type=True),  # trailing newline in the id
    msgpack.packb({"data": {"a": "x" * 20000}, "i": 0, "id": "P-1", "salt": b"s" * 16},
                  use_bin_type=True),  # str over the SMALL limit
    msgpack.packb({"data": {b"k": 1}, "i": 0, "id": "P-1", "salt": b"s" * 16},
                  use_bin_type=True),  # bin key
    codec.encode({"data": {"a": _nest(18)}, "i": 0, "id": "P-1", "salt": b"s" * 16}),  # too deep
    codec.encode({"data": {"a": _nest(14)}, "i": 0, "id": "P-1", "salt": b"s" * 16}),  # deep
    codec.encode({"data": {"a": {"z": None, "b": [True, b"x", -5]}}, "i": 0, "id": "P-1",
                  "salt": b"s" * 16}),
    b"\xde\x00\x04" + codec.encode({"data": {}, "i": 0, "id": "P-1", "salt": b"s" * 16})[1:],
    codec.encode({"data": {}, "i": 3, "id": "P-1", "salt": b"s" * 16}),  # another index
    codec.encode({"data": {}, "i": -1, "id": "P-1", "salt": b"s" * 16}),  # no index at all
    encode_ack_entry(0, b"s" * 16, AckItem(id="P-1", status="RECEIVED"), b"h" * 32),
    encode_ack_entry(2, b"s" * 16, AckItem(id="P-1", status="DISPUTED", reason="r" * 2000),
                     None),
    codec.encode({"evidence": None, "i": 0, "id": "P-1", "leaf": b"h" * 31, "reason": None,
                  "salt": b"s" * 16, "status": "RECEIVED"}),  # a leaf hash one byte short
    codec.encode({"evidence": None, "i": 0, "id": "P-1", "leaf": None, "reason": "r" * 2001,
                  "salt": b"s" * 16, "status": "RECEIVED"}),  # a reason one character long
    codec.encode({"evidence": None, "i": 0, "id": "P-1", "leaf": None, "reason": None,
                  "salt": b"s" * 16, "status": "LOST"}),  # no such status
]


@pytest.mark.parametrize("leaf", ODD_DECLARED)
@pytest.mark.parametrize("index", [0, None])
def test_the_quick_path_of_each_entry_decoder_agrees_with_the_strict_one(
        leaf: bytes, index: int | None) -> None:
    _both_paths_agree(leaf, index)


def test_the_quick_path_serves_well_formed_entries() -> None:
    """Else the agreement above would hold trivially."""
    declared = codec.encode({"data": {"a": [1, "x"]}, "i": 4, "id": "P-1", "salt": b"s" * 16})
    ack = encode_ack_entry(4, b"s" * 16, AckItem(id="P-1", status="RECEIVED"), b"h" * 32)
    with mock.patch.object(entries, "_entry_map", side_effect=AssertionError("strict path")):
        assert decode_declared_entry(declared, 4).item_id == "P-1"
        assert decode_declared_entry(declared).index == 4  # at the index it names
        assert decode_ack_entry(ack).leaf == b"h" * 32


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=4), st.integers(0, 200))
def test_both_paths_agree_on_damaged_entries(patch: bytes, where: int) -> None:
    declared = codec.encode({"data": {"name": "Samplename", "n": 300, "tags": ["a", "b"]},
                             "i": 0, "id": "P-1", "salt": b"s" * 16})
    ack = encode_ack_entry(0, b"s" * 16, AckItem(id="P-1", status="RECEIVED", reason="ok"),
                           b"h" * 32)
    for leaf in (declared, ack):
        pos = where % len(leaf)
        damaged = leaf[:pos] + patch + leaf[pos + len(patch):]
        _both_paths_agree(damaged, 0)
        _both_paths_agree(damaged, None)


# ------------------------------------------------------- cost (its speed is bench/core.py's)


def test_document_receipt_checks_each_signature_once_however_many_items(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What a receipt's verification costs is its signatures: a whole-document receipt checks
    each header's signature once, never once per item (an accidental per-item signature check
    would make the count grow with the items). Seconds are measured in bench/core.py."""
    real = PublicIdentity.verify
    calls: list[int] = []

    def counting(self: PublicIdentity, tag: bytes, body: bytes, signature: bytes) -> bool:
        calls.append(1)
        return real(self, tag, body, signature)

    counted = {}
    for n in (10, 2_000):
        doc = sign_document(alpha, doc_type="manifest", doc_id=f"M-{n}", recipient="beta",
                            created=T0, meta={}, items=_items(n), salt_key=_salt(f"M-{n}"))
        ack = _sign_ack(beta, doc, f"A-{n}", T0 + HOUR,
                        [AckItem(id=f"P-{k:04d}", status="RECEIVED") for k in range(n)])
        data = build_document_receipt(doc, [ack])
        _document_signature_holds.cache_clear()  # nothing remembered from an earlier check
        calls.clear()
        with monkeypatch.context() as m:
            m.setattr(PublicIdentity, "verify", counting)
            result = verify_receipt(data, keyring)
        assert result.counts == {"RECEIVED": n}
        counted[n] = len(calls)
    assert counted[10] == counted[2_000] <= 4, counted


def test_a_remembered_signature_does_not_vouch_for_another(ex: Exchange) -> None:
    """Header signatures that verified are remembered; a hit must need the same key, bytes and
    signature, so a changed signature or a changed keyring is checked afresh."""
    good = build_item_receipt(ex.doc, "P-0001", ex.acks)
    assert check_receipt(good, ex.keys).ok
    bundle = _item(ex)
    _ack_signed_under(TAG_ENVELOPE)(ex, bundle)
    _fails(codec.encode(bundle), ex.keys, "bad_signature")
    _fails(good, Keyring.of([ex.alpha.public]), "unknown_key")
    impostor = Keyring.of([ex.alpha.public, PrivateIdentity.generate(
        "beta", created=T0, random_bytes=lambda n: b"\x07" * n).public])
    _fails(good, impostor, "unknown_key")


def test_ack_dated_a_year_before_its_document_is_flagged_not_silently_accepted(
        ex: Exchange) -> None:
    # One side's clock a year behind: the receipt holds (both signatures are good), and it
    # says that the answer is dated before its question.
    early = _sign_ack(ex.beta, ex.doc, "A-EARLY", T0 - 365 * 24 * HOUR,
                      [AckItem(id="P-0000", status="RECEIVED")])
    result = check_receipt(build_item_receipt(ex.doc, "P-0000", [early]), ex.keys)
    assert result.ok
    assert any("before the manifest it answers" in c for c in result.caveats), result.caveats
    assert not check_receipt(build_item_receipt(ex.doc, "P-0000", ex.acks), ex.keys).caveats

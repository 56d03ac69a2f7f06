"""bridge.core.documents: signed rosters, manifests and acknowledgements over salted Merkle
leaves."""

from __future__ import annotations

import hashlib
from typing import Any

import msgpack
import pytest

from bridge.core import codec, merkle
from bridge.core.crypto.identity import TAG_DOCUMENT, TAG_ENVELOPE, Keyring, PrivateIdentity
from bridge.core.documents import (
    ACK,
    ACK_STATUSES,
    SALT_SIZE,
    AckItem,
    DocumentHeader,
    Item,
    SignedDocument,
    SignedHeader,
    decode_ack_entry,
    decode_declared_entry,
    leaf_salts,
    sign_ack,
    sign_document,
)
from bridge.core.errors import InputError, VerificationError

CREATED = 1_767_225_600_000
SALT_KEY = bytes(range(32))


def remains(n: int) -> Item:
    """A synthetic human-remains manifest item."""
    return Item(id=f"HR-{n:05d}", data={
        "kind": "remains_package", "category": "human_remains", "body_tag": f"BT-{n:05d}",
        "bag_id": f"BAG-{n:05d}", "estimated_individuals": 1, "presumed_identity": "unknown",
        "seals": [f"S-{n:05d}-A", f"S-{n:05d}-B"],
    })


ITEMS = [remains(n) for n in range(1, 8)]
META = {"agreement": "AGR-2026-01", "batch": 3, "declared_counts": {"human_remains": 7}}


def manifest(issuer: PrivateIdentity, items: list[Item] | None = None, *,
             doc_id: str = "M-2026-0003", meta: dict[str, Any] | None = None) -> SignedDocument:
    return sign_document(issuer, doc_type="manifest", doc_id=doc_id, recipient="beta",
                         created=CREATED, meta=META if meta is None else meta,
                         items=ITEMS if items is None else items, salt_key=SALT_KEY)


def leaf_hashes_by_id(doc: SignedDocument) -> dict[str, bytes]:
    return {e.item_id: merkle.leaf_hash(doc.leaves[e.index]) for e in doc.declared_entries()}


def ack(issuer: PrivateIdentity, doc: SignedDocument, items: list[AckItem]) -> SignedDocument:
    return sign_ack(issuer, answers=doc.signed, ack_id="A-2026-0003", created=CREATED + 1,
                    items=items, declared_leaf_hashes=leaf_hashes_by_id(doc),
                    salt_key=SALT_KEY[::-1])


def over_the_wire(doc: SignedDocument) -> SignedDocument:
    return SignedDocument.parse(codec.decode(codec.encode(doc.to_map())))


def with_entries(doc: SignedDocument, leaves: list[bytes]) -> SignedDocument:
    return SignedDocument.parse({"doc": doc.signed.to_map(), "entries": leaves})


def resign(signer: PrivateIdentity, doc: SignedDocument, **changes: Any) -> SignedDocument:
    """Same entries, a header with ``changes``, validly signed by ``signer``."""
    header = dict(codec.decode(doc.signed.data), **changes)
    data = codec.encode(header)
    signed = {"header": data, "sig": signer.sign(TAG_DOCUMENT, data)}
    return SignedDocument.parse({"doc": signed, "entries": list(doc.leaves)})


def check_fails(doc: SignedDocument, keys: Keyring) -> str:
    with pytest.raises(VerificationError) as exc:
        doc.check(keys)
    return exc.value.reason


def input_field(fn: Any, *args: Any, **kwargs: Any) -> str | None:
    with pytest.raises(InputError) as exc:
        fn(*args, **kwargs)
    return exc.value.field


# ---------------------------------------------------------------- signing and checking


def test_sign_document_round_trip(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    received = over_the_wire(doc)
    assert received.check(keyring) == alpha.public
    h = received.header
    assert (h.type, h.id, h.issuer, h.recipient, h.count) == ("manifest", "M-2026-0003",
                                                              "alpha", "beta", len(ITEMS))
    assert h.issuer_key == alpha.key_id
    assert h.root == merkle.MerkleTree.from_leaves(list(received.leaves)).root
    assert dict(h.meta) == META
    assert received.digest == doc.digest == hashlib.sha256(doc.signed.data).digest()
    entries = received.declared_entries()
    assert [e.item_id for e in entries] == [i.id for i in ITEMS]
    assert [e.data for e in entries] == [dict(i.data) for i in ITEMS]
    assert [e.index for e in entries] == list(range(len(ITEMS)))


def test_signing_is_deterministic_given_salt_key_and_time(alpha: PrivateIdentity) -> None:
    assert manifest(alpha).signed.data == manifest(alpha).signed.data
    assert manifest(alpha).leaves == manifest(alpha).leaves


def test_each_entry_has_its_own_salt(alpha: PrivateIdentity) -> None:
    salts = [e.salt for e in manifest(alpha).declared_entries()]
    assert len(set(salts)) == len(salts)
    assert all(len(s) == SALT_SIZE for s in salts)
    assert salts == leaf_salts(SALT_KEY, len(ITEMS))


def test_same_items_under_another_salt_key_share_no_leaf(alpha: PrivateIdentity) -> None:
    """Undisclosed siblings cannot be guessed: equal records give unrelated leaf hashes."""
    a = manifest(alpha)
    b = sign_document(alpha, doc_type="manifest", doc_id="M-2026-0003", recipient="beta",
                      created=CREATED, meta=META, items=ITEMS, salt_key=b"\x01" * 32)
    assert not set(map(merkle.leaf_hash, a.leaves)) & set(map(merkle.leaf_hash, b.leaves))


def test_inclusion_proof_of_each_entry(alpha: PrivateIdentity) -> None:
    doc = manifest(alpha)
    for i, leaf in enumerate(doc.leaves):
        assert merkle.verify_inclusion(merkle.leaf_hash(leaf), i, doc.header.count,
                                       doc.proof(i), doc.header.root)


def test_roster_type(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = sign_document(alpha, doc_type="roster", doc_id="R-1", recipient="beta",
                        created=CREATED, meta={}, items=ITEMS[:1], salt_key=SALT_KEY)
    assert over_the_wire(doc).check(keyring) == alpha.public


def test_header_bytes_are_canonical_and_signed_with_document_tag(
        alpha: PrivateIdentity) -> None:
    doc = manifest(alpha)
    assert codec.encode(codec.decode(doc.signed.data)) == doc.signed.data
    assert alpha.public.verify(TAG_DOCUMENT, doc.signed.data, doc.signed.signature)
    assert DocumentHeader.from_bytes(doc.signed.data) == doc.header


# ---------------------------------------------------------------- bad local input


def test_duplicate_item_ids_refused(alpha: PrivateIdentity) -> None:
    items = [remains(1), remains(2), remains(1)]
    assert input_field(manifest, alpha, items) == "items[2].id"


@pytest.mark.parametrize("item_id", ["", " P-1", "P 1", "-P1", "P1\n", "x" * 129, "Пётр",
                                     "P1;DROP"])
def test_bad_item_ids_refused(item_id: str) -> None:
    assert input_field(Item, id=item_id, data={}) == "id"


def test_item_data_with_id_refused() -> None:
    assert input_field(Item, id="P-1", data={"id": "P-2"}) == "data"


def test_item_data_not_a_map_refused() -> None:
    assert input_field(Item, id="P-1", data=["not", "a", "map"]) == "data"


@pytest.mark.parametrize(("data", "path"), [
    ({"weight_kg": 71.5}, "items[2].weight_kg"), ({"nested": {"age": 24.0}}, "items[2].nested.age"),
    ({"list": [1, 2.0]}, "items[2].list[1]"),
], ids=["top_level", "nested", "in_list"])
def test_floats_in_item_data_refused_naming_the_field(alpha: PrivateIdentity,
                                                      data: dict[str, Any], path: str) -> None:
    # The path is the field's place in the submitted JSON (record fields sit beside "id").
    items = [remains(1), remains(2), Item(id="HR-99999", data=data)]
    assert input_field(manifest, alpha, items) == path


def test_non_str_keys_in_item_data_refused(alpha: PrivateIdentity) -> None:
    items = [remains(1), Item(id="HR-99999", data={"a": {1: "x"}})]
    assert input_field(manifest, alpha, items) == "items[1].a"


def test_floats_in_meta_refused_naming_meta(alpha: PrivateIdentity) -> None:
    assert input_field(manifest, alpha, meta={"exchange_ratio": 1.5}) == "meta.exchange_ratio"


def test_empty_items_refused(alpha: PrivateIdentity) -> None:
    assert input_field(manifest, alpha, []) == "items"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"doc_type": "ack"}, "type"),
    ({"doc_type": "letter"}, "type"),
    ({"doc_id": "M 1"}, "id"),
    ({"doc_id": ""}, "id"),
    ({"doc_id": "M-1\n"}, "id"),
    ({"recipient": "Beta"}, "recipient"),
    ({"recipient": "beta\n"}, "recipient"),
    ({"created": -1}, "created"),
], ids=["ack_type", "unknown_type", "id_with_space", "empty_id", "id_newline", "bad_recipient",
        "recipient_newline", "negative_time"])
def test_bad_document_fields_refused(alpha: PrivateIdentity, kwargs: dict[str, Any],
                                     field: str) -> None:
    args: dict[str, Any] = {"doc_type": "manifest", "doc_id": "M-1", "recipient": "beta",
                            "created": CREATED, "meta": {}, "items": ITEMS,
                            "salt_key": SALT_KEY}
    args.update(kwargs)
    assert input_field(sign_document, alpha, **args) == field


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"status": "LOST"}, "status"),
    ({"status": "received"}, "status"),
    ({"reason": "x" * 2001}, "reason"),
    ({"evidence": 5}, "evidence"),
    ({"id": "bad id"}, "id"),
], ids=["unknown_status", "lowercase_status", "long_reason", "evidence_not_text", "bad_id"])
def test_bad_ack_items_refused(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"id": "HR-00001", "status": "RECEIVED"}
    args.update(kwargs)
    assert input_field(AckItem, **args) == field


# ---------------------------------------------------------------- acknowledgements


def test_sign_ack_round_trip(alpha: PrivateIdentity, beta: PrivateIdentity,
                             keyring: Keyring) -> None:
    doc = manifest(alpha)
    statuses = ["RECEIVED", "IDENTITY_CONFIRMED", "NOT_RECEIVED", "NOT_OWN_NATIONAL",
                "DISPUTED", "COMMINGLED", "PENDING_IDENTIFICATION"]
    items = [AckItem(id=i.id, status=s, reason="count differs" if s == "DISPUTED" else None,
                     evidence="EV-7" if s == "NOT_OWN_NATIONAL" else None)
             for i, s in zip(ITEMS, statuses, strict=True)]
    received = over_the_wire(ack(beta, doc, items))
    assert received.check(keyring) == beta.public
    h = received.header
    assert h.type == ACK
    assert (h.issuer, h.recipient) == ("beta", "alpha")
    assert h.answers == doc.digest and h.answers_id == doc.header.id
    by_id = leaf_hashes_by_id(doc)
    for entry, item in zip(received.ack_entries(), items, strict=True):
        assert (entry.item_id, entry.status, entry.reason, entry.evidence) == (
            item.id, item.status, item.reason, item.evidence)
        assert entry.leaf == by_id[item.id]


def test_every_status_can_be_acknowledged(alpha: PrivateIdentity, beta: PrivateIdentity,
                                          keyring: Keyring) -> None:
    statuses = [s for s in ACK_STATUSES if s != "RECEIVED_UNDECLARED"]
    items = [remains(n) for n in range(len(statuses))]
    doc = manifest(alpha, items)
    a = ack(beta, doc, [AckItem(id=i.id, status=s) for i, s in zip(items, statuses,
                                                                  strict=True)])
    assert [e.status for e in over_the_wire(a).ack_entries()] == statuses


def test_partial_ack_is_allowed(alpha: PrivateIdentity, beta: PrivateIdentity,
                                keyring: Keyring) -> None:
    doc = manifest(alpha)
    a = ack(beta, doc, [AckItem(id=ITEMS[3].id, status="RECEIVED")])
    assert over_the_wire(a).header.count == 1


def test_ack_of_item_not_in_document_refused(alpha: PrivateIdentity,
                                             beta: PrivateIdentity) -> None:
    doc = manifest(alpha)
    items = [AckItem(id=ITEMS[0].id, status="RECEIVED"),
             AckItem(id="HR-77777", status="RECEIVED")]
    with pytest.raises(InputError) as exc:
        ack(beta, doc, items)
    assert exc.value.field == "items[1].id"
    assert "HR-77777" in str(exc.value) and doc.header.id in str(exc.value)


def test_received_undeclared_for_an_undeclared_item(alpha: PrivateIdentity,
                                                    beta: PrivateIdentity,
                                                    keyring: Keyring) -> None:
    """The receiver counted a body the sender did not list: acknowledged with no leaf."""
    doc = manifest(alpha)
    a = ack(beta, doc, [AckItem(id=ITEMS[0].id, status="RECEIVED"),
                        AckItem(id="HR-EXTRA-1", status="RECEIVED_UNDECLARED",
                                reason="bag found in transport, not on manifest")])
    entries = over_the_wire(a).ack_entries()
    assert entries[1].status == "RECEIVED_UNDECLARED" and entries[1].leaf is None
    assert entries[0].leaf is not None


def test_received_undeclared_for_a_declared_item_refused(alpha: PrivateIdentity,
                                                         beta: PrivateIdentity) -> None:
    doc = manifest(alpha)
    with pytest.raises(InputError) as exc:
        ack(beta, doc, [AckItem(id=ITEMS[2].id, status="RECEIVED_UNDECLARED")])
    assert exc.value.field == "items[0].status"


def test_ack_duplicate_items_refused(alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    doc = manifest(alpha)
    items = [AckItem(id=ITEMS[0].id, status="RECEIVED"),
             AckItem(id=ITEMS[0].id, status="DISPUTED")]
    assert input_field(ack, beta, doc, items) == "items[1].id"


def test_empty_ack_refused(alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    assert input_field(ack, beta, manifest(alpha), []) == "items"


# ---------------------------------------------------------------- tampering and checks


def test_tampered_entry_is_root_mismatch(alpha: PrivateIdentity, keyring: Keyring) -> None:
    """Change one person's record and re-encode it canonically: the root no longer holds."""
    doc = manifest(alpha)
    entry = codec.decode(doc.leaves[3])
    entry["data"]["presumed_identity"] = "someone else"
    leaves = list(doc.leaves)
    leaves[3] = codec.encode(entry)
    assert check_fails(with_entries(doc, leaves), keyring) == "root_mismatch"


def test_swapped_entries_are_root_mismatch(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    leaves = list(doc.leaves)
    leaves[1], leaves[2] = leaves[2], leaves[1]
    assert check_fails(with_entries(doc, leaves), keyring) == "root_mismatch"


def test_replaced_entry_from_another_document_is_root_mismatch(
        alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    other = manifest(alpha, [remains(n) for n in range(100, 107)], doc_id="M-OTHER")
    leaves = list(doc.leaves)
    leaves[0] = other.leaves[0]
    assert check_fails(with_entries(doc, leaves), keyring) == "root_mismatch"


def test_dropped_entry_is_count_mismatch(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    assert check_fails(with_entries(doc, list(doc.leaves[:-1])), keyring) == "count_mismatch"


def test_added_entry_is_count_mismatch(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    leaves = [*doc.leaves, doc.leaves[0]]
    assert check_fails(with_entries(doc, leaves), keyring) == "count_mismatch"


def test_count_changed_in_header_by_its_signer_is_root_mismatch(
        alpha: PrivateIdentity, keyring: Keyring) -> None:
    """Declared count and entries agree, but the signed root covers 7 leaves, not 6."""
    doc = manifest(alpha)
    forged = resign(alpha, doc, count=6)
    forged = with_entries(forged, list(doc.leaves[:-1]))
    assert check_fails(forged, keyring) == "root_mismatch"


def test_unknown_key_refused(alpha: PrivateIdentity, beta: PrivateIdentity,
                             mallory: PrivateIdentity) -> None:
    doc = manifest(mallory)
    assert check_fails(doc, Keyring.of([alpha.public, beta.public])) == "unknown_key"


def test_issuer_name_not_matching_key_refused(alpha: PrivateIdentity,
                                              mallory: PrivateIdentity) -> None:
    """mallory (pinned) signs a manifest that names alpha as its issuer."""
    forged = resign(mallory, manifest(mallory), issuer="alpha")
    assert check_fails(forged, Keyring.of([alpha.public, mallory.public])) == "wrong_issuer"


def test_signature_by_another_pinned_key_refused(alpha: PrivateIdentity,
                                                 mallory: PrivateIdentity) -> None:
    forged = resign(mallory, manifest(alpha))  # names alpha and alpha's key; mallory signed
    assert check_fails(forged, Keyring.of([alpha.public, mallory.public])) == "bad_signature"


def test_tampered_signature_refused(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    sig = bytearray(doc.signed.signature)
    sig[0] ^= 1
    tampered = SignedDocument.parse({"doc": {"header": doc.signed.data, "sig": bytes(sig)},
                                     "entries": list(doc.leaves)})
    assert check_fails(tampered, keyring) == "bad_signature"


def test_header_changed_after_signing_refused(alpha: PrivateIdentity, keyring: Keyring) -> None:
    doc = manifest(alpha)
    header = dict(codec.decode(doc.signed.data), recipient="gamma")
    tampered = SignedDocument.parse({"doc": {"header": codec.encode(header),
                                             "sig": doc.signed.signature},
                                     "entries": list(doc.leaves)})
    assert check_fails(tampered, keyring) == "bad_signature"


def test_envelope_signature_is_not_a_document_signature(alpha: PrivateIdentity,
                                                        keyring: Keyring) -> None:
    doc = manifest(alpha)
    sig = alpha.sign(TAG_ENVELOPE, doc.signed.data)
    tampered = SignedDocument.parse({"doc": {"header": doc.signed.data, "sig": sig},
                                     "entries": list(doc.leaves)})
    assert check_fails(tampered, keyring) == "bad_signature"


def test_ack_cannot_be_presented_for_another_document(
        alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    doc = manifest(alpha)
    other = manifest(alpha, doc_id="M-2026-0004")
    a = ack(beta, doc, [AckItem(id=ITEMS[0].id, status="RECEIVED")])
    assert a.header.answers == doc.digest != other.digest


# ---------------------------------------------------------------- parsing peers' bytes


@pytest.mark.parametrize("value", [
    None, [], {"doc": {}}, {"doc": {}, "entries": "x"}, {"doc": {}, "entries": ["x"]},
    {"doc": {}, "entries": [], "extra": 1},
], ids=["nil", "list", "no_entries", "entries_str", "entry_str", "extra_key"])
def test_parse_refuses_wrong_document_shape(value: Any) -> None:
    with pytest.raises(VerificationError) as exc:
        SignedDocument.parse(value)
    assert exc.value.reason == "bad_document"


@pytest.mark.parametrize("value", [
    None, {"header": b""}, {"header": "x", "sig": b""}, {"header": b"", "sig": b"", "x": 1},
], ids=["nil", "no_sig", "header_str", "extra_key"])
def test_signed_header_parse_refuses_wrong_shape(value: Any) -> None:
    with pytest.raises(VerificationError) as exc:
        SignedHeader.parse(value)
    assert exc.value.reason == "bad_header"


@pytest.mark.parametrize(("changes", "remove"), [
    ({"v": 2}, None), ({"v": True}, None), ({"extra": 1}, None), ({}, "root"),
    ({"answers": b"\x00" * 32, "answers_id": "M-1"}, None), ({"type": "ack"}, None),
    ({"count": -1}, None), ({"count": True}, None), ({"root": b"\x00" * 31}, None),
    ({"issuer_key": "alpha"}, None), ({"meta": []}, None), ({"id": 7}, None),
    ({"issuer": "ALPHA"}, None), ({"type": "roster "}, None),
], ids=["v2", "v_true", "extra", "no_root", "answers_on_manifest", "ack_without_answers",
        "negative_count", "bool_count", "short_root", "key_as_str", "meta_list", "int_id",
        "bad_issuer", "bad_type"])
def test_header_from_bytes_refuses(alpha: PrivateIdentity, changes: dict[str, Any],
                                   remove: str | None) -> None:
    header = dict(codec.decode(manifest(alpha).signed.data), **changes)
    if remove:
        del header[remove]
    with pytest.raises(VerificationError) as exc:
        DocumentHeader.from_bytes(codec.encode(header))
    assert exc.value.reason == "bad_header"


@pytest.mark.parametrize("answers_id", [7, "", "bad id", None])
def test_ack_header_answers_id_must_be_a_document_id(
        alpha: PrivateIdentity, beta: PrivateIdentity, answers_id: Any) -> None:
    a = ack(beta, manifest(alpha), [AckItem(id=ITEMS[0].id, status="RECEIVED")])
    header = dict(codec.decode(a.signed.data), answers_id=answers_id)
    with pytest.raises(VerificationError) as exc:
        DocumentHeader.from_bytes(codec.encode(header))
    assert exc.value.reason == "bad_header"


def test_header_from_bytes_refuses_non_canonical_bytes(alpha: PrivateIdentity) -> None:
    header = codec.decode(manifest(alpha).signed.data)
    unsorted = msgpack.packb(dict(reversed(list(header.items()))), use_bin_type=True)
    with pytest.raises(VerificationError) as exc:
        DocumentHeader.from_bytes(unsorted)
    assert exc.value.reason == "bad_header"


def _declared(alpha: PrivateIdentity, index: int = 2) -> dict[str, Any]:
    value: dict[str, Any] = codec.decode(manifest(alpha).leaves[index])
    return value


@pytest.mark.parametrize("changes", [
    {"i": 3}, {"i": -1}, {"i": "2"}, {"salt": b"\x00" * 15}, {"salt": "s" * 16},
    {"id": "bad id"}, {"data": [1]}, {"extra": 1},
], ids=["wrong_index", "negative_index", "index_str", "short_salt", "salt_str", "bad_id",
        "data_list", "extra_field"])
def test_declared_entry_refused(alpha: PrivateIdentity, changes: dict[str, Any]) -> None:
    with pytest.raises(VerificationError) as exc:
        decode_declared_entry(codec.encode(dict(_declared(alpha), **changes)), 2)
    assert exc.value.reason == "bad_entry"


@pytest.mark.parametrize("index", [0, 1])
def test_entry_index_true_or_false_is_not_an_integer(alpha: PrivateIdentity,
                                                     index: int) -> None:
    """Python says True == 1; the encoding does not: an entry at 1 saying "i": true is refused."""
    leaf = codec.encode(dict(_declared(alpha, index), i=bool(index)))
    with pytest.raises(VerificationError) as exc:
        decode_declared_entry(leaf, index)
    assert exc.value.reason == "bad_entry"


def test_declared_entry_not_canonical_refused(alpha: PrivateIdentity) -> None:
    with pytest.raises(VerificationError) as exc:
        decode_declared_entry(manifest(alpha).leaves[2] + b"\x00", 2)
    assert exc.value.reason == "bad_entry"


def _ack_entry(alpha: PrivateIdentity, beta: PrivateIdentity) -> dict[str, Any]:
    a = ack(beta, manifest(alpha), [AckItem(id=ITEMS[0].id, status="RECEIVED")])
    value: dict[str, Any] = codec.decode(a.leaves[0])
    return value


@pytest.mark.parametrize("changes", [
    {"status": "LOST"}, {"leaf": b"\x00" * 31}, {"leaf": "h" * 32}, {"reason": 5},
    {"evidence": "e" * 2001}, {"i": 1},
], ids=["unknown_status", "short_leaf", "leaf_str", "reason_int", "long_evidence",
        "wrong_index"])
def test_ack_entry_refused(alpha: PrivateIdentity, beta: PrivateIdentity,
                           changes: dict[str, Any]) -> None:
    with pytest.raises(VerificationError) as exc:
        decode_ack_entry(codec.encode(dict(_ack_entry(alpha, beta), **changes)), 0)
    assert exc.value.reason == "bad_entry"


def test_ack_entries_of_a_manifest_refused(alpha: PrivateIdentity) -> None:
    """A declared entry is not an acknowledgement entry (different fields)."""
    with pytest.raises(VerificationError):
        manifest(alpha).ack_entries()

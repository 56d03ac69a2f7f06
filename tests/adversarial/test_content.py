"""Authenticated envelopes, in sequence, whose content is refused (PROTOCOL.md §8.1): bad
chunks, documents that lie about who issued them or whom they are for, and acknowledgements
beta must not believe. Each envelope still takes its place in alpha's chain (so later ones are
not blocked), is answered 200 with a signed ``refused`` receipt naming the reason, raises an
alarm, and changes nothing else."""

from __future__ import annotations

import dataclasses
import os

from bridge.core import codec, documents, merkle
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import Item

from .hostile import (
    World,
    ack,
    chunk_payloads,
    flip,
    manifest,
    now_ms,
    one_chunk,
    unique,
)


def fields(payload: bytes) -> dict[str, object]:
    value = codec.decode(payload, codec.Limits(max_bytes=1 << 28))
    assert isinstance(value, dict)
    return value


def test_chunk_with_a_tampered_entry_does_not_match_the_signed_root(world: World) -> None:
    chunk = fields(one_chunk(manifest(world.alpha_key, unique("M-ENTRY"))))
    entries = list(chunk["entries"])  # type: ignore[call-overload]
    entries[1] = flip(entries[1], len(entries[1]) - 3)
    world.refused_in_chain(codec.encode(chunk | {"entries": entries}), "root_mismatch")


def test_chunk_with_a_bad_inclusion_proof(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-PROOF"), n=8)
    first, second, *_ = chunk_payloads(doc, 2)
    world.accept(first)  # the document starts honestly
    chunk = fields(second)
    proof = list(chunk["proof"])  # type: ignore[call-overload]
    proof[0] = flip(proof[0], 5)
    world.refused_in_chain(codec.encode(chunk | {"proof": proof}), "root_mismatch")


def test_chunk_with_the_proof_of_another_chunk(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-PROOF2"), n=8)
    first, second, third, _ = chunk_payloads(doc, 2)
    world.accept(first)
    world.refused_in_chain(codec.encode(fields(second) | {"proof": fields(third)["proof"]}),
                           "root_mismatch")


def test_chunk_holding_the_wrong_number_of_entries(world: World) -> None:
    chunk = fields(one_chunk(manifest(world.alpha_key, unique("M-COUNT"), n=4)))
    entries = list(chunk["entries"])  # type: ignore[call-overload]
    world.refused_in_chain(codec.encode(chunk | {"entries": entries[:3]}), "bad_chunk")


def test_chunk_with_the_entries_of_another_document(world: World) -> None:
    a = fields(one_chunk(manifest(world.alpha_key, unique("M-MINE"))))
    b = fields(one_chunk(manifest(world.alpha_key, unique("M-OTHER"))))
    world.refused_in_chain(codec.encode(a | {"entries": b["entries"]}), "root_mismatch")


def test_second_chunk_of_a_document_sent_first(world: World) -> None:
    _, second, *_ = chunk_payloads(manifest(world.alpha_key, unique("M-SKIP"), n=8), 2)
    world.refused_in_chain(second, "bad_chunk")


def test_chunk_position_not_a_multiple_of_the_chunk_size(world: World) -> None:
    chunk = fields(one_chunk(manifest(world.alpha_key, unique("M-POS"), n=4)))
    world.refused_in_chain(codec.encode(chunk | {"first": 1}), "bad_chunk")


def test_payload_that_is_not_a_chunk(world: World) -> None:
    world.refused_in_chain(codec.encode({"hello": "beta"}), "bad_chunk")


def test_payload_that_is_not_msgpack(world: World) -> None:
    world.refused_in_chain(b"\xc1\xc1\xc1", "malformed")


def test_unknown_envelope_kind(world: World) -> None:
    payload = one_chunk(manifest(world.alpha_key, unique("M-KIND")))
    world.refused_in_chain(payload, "unknown_kind", kind="teleport")


def test_document_signed_by_an_unpinned_key(world: World) -> None:
    world.refused_in_chain(one_chunk(manifest(world.mallory, unique("M-MAL"))), "unknown_key")


def test_document_whose_signature_does_not_verify(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-SIG"))
    chunk = fields(one_chunk(doc))
    signed = dict(chunk["doc"])  # type: ignore[call-overload]
    signed["sig"] = flip(signed["sig"], 10)
    world.refused_in_chain(codec.encode(chunk | {"doc": signed}), "bad_signature")


def test_document_claiming_another_issuer_signed_by_that_issuer(world: World) -> None:
    """alpha sends a document gamma (another pinned party) issued and signed."""
    world.refused_in_chain(one_chunk(manifest(world.gamma_key, unique("M-GAMMA"))),
                           "wrong_issuer")


def test_document_naming_alpha_as_issuer_but_signed_by_gamma(world: World) -> None:
    items = [Item(id="X-1", data={"note": "sample"})]
    header = documents.DocumentHeader(
        type="manifest", id=unique("M-NAMED"), issuer="alpha",
        issuer_key=world.gamma_key.key_id, recipient="beta", created=now_ms(), count=1,
        root=merkle.MerkleTree.from_leaves([documents.encode_declared_entry(
            0, b"\x00" * 16, items[0])]).root, meta={})
    data = codec.encode(header.to_map())
    sig = world.gamma_key.sign(documents.TAG_DOCUMENT, data)
    leaf = documents.encode_declared_entry(0, b"\x00" * 16, items[0])
    payload = codec.encode({"chunk": 1, "doc": {"header": data, "sig": sig},
                            "entries": [leaf], "first": 0, "proof": []})
    world.refused_in_chain(payload, "wrong_issuer")


def test_document_addressed_to_another_party(world: World) -> None:
    world.refused_in_chain(one_chunk(manifest(world.alpha_key, unique("M-G"),
                                              recipient="gamma")), "wrong_recipient")


def test_document_id_reused_for_other_content(world: World) -> None:
    doc_id = unique("M-ONCE")
    world.accept(one_chunk(manifest(world.alpha_key, doc_id, n=2)))
    world.refused_in_chain(one_chunk(manifest(world.alpha_key, doc_id, n=3)),
                           "duplicate_document")


def test_accepted_document_sent_again_in_a_new_envelope(world: World) -> None:
    payload = one_chunk(manifest(world.alpha_key, unique("M-AGAIN")))
    world.accept(payload)
    world.refused_in_chain(payload, "bad_chunk")


def test_acknowledgement_of_a_document_never_sent(world: World) -> None:
    other_beta = PrivateIdentity.generate("beta", created=now_ms())  # beta's name only
    never = manifest(other_beta, unique("M-NEVER"), recipient="alpha")
    leaves = {e.item_id: merkle.leaf_hash(never.leaves[e.index])
              for e in never.declared_entries()}
    forged = ack(world.alpha_key, never.signed, dict.fromkeys(leaves, "RECEIVED"), leaves)
    world.refused_in_chain(one_chunk(forged), "unknown_document")


def test_acknowledgement_of_an_undeclared_item_with_a_leaf(world: World) -> None:
    signed, leaves = world.new_beta_manifest()
    ghost = {**leaves, "GHOST-1": os.urandom(32)}  # a leaf hash beta never declared
    forged = ack(world.alpha_key, signed, {"GHOST-1": "RECEIVED"}, ghost)
    world.refused_in_chain(one_chunk(forged), "bad_ack")


def test_acknowledgement_binding_another_entry_of_the_same_item(world: World) -> None:
    signed, leaves = world.new_beta_manifest()
    first = next(iter(leaves))
    forged = ack(world.alpha_key, signed, {first: "RECEIVED"},
                 {**leaves, first: os.urandom(32)})
    world.refused_in_chain(one_chunk(forged), "bad_ack")


def test_acknowledgement_changing_a_status_the_lifecycle_forbids(world: World) -> None:
    signed, leaves = world.new_beta_manifest()
    item = next(iter(leaves))
    world.accept(one_chunk(ack(world.alpha_key, signed, {item: "RECEIVED"}, leaves)))
    # RECEIVED may become e.g. IDENTITY_CONFIRMED or DISPUTED, never NOT_RECEIVED again.
    world.refused_in_chain(one_chunk(ack(world.alpha_key, signed, {item: "NOT_RECEIVED"},
                                         leaves)), "transition_not_allowed")
    assert world.beta.client.item(signed.header.id, item, direction="out")["status"] == \
        "RECEIVED"


def test_declared_item_acknowledged_first_as_undeclared(world: World) -> None:
    """RECEIVED_UNDECLARED for an item beta declared (entry without a leaf)."""
    signed, leaves = world.new_beta_manifest()
    item = next(iter(leaves))
    forged = ack(world.alpha_key, signed, {item: "RECEIVED_UNDECLARED"}, {})
    world.refused_in_chain(one_chunk(forged), "bad_ack")


def test_acknowledgement_not_later_than_the_previous_one(world: World) -> None:
    signed, leaves = world.new_beta_manifest(n=2)
    a, b = list(leaves)
    when = now_ms()
    world.accept(one_chunk(ack(world.alpha_key, signed, {a: "RECEIVED"}, leaves,
                               created=when)))
    world.refused_in_chain(one_chunk(ack(world.alpha_key, signed, {b: "RECEIVED"}, leaves,
                                         created=when - 1000)), "ack_order")


def test_acknowledgement_of_beta_s_document_issued_by_gamma(world: World) -> None:
    """An acknowledgement gamma signed, of a document beta sent to alpha, relayed by alpha."""
    signed, leaves = world.new_beta_manifest()
    forged = ack(world.gamma_key, signed, dict.fromkeys(leaves, "RECEIVED"), leaves)
    world.refused_in_chain(one_chunk(forged), "wrong_issuer")


def test_acknowledgement_entry_for_an_unknown_status(world: World) -> None:
    signed, leaves = world.new_beta_manifest(n=1)
    (item,) = leaves
    real = ack(world.alpha_key, signed, {item: "RECEIVED"}, leaves)
    entry = codec.decode(real.leaves[0]) | {"status": "TELEPORTED"}
    leaf = codec.encode(entry)
    # Signed properly by alpha over a tree of that entry: only the status is wrong.
    header = dataclasses.replace(real.header, root=merkle.MerkleTree.from_leaves([leaf]).root)
    data = codec.encode(header.to_map())
    payload = codec.encode({"chunk": 1, "doc": {"header": data, "sig": world.alpha_key.sign(
        documents.TAG_DOCUMENT, data)}, "entries": [leaf], "first": 0, "proof": []})
    world.refused_in_chain(payload, "bad_entry")


def test_key_statement_that_is_not_one(world: World) -> None:
    not_a_statement = codec.encode({"r": codec.encode({"type": "bridge.key-teleport"})})
    world.refused_in_chain(not_a_statement, "bad_key_statement", kind="key-rotation")


def test_revocation_of_a_key_beta_never_pinned(world: World) -> None:
    from bridge.core import keylife

    statement = keylife.make_revocation(world.mallory, since=now_ms(), at=now_ms(),
                                        reason="synthetic test")
    world.refused_in_chain(statement, "wrong_key", kind="key-revocation")


def test_rotation_of_another_partys_key_relayed_by_alpha(world: World) -> None:
    from bridge.core import keylife

    new = PrivateIdentity.generate("gamma", created=now_ms())
    statement = keylife.make_rotation(world.gamma_key, new, at=now_ms())
    world.refused_in_chain(statement, "wrong_key", kind="key-rotation")
    # gamma's pinned key is unchanged.
    assert world.beta.home.peer_identity("gamma").key_id == world.gamma_key.key_id


def test_content_refusals_do_not_block_the_chain(world: World) -> None:
    world.refused_in_chain(codec.encode({"hello": "again"}), "bad_chunk")
    doc_id = unique("M-STILL")
    world.accept(one_chunk(manifest(world.alpha_key, doc_id)))
    assert world.beta.client.document(doc_id)["items"]["total"] == 3


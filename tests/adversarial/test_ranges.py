"""Integers and times a hostile peer chooses (PROTOCOL.md §3 "Ranges"). Each was a 500 with no
signed answer, or was stored and then made every read of the local API fail (``GET
/v1/documents``, item pages, ``/v1/reconcile``, the deadline watcher). Now each is refused
where it is parsed, with a signed answer and a reason code, and the local API still reads."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bridge.core import codec, documents, merkle
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.documents import Item, SignedDocument

from .hostile import (
    ZERO,
    Check,
    World,
    ack,
    header_bytes,
    hpke_seal,
    manifest,
    now_ms,
    one_chunk,
    sign_as_envelope,
    store_holds,
    unique,
    x25519_of,
)

DAY = 86_400_000


def resigned(signer: PrivateIdentity, doc: SignedDocument, **header: Any) -> bytes:
    """One chunk of ``doc`` with its header fields replaced and signed again by ``signer``: a
    properly signed document whose only fault is the values given."""
    data = codec.encode(codec.decode(doc.signed.data) | header)
    payload = codec.decode(one_chunk(doc))
    sig = signer.sign(documents.TAG_DOCUMENT, data)
    return codec.encode(payload | {"doc": {"header": data, "sig": sig}})


def local_api_reads(world: World, doc_id: str | None = None) -> None:
    """What the poisoned values broke: the document list, one document's page, its items and
    the reconciliation all answer."""
    world.beta.client.documents()
    world.beta.client.reconcile()
    if doc_id is not None:
        world.beta.client.document(doc_id)
        world.beta.client.items(doc_id)


@pytest.mark.parametrize("seq", [2**63, 2**64 - 1])
def test_header_with_seq_past_sqlite_integer_is_refused_before_the_duplicate_lookup(
        world: World, seq: int) -> None:
    """alpha's own key, addressed to beta: the duplicate shortcut looked ``seq`` up in SQLite
    before any signature check, and the overflow was a 500 with no signed answer."""
    h = codec.encode(codec.decode(header_bytes(world.alpha_key, world.beta_pub, seq=1,
                                               prev=ZERO)) | {"seq": seq})
    data = sign_as_envelope(world.alpha_key, h, hpke_seal(b"\x80", x25519_of(world.beta_pub), h))
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, "bad_header", 0)])):
        world.expect(data, status=400, result="rejected", reason="bad_header")


@pytest.mark.parametrize("at", [1, 2**63])
def test_envelope_at_outside_the_window_of_times_is_a_bad_header(world: World,
                                                                 at: int) -> None:
    h = codec.encode(codec.decode(header_bytes(world.alpha_key, world.beta_pub, seq=1,
                                               prev=ZERO)) | {"at": at})
    data = sign_as_envelope(world.alpha_key, h, hpke_seal(b"\x80", x25519_of(world.beta_pub), h))
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, "bad_header", 0)])):
        world.expect(data, status=400, result="rejected", reason="bad_header")


def test_envelope_sealed_days_ahead_of_beta_s_clock_is_refused_in_the_chain(
        world: World) -> None:
    f = world.forger
    seq = f.seq + 1
    h = header_bytes(world.alpha_key, world.beta_pub, seq=seq, prev=f.prev,
                     at=now_ms() + 3 * DAY)
    payload = one_chunk(manifest(world.alpha_key, unique("M-AHEAD")))
    data = sign_as_envelope(world.alpha_key, h, hpke_seal(payload, x25519_of(world.beta_pub), h))
    with store_holds(world.beta, world.view, Check(refusals=[("alpha", seq, "bad_time", 1)],
                                                   inbox=[("alpha", seq, "refused")])):
        reply = world.post(data)
        got = world.answer(reply)
        assert (reply.status, got.result, got.reason, got.seq) == (200, "refused", "bad_time",
                                                                   seq), got
    f.sync()
    local_api_reads(world)


def test_document_with_a_bin_value_in_meta_gets_a_signed_refusal(world: World) -> None:
    """The header decoded, the document was stored, and the JSON of its meta failed: a 500
    inside the transaction, no signed answer, the sender retrying for ever."""
    doc = manifest(world.alpha_key, unique("M-BINMETA"))
    world.refused_in_chain(resigned(world.alpha_key, doc, meta={"photo": b"\x89PNG"}),
                           "bad_header")
    local_api_reads(world)


def test_document_with_an_integer_beyond_json_in_meta_is_refused(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-BIGMETA"))
    world.refused_in_chain(resigned(world.alpha_key, doc, meta={"batch": 2**60}), "bad_header")


@pytest.mark.parametrize("created", [2**63, 2**62, 300_000_000_000_000, 1])
def test_document_created_outside_the_window_of_times_is_refused(world: World,
                                                                 created: int) -> None:
    """2**63 overflowed SQLite (a 500); 2**62 and 3e14 (after 9999-12-31) were stored and then
    broke every listing that printed the date."""
    doc = manifest(world.alpha_key, unique("M-WHEN"))
    world.refused_in_chain(resigned(world.alpha_key, doc, created=created), "bad_header")
    local_api_reads(world)


def test_document_created_days_ahead_of_beta_s_clock_is_refused(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-SOON"))
    world.refused_in_chain(resigned(world.alpha_key, doc, created=now_ms() + 3 * DAY),
                           "bad_time")


@pytest.mark.parametrize("deadline", ["9999-12-31", "9999-12-31T20:00:00-14:00",
                                      "2099-01-01T00:00:00Z"])
def test_document_with_a_deadline_out_of_range_is_refused(world: World, deadline: str) -> None:
    """``9999-12-31`` (the end of that day is year 10000) and a ``-14:00`` offset on its last
    evening were stored, then made the document list, the item pages, the reconciliation and
    the deadline watcher fail on every run; 2099 is past the ten-year horizon."""
    doc = manifest(world.alpha_key, unique("M-DUE"))
    world.refused_in_chain(resigned(world.alpha_key, doc, meta={"ack_deadline": deadline}),
                           "bad_header")
    local_api_reads(world)


def test_document_with_a_deadline_offset_past_14_hours_is_refused(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-OFFSET"))
    world.refused_in_chain(resigned(world.alpha_key, doc,
                                    meta={"ack_deadline": "2026-12-01T12:00:00+20:00"}),
                           "bad_header")


def test_acknowledgement_of_beta_s_manifest_created_in_2_to_the_62(world: World) -> None:
    """Stored, it made beta's own manifest unreadable (its page lists its acknowledgements)
    and outranked every honest later acknowledgement."""
    signed, leaves = world.new_beta_manifest(n=2)
    forged = ack(world.alpha_key, signed, dict.fromkeys(leaves, "RECEIVED"), leaves)
    world.refused_in_chain(resigned(world.alpha_key, forged, created=2**62), "bad_header")
    local_api_reads(world, signed.header.id)
    item = next(iter(leaves))
    assert world.beta.client.item(signed.header.id, item)["status"] != "RECEIVED"
    # The honest acknowledgement is still taken.
    world.accept(one_chunk(ack(world.alpha_key, signed, dict.fromkeys(leaves, "RECEIVED"),
                               leaves)))
    assert world.beta.client.item(signed.header.id, item)["status"] == "RECEIVED"


def test_document_header_with_a_count_past_sqlite_integer(world: World) -> None:
    doc = manifest(world.alpha_key, unique("M-COUNT63"))
    world.refused_in_chain(resigned(world.alpha_key, doc, count=2**63), "bad_header")


def test_declared_entry_with_a_bin_value_in_its_data_is_refused(world: World) -> None:
    """Stored, its item page failed to render as JSON (a 500 on every read)."""
    item = Item(id="X-1", data={"note": "sample"})
    leaf = codec.encode({"data": {"photo": b"\x89PNG"}, "i": 0, "id": item.id,
                         "salt": os.urandom(16)})
    header = documents.DocumentHeader(
        type="manifest", id=unique("M-BINDATA"), issuer="alpha",
        issuer_key=world.alpha_key.key_id, recipient="beta", created=now_ms(), count=1,
        root=merkle.MerkleTree.from_leaves([leaf]).root, meta={})
    data = codec.encode(header.to_map())
    payload = codec.encode({"chunk": 1, "doc": {"header": data, "sig": world.alpha_key.sign(
        documents.TAG_DOCUMENT, data)}, "entries": [leaf], "first": 0, "proof": []})
    world.refused_in_chain(payload, "bad_entry")


@pytest.mark.parametrize("field", ["chunk", "first"])
def test_chunk_size_or_position_given_as_a_boolean(world: World, field: str) -> None:
    """msgpack ``true`` is not the integer 1 (PROTOCOL.md §2.1), nor ``false`` 0."""
    payload = codec.decode(one_chunk(manifest(world.alpha_key, unique("M-BOOL"), n=1)))
    value = {"chunk": True, "first": False}[field]
    world.refused_in_chain(codec.encode(payload | {field: value}), "bad_chunk")


def test_declared_count_of_five_thousand_digits_leaves_the_reconciliation_readable(
        world: World) -> None:
    """Text in meta is JSON data, so it is taken; the reconciliation read it as a count with
    ``int()``, which raises past 4,300 digits: a 500 on every ``/v1/reconcile`` after."""
    doc = manifest(world.alpha_key, unique("M-DIGITS"))
    world.accept(resigned(world.alpha_key, doc, meta={"declared": "9" * 5000}))
    report = world.beta.client.reconcile()
    assert report

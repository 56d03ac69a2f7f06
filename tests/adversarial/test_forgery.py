"""Authentication (PROTOCOL.md §5.5): tampered headers, ciphertexts and signatures, keys nobody
pinned, the right key for the wrong recipient, headers moved between envelopes, and signatures
made for something else. Every authentication failure gets the same opaque answer."""

from __future__ import annotations

import os

import pytest

from bridge.core import codec
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    TAG_IDENTITY,
    TAG_KEY_REVOCATION,
    TAG_KEY_ROTATION,
    TAG_TRANSPORT_RECEIPT,
    PrivateIdentity,
)

from .hostile import (
    Check,
    World,
    flip,
    header_bytes,
    hpke_seal,
    manifest,
    now_ms,
    one_chunk,
    parts,
    reassemble,
    sign_as_envelope,
    store_holds,
    unique,
    x25519_of,
)

UNAUTH = (None, None, "unauthenticated", 0)


def payload(world: World) -> bytes:
    return one_chunk(manifest(world.alpha_key, unique("M-FORGE")))


def sealed(world: World) -> bytes:
    """A genuine envelope from alpha, never sent: the raw material for tampering. Its seq is
    far ahead, so if anything wrongly let it through it would still not be accepted."""
    return world.forger.seal(payload(world), seq=world.forger.seq + 50).data


def opaque(world: World, data: bytes) -> None:
    with store_holds(world.beta, world.view, Check(refusals=[UNAUTH])):
        world.expect(data, status=403, result="rejected", reason="unauthenticated", opaque=True)


# --------------------------------------------------------------- header fields, one by one


def _gamma(world: World) -> dict[str, object]:
    return {"from": "gamma", "from_key": world.gamma_key.key_id, "to": "gamma",
            "to_key": world.gamma_key.key_id}


HEADER_FIELDS = {
    # field: (a new value, given the world; expected status and reason)
    "v": (lambda w: 2, 400, "bad_header"),
    "suite": (lambda w: [32, 1, 1], 400, "suite"),
    "from": (lambda w: "gamma", 403, "unauthenticated"),
    "from_key": (lambda w: w.gamma_key.key_id, 403, "unauthenticated"),
    "to": (lambda w: "gamma", 400, "wrong_recipient"),
    "to_key": (lambda w: w.gamma_key.key_id, 400, "wrong_recipient"),
    "id": (lambda w: os.urandom(16), 403, "unauthenticated"),
    "seq": (lambda w: 7, 403, "unauthenticated"),
    "prev": (lambda w: os.urandom(32), 403, "unauthenticated"),
    "at": (lambda w: now_ms() - 60_000, 403, "unauthenticated"),  # back-dated, in range
    "kind": (lambda w: "key-revocation", 403, "unauthenticated"),
    "extra": (lambda w: "field", 400, "bad_header"),
}


@pytest.mark.parametrize("field", list(HEADER_FIELDS))
def test_tampered_header_field_keeping_the_signature(world: World, field: str) -> None:
    new_value, status, reason = HEADER_FIELDS[field]
    data = sealed(world)
    h = codec.encode(codec.decode(parts(data)["h"]) | {field: new_value(world)})
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, reason, 0)])):
        world.expect(reassemble(data, h=h), status=status, result="rejected", reason=reason,
                     opaque=status == 403)


# --------------------------------------------------------------- byte regions, every byte


REGIONS = ("header", "ciphertext:enc", "ciphertext:body", "ciphertext:tag", "signature:R",
           "signature:S")


@pytest.mark.parametrize("region", REGIONS)
def test_flipped_bytes_in_each_region_are_never_accepted(world: World, region: str) -> None:
    """One bit flipped at a time, at every byte of the region (every 7th in the ciphertext's
    body): never accepted, never in the chain; a signature or ciphertext flip is the opaque
    answer, a header flip is that or a decoding refusal that echoes nothing."""
    data = sealed(world)
    p = parts(data)
    c, h, s = p["c"], p["h"], p["s"]
    name, _, part = region.partition(":")
    if name == "header":
        at, field, blob = range(len(h)), "h", h
    elif name == "signature":
        at, field, blob = (range(0, 32) if part == "R" else range(32, 64)), "s", s
    else:
        span = {"enc": range(0, 32), "body": range(32, len(c) - 16, 7),
                "tag": range(len(c) - 16, len(c))}[part]
        at, field, blob = span, "c", c
    outcomes: set[tuple[int, str | None]] = set()
    before = world.view.snapshot()
    refusals = world.view.refusals().total()
    sent = 0
    for i in at:
        reply = world.post(reassemble(data, **{field: flip(blob, i)}))
        got = world.answer(reply)
        assert got.result == "rejected" and reply.status in (400, 403), (i, reply.status, got)
        assert (got.sender, got.message_id, got.seq) == (None, None, None), (i, got)
        if reply.status == 403:
            assert got.reason == "unauthenticated", (i, got)
        outcomes.add((reply.status, got.reason))
        sent += 1
    if name != "header":
        assert outcomes == {(403, "unauthenticated")}
    assert world.view.snapshot() == before
    assert world.view.refusals().total() == refusals + sent  # each counted once
    world.beta.client.health()


def test_truncated_signature_is_opaque(world: World) -> None:
    data = sealed(world)
    opaque(world, reassemble(data, s=parts(data)["s"][:63]))


def test_signature_of_another_envelope_is_opaque(world: World) -> None:
    a, b = sealed(world), sealed(world)
    opaque(world, reassemble(a, s=parts(b)["s"]))


# --------------------------------------------------------------- keys


def test_envelope_signed_by_an_unknown_key_is_opaque(world: World) -> None:
    mallory_doc = one_chunk(manifest(world.mallory, unique("M-MAL")))
    opaque(world, world.forger.seal(mallory_doc, me=world.mallory).data)


def test_impostor_with_a_pinned_name_and_its_own_keys_is_opaque(world: World) -> None:
    impostor = PrivateIdentity.generate("alpha", created=now_ms())
    opaque(world, world.forger.seal(one_chunk(manifest(impostor, unique("M-IMP"))),
                                    me=impostor).data)


def test_pinned_key_claimed_under_another_pinned_name_is_opaque(world: World) -> None:
    """gamma's real key, with the header saying it is alpha's."""
    h = header_bytes(world.gamma_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev, **{"from": "alpha"})
    c = hpke_seal(payload(world), x25519_of(world.beta_pub), h)
    opaque(world, sign_as_envelope(world.gamma_key, h, c))


# --------------------------------------------------------------- the wrong recipient


def test_right_key_sealed_and_addressed_to_another_party_is_the_wrong_recipient(
        world: World) -> None:
    to_gamma = world.forger.seal(payload(world), to=world.gamma_pub).data
    with store_holds(world.beta, world.view,
                     Check(refusals=[(None, None, "wrong_recipient", 0)])):
        world.expect(to_gamma, status=400, result="rejected", reason="wrong_recipient")


def test_right_key_addressed_to_beta_but_sealed_to_another_partys_key_is_opaque(
        world: World) -> None:
    h = header_bytes(world.alpha_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev)
    c = hpke_seal(payload(world), x25519_of(world.gamma_pub), h)
    opaque(world, sign_as_envelope(world.alpha_key, h, c))


def test_addressed_to_a_beta_key_beta_does_not_hold_is_the_wrong_recipient(
        world: World) -> None:
    other_beta = PrivateIdentity.generate("beta", created=now_ms())
    data = world.forger.seal(payload(world), to=other_beta.public).data
    with store_holds(world.beta, world.view,
                     Check(refusals=[(None, None, "wrong_recipient", 0)])):
        world.expect(data, status=400, result="rejected", reason="wrong_recipient")


# --------------------------------------------------------------- headers moved around


def test_readdressed_header_from_another_envelope_is_opaque(world: World) -> None:
    """Envelope A's header on envelope B's ciphertext and signature."""
    a, b = sealed(world), sealed(world)
    opaque(world, reassemble(b, h=parts(a)["h"]))


def test_ciphertext_for_gamma_readdressed_to_beta_and_re_signed_is_opaque(
        world: World) -> None:
    """alpha's key (stolen, or alpha's own bug) re-signs a ciphertext sealed to gamma under a
    header addressed to beta: the signature holds, the HPKE open does not (the header is in
    ``info``, and the key is gamma's)."""
    to_gamma = world.forger.seal(payload(world), to=world.gamma_pub).data
    h = header_bytes(world.alpha_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev)
    opaque(world, sign_as_envelope(world.alpha_key, h, parts(to_gamma)["c"]))


def test_ciphertext_moved_under_a_new_header_to_beta_and_re_signed_is_opaque(
        world: World) -> None:
    """A genuine ciphertext for beta, under another (re-signed) header for beta: the first
    header is bound into HPKE's info, so it does not open."""
    original = sealed(world)
    h = header_bytes(world.alpha_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev)
    opaque(world, sign_as_envelope(world.alpha_key, h, parts(original)["c"]))


# --------------------------------------------------------------- signatures for other things


@pytest.mark.parametrize("tag", [TAG_TRANSPORT_RECEIPT, TAG_DOCUMENT, TAG_KEY_ROTATION,
                                 TAG_KEY_REVOCATION, TAG_IDENTITY],
                         ids=lambda t: t.decode().rsplit("/", 1)[1])
def test_signature_made_for_another_purpose_presented_as_an_envelope_signature(
        world: World, tag: bytes) -> None:
    """alpha's real key, over the very bytes an envelope signature covers, but under another
    domain-separation tag: a receipt or document signature is never an envelope's."""
    h = header_bytes(world.alpha_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev)
    c = hpke_seal(payload(world), x25519_of(world.beta_pub), h)
    opaque(world, sign_as_envelope(world.alpha_key, h, c, tag=tag))


def test_document_signature_over_the_header_presented_as_the_envelope_signature(
        world: World) -> None:
    """The signature alpha made on a document header, lifted into an envelope."""
    doc = manifest(world.alpha_key, unique("M-LIFT"))
    h = header_bytes(world.alpha_key, world.beta_pub, seq=world.forger.seq + 1,
                     prev=world.forger.prev)
    c = hpke_seal(one_chunk(doc), x25519_of(world.beta_pub), h)
    opaque(world, codec.encode({"c": c, "h": h, "s": doc.signed.signature}))


def test_beta_s_own_transport_receipt_posted_back_as_an_envelope(world: World) -> None:
    _, receipt = world.accept(payload(world))
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, "not_envelope", 0)])):
        world.expect(receipt, status=400, result="rejected", reason="not_envelope")

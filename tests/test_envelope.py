"""bridge.core.envelope: seal/open, and every way an attacker might get an envelope accepted.

Forged envelopes are assembled here from the wire format written in the module docstring
(PROTOCOL.md §5), not from private helpers, so these tests also pin that format.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import msgpack
import pytest
from conftest import make_identity
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from bridge.core import codec
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    TAG_ENVELOPE,
    TAG_HPKE_INFO,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    signed_message,
)
from bridge.core.envelope import (
    ZERO_HASH,
    EnvelopeHeader,
    envelope_hash,
    open_envelope,
    open_parsed,
    parse,
    seal,
)
from bridge.core.errors import DecodeError, OpaqueCryptoError, PeerError

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
PAYLOAD = b"synthetic payload: manifest M-0001, 3 items"
OPAQUE = "envelope could not be authenticated"


def seal_one(sender: PrivateIdentity, recipient: PublicIdentity, *, seq: int = 1,
             payload: bytes = PAYLOAD, message_id: bytes = b"\x01" * 16) -> bytes:
    return seal(sender, recipient, message_id=message_id, seq=seq, prev=ZERO_HASH,
                sent_at=1_767_225_600_000, kind="document", payload=payload).data


def outer(data: bytes) -> dict[str, bytes]:
    value: dict[str, bytes] = codec.decode(data)
    return value


def header_map(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = codec.decode(outer(data)["h"])
    return value


def signed_body(header_bytes: bytes, ciphertext: bytes) -> bytes:
    """PROTOCOL.md §5: u32be(len(h)) || h || SHA-256(c)."""
    return struct.pack(">I", len(header_bytes)) + header_bytes + hashlib.sha256(ciphertext).digest()


def forge(*, header: dict[str, Any], signer: PrivateIdentity, to: PublicIdentity,
          payload: bytes = PAYLOAD, info_header: bytes | None = None,
          sign_tag: bytes = TAG_ENVELOPE) -> bytes:
    """An envelope built by hand: any header, encrypted to ``to``, signed by ``signer``."""
    h = codec.encode(header)
    info = signed_message(TAG_HPKE_INFO, h if info_header is None else info_header)
    c = SUITE.encrypt(payload, X25519PublicKey.from_public_bytes(to.enc_key), info)
    s = signer.sign(sign_tag, signed_body(h, c))
    return codec.encode({"c": c, "h": h, "s": s})


def reassemble(data: bytes, **fields: bytes) -> bytes:
    value = outer(data)
    value.update(fields)
    return codec.encode(value)


def opaque_failure(recipient: PrivateIdentity, ring: Keyring, data: bytes) -> OpaqueCryptoError:
    with pytest.raises(OpaqueCryptoError) as exc:
        open_envelope(recipient, ring, data)
    return exc.value


# ---------------------------------------------------------------- round trip


def test_seal_open_round_trip(alpha: PrivateIdentity, beta: PrivateIdentity,
                              keyring: Keyring) -> None:
    env = seal(alpha, beta.public, message_id=b"\x07" * 16, seq=3, prev=b"\x22" * 32,
               sent_at=1_767_225_600_123, kind="ack", payload=PAYLOAD)
    assert env.digest == envelope_hash(env.data) == hashlib.sha256(env.data).digest()
    opened = open_envelope(beta, keyring, env.data)
    assert opened.payload == PAYLOAD
    assert opened.header == env.header
    assert opened.digest == env.digest
    assert opened.sender == alpha.public
    h = opened.header
    assert (h.sender, h.recipient, h.seq, h.prev, h.kind) == ("alpha", "beta", 3, b"\x22" * 32,
                                                             "ack")
    assert (h.sender_key, h.recipient_key) == (alpha.key_id, beta.key_id)


def test_envelope_opened_with_the_digest_its_caller_took_is_the_envelope_opened_alone(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    """The receiver hashes an envelope's bytes once (its chain link) and hands the digest to
    ``open_parsed``, which then does not hash them again: the same envelope either way, and
    the same refusal of a tampered one."""
    env = seal(alpha, beta.public, message_id=b"\x07" * 16, seq=3, prev=b"\x22" * 32,
               sent_at=1_767_225_600_123, kind="ack", payload=PAYLOAD)
    given = open_parsed(beta, keyring, env.data, parse(env.data), digest=envelope_hash(env.data))
    assert given == open_parsed(beta, keyring, env.data, parse(env.data))
    assert given.digest == env.digest
    tampered = env.data[:-1] + bytes([env.data[-1] ^ 1])
    with pytest.raises(OpaqueCryptoError):
        open_parsed(beta, keyring, tampered, parse(tampered), digest=envelope_hash(tampered))


@pytest.mark.parametrize("size", [0, 1, 100_000])
def test_round_trip_payload_sizes(alpha: PrivateIdentity, beta: PrivateIdentity,
                                  keyring: Keyring, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    assert open_envelope(beta, keyring, seal_one(alpha, beta.public, payload=payload)
                         ).payload == payload


def test_payload_is_not_in_the_clear(alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    assert PAYLOAD not in seal_one(alpha, beta.public)


def test_sealing_twice_gives_different_ciphertexts(alpha: PrivateIdentity,
                                                   beta: PrivateIdentity) -> None:
    """HPKE's ephemeral key is fresh each time: equal payloads are not linkable."""
    a, b = seal_one(alpha, beta.public), seal_one(alpha, beta.public)
    assert outer(a)["h"] == outer(b)["h"]
    assert outer(a)["c"] != outer(b)["c"]


def test_wire_form_is_canonical_map_of_c_h_s(alpha: PrivateIdentity,
                                             beta: PrivateIdentity) -> None:
    data = seal_one(alpha, beta.public)
    value = outer(data)
    assert set(value) == {"c", "h", "s"}
    assert codec.encode(value) == data
    assert alpha.public.verify(TAG_ENVELOPE, signed_body(value["h"], value["c"]), value["s"])
    header, header_bytes, ciphertext, signature = parse(data)
    assert header_bytes == value["h"] and ciphertext == value["c"] and signature == value["s"]
    assert EnvelopeHeader.from_bytes(header_bytes) == header


def test_hand_built_envelope_matches_the_documented_format(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    """An independent implementation of PROTOCOL.md §5 produces envelopes that open."""
    data = forge(header=header_map(seal_one(alpha, beta.public)), signer=alpha, to=beta.public)
    assert open_envelope(beta, keyring, data).payload == PAYLOAD


# ---------------------------------------------------------------- who may open


def test_open_refuses_wrong_recipient(alpha: PrivateIdentity, beta: PrivateIdentity,
                                      mallory: PrivateIdentity) -> None:
    data = seal_one(alpha, beta.public)
    ring = Keyring.of([alpha.public, mallory.public])
    with pytest.raises(PeerError) as exc:
        open_envelope(mallory, ring, data)
    assert exc.value.reason == "wrong_recipient"


def test_open_refuses_recipient_key_of_an_older_identity(alpha: PrivateIdentity,
                                                         keyring: Keyring) -> None:
    """Same party name, other keys (e.g. after a rotation): the key id decides."""
    old_beta = make_identity("beta", seed="beta-old")
    data = seal_one(alpha, old_beta.public)
    with pytest.raises(PeerError) as exc:
        open_envelope(make_identity("beta"), keyring, data)
    assert exc.value.reason == "wrong_recipient"


def test_open_refuses_unknown_sender_key(alpha: PrivateIdentity, beta: PrivateIdentity,
                                         mallory: PrivateIdentity) -> None:
    data = seal_one(mallory, beta.public)
    err = opaque_failure(beta, Keyring.of([alpha.public, beta.public]), data)
    assert "not pinned" in err.detail


def test_open_refuses_sender_party_mismatch(alpha: PrivateIdentity, beta: PrivateIdentity,
                                            mallory: PrivateIdentity) -> None:
    """mallory, pinned by beta, signs with her own key but claims to be alpha."""
    h = header_map(seal_one(mallory, beta.public))
    h["from"] = "alpha"
    data = forge(header=h, signer=mallory, to=beta.public)
    err = opaque_failure(beta, Keyring.of([alpha.public, mallory.public]), data)
    assert "belongs to mallory" in err.detail


def test_open_refuses_signature_by_another_pinned_key(
        alpha: PrivateIdentity, beta: PrivateIdentity, mallory: PrivateIdentity) -> None:
    """mallory names alpha and alpha's key id, and signs with her own (also pinned) key."""
    h = header_map(seal_one(alpha, beta.public))
    data = forge(header=h, signer=mallory, to=beta.public)
    err = opaque_failure(beta, Keyring.of([alpha.public, mallory.public]), data)
    assert "does not verify" in err.detail


def test_open_refuses_signature_made_under_another_tag(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    """A document signature over the same bytes is not an envelope signature."""
    h = header_map(seal_one(alpha, beta.public))
    data = forge(header=h, signer=alpha, to=beta.public, sign_tag=TAG_DOCUMENT)
    assert "does not verify" in opaque_failure(beta, keyring, data).detail


# ---------------------------------------------------------------- tampering


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


def test_open_refuses_tampered_header_byte(alpha: PrivateIdentity, beta: PrivateIdentity,
                                           keyring: Keyring) -> None:
    data = seal_one(alpha, beta.public, message_id=b"\x5a" * 16)
    h = outer(data)["h"]
    at = h.index(b"\x5a" * 16)  # a byte of the message id: the header stays well formed
    err = opaque_failure(beta, keyring, reassemble(data, h=_flip(h, at)))
    assert "does not verify" in err.detail


@pytest.mark.parametrize("field", ["seq", "at", "prev", "kind"])
def test_open_refuses_header_field_changed(alpha: PrivateIdentity, beta: PrivateIdentity,
                                           keyring: Keyring, field: str) -> None:
    """Re-sequencing, back-dating, re-chaining or re-labelling a genuine envelope."""
    data = seal_one(alpha, beta.public)
    h = header_map(data)
    h[field] = {"seq": 2, "at": h["at"] - 1, "prev": b"\x01" * 32, "kind": "ack"}[field]
    err = opaque_failure(beta, keyring, reassemble(data, h=codec.encode(h)))
    assert "does not verify" in err.detail


def test_every_header_byte_flip_is_refused(alpha: PrivateIdentity, beta: PrivateIdentity,
                                           keyring: Keyring) -> None:
    data = seal_one(alpha, beta.public)
    h = outer(data)["h"]
    for i in range(len(h)):
        with pytest.raises(PeerError):
            open_envelope(beta, keyring, reassemble(data, h=_flip(h, i)))


@pytest.mark.parametrize("where", [0, 31, 32, 100, -1], ids=["enc_first", "enc_last",
                                                             "ct_first", "ct_middle", "tag_last"])
def test_open_refuses_tampered_ciphertext_byte(alpha: PrivateIdentity, beta: PrivateIdentity,
                                               keyring: Keyring, where: int) -> None:
    data = seal_one(alpha, beta.public)
    c = outer(data)["c"]
    err = opaque_failure(beta, keyring, reassemble(data, c=_flip(c, where % len(c))))
    assert "does not verify" in err.detail


@pytest.mark.parametrize("where", [0, 31, 32, 63])
def test_open_refuses_tampered_signature_byte(alpha: PrivateIdentity, beta: PrivateIdentity,
                                              keyring: Keyring, where: int) -> None:
    data = seal_one(alpha, beta.public)
    s = outer(data)["s"]
    err = opaque_failure(beta, keyring, reassemble(data, s=_flip(s, where)))
    assert "does not verify" in err.detail


@pytest.mark.parametrize("sig", [b"", b"\x00" * 63, b"\x00" * 65, b"\x00" * 64])
def test_open_refuses_malformed_signature(alpha: PrivateIdentity, beta: PrivateIdentity,
                                          keyring: Keyring, sig: bytes) -> None:
    opaque_failure(beta, keyring, reassemble(seal_one(alpha, beta.public), s=sig))


def test_open_refuses_header_swapped_from_another_envelope(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    """Header of envelope 2 with ciphertext and signature of envelope 1."""
    one = seal_one(alpha, beta.public, seq=1)
    two = seal_one(alpha, beta.public, seq=2, message_id=b"\x02" * 16)
    err = opaque_failure(beta, keyring, reassemble(one, h=outer(two)["h"]))
    assert "does not verify" in err.detail


def test_open_refuses_ciphertext_swapped_from_another_envelope(
        alpha: PrivateIdentity, beta: PrivateIdentity, keyring: Keyring) -> None:
    one = seal_one(alpha, beta.public, seq=1)
    two = seal_one(alpha, beta.public, seq=2, payload=b"other")
    opaque_failure(beta, keyring, reassemble(one, c=outer(two)["c"]))


def test_open_refuses_readdressed_ciphertext(alpha: PrivateIdentity, beta: PrivateIdentity,
                                             keyring: Keyring) -> None:
    """The sender re-signs a ciphertext made for one header under another (say, a later
    sequence number): the signature holds, but HPKE's info binds the original header."""
    original = seal_one(alpha, beta.public, seq=1)
    h = header_map(original)
    h["seq"] = 9
    data = forge(header=h, signer=alpha, to=beta.public, info_header=outer(original)["h"])
    err = opaque_failure(beta, keyring, data)
    assert "HPKE open failed" in err.detail


def test_open_refuses_ciphertext_for_another_recipient_key(
        alpha: PrivateIdentity, beta: PrivateIdentity, mallory: PrivateIdentity,
        keyring: Keyring) -> None:
    """Correct header and signature, but encrypted to someone else's key."""
    h = header_map(seal_one(alpha, beta.public))
    data = forge(header=h, signer=alpha, to=mallory.public)
    assert "HPKE open failed" in opaque_failure(beta, keyring, data).detail


def test_all_authentication_failures_say_the_same_thing(
        alpha: PrivateIdentity, beta: PrivateIdentity, mallory: PrivateIdentity) -> None:
    """One opaque answer outside; the detail differs, for the local log only."""
    ring = Keyring.of([alpha.public, mallory.public])
    good = seal_one(alpha, beta.public)
    h = header_map(good)
    claims_alpha = dict(header_map(seal_one(mallory, beta.public)), **{"from": "alpha"})
    later = dict(h, seq=9)
    stranger = make_identity("stranger")
    cases = {
        "unknown_sender": seal_one(stranger, beta.public),
        "party_mismatch": forge(header=claims_alpha, signer=mallory, to=beta.public),
        "other_pinned_key": forge(header=h, signer=mallory, to=beta.public),
        "tampered_ciphertext": reassemble(good, c=_flip(outer(good)["c"], 40)),
        "tampered_signature": reassemble(good, s=_flip(outer(good)["s"], 3)),
        "hpke_failure": forge(header=later, signer=alpha, to=beta.public,
                              info_header=outer(good)["h"]),
    }
    errors = {name: opaque_failure(beta, ring, data) for name, data in cases.items()}
    assert {str(e) for e in errors.values()} == {OPAQUE}
    assert {e.reason for e in errors.values()} == {"unauthenticated"}
    assert {e.code for e in errors.values()} == {"unauthenticated"}
    # An unknown sender is named by the fingerprint its operator would read out (PROTOCOL §4.2).
    expected = {"unknown_sender": f"sender stranger with key fingerprint "
                                  f"{stranger.public.fingerprint} is not pinned",
                "party_mismatch": "belongs to mallory",
                "other_pinned_key": "does not verify", "tampered_ciphertext": "does not verify",
                "tampered_signature": "does not verify", "hpke_failure": "HPKE open failed"}
    for name, err in errors.items():
        assert expected[name] in err.detail, name
        assert err.detail not in str(err)
    assert len({e.detail for e in errors.values()}) == 4


# ---------------------------------------------------------------- framing and limits


def test_open_refuses_truncated_envelope(alpha: PrivateIdentity, beta: PrivateIdentity,
                                         keyring: Keyring) -> None:
    data = seal_one(alpha, beta.public)
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        with pytest.raises(DecodeError) as exc:
            open_envelope(beta, keyring, data[:cut])
        assert exc.value.reason == "truncated"


def test_open_refuses_trailing_bytes(alpha: PrivateIdentity, beta: PrivateIdentity,
                                     keyring: Keyring) -> None:
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, seal_one(alpha, beta.public) + b"\x00")
    assert exc.value.reason == "trailing"


def test_open_refuses_envelope_beyond_limits(alpha: PrivateIdentity, beta: PrivateIdentity,
                                             keyring: Keyring) -> None:
    data = seal_one(alpha, beta.public, payload=b"x" * 10_000)
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, data, limits=codec.Limits(max_bytes=5_000))
    assert exc.value.reason == "too_large"
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, data, limits=codec.Limits(max_bin=5_000))
    assert exc.value.reason == "too_large"


def test_oversized_header_refused(alpha: PrivateIdentity, beta: PrivateIdentity,
                                  keyring: Keyring) -> None:
    """Headers are decoded with the small limits, whatever limits the outer map allows."""
    h = dict(header_map(seal_one(alpha, beta.public)), kind="k" * 70_000)
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, forge(header=h, signer=alpha, to=beta.public))
    assert exc.value.reason == "too_large"


@pytest.mark.parametrize("extra", [{"x": b""}, {"v": b"\x01"}, {"sig2": b"\x00" * 64}])
def test_open_refuses_extra_outer_keys(alpha: PrivateIdentity, beta: PrivateIdentity,
                                       keyring: Keyring, extra: dict[str, bytes]) -> None:
    data = reassemble(seal_one(alpha, beta.public), **extra)
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, data)
    assert exc.value.reason == "not_envelope"


@pytest.mark.parametrize("value", [
    [b"c", b"h", b"s"], {"c": b"", "h": b""}, {"c": "text", "h": b"", "s": b""},
    {"c": b"", "h": b"", "s": None}, b"just bytes",
], ids=["array", "missing_s", "c_as_str", "s_nil", "bin"])
def test_open_refuses_wrong_outer_shape(beta: PrivateIdentity, keyring: Keyring,
                                        value: Any) -> None:
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, codec.encode(value))
    assert exc.value.reason == "not_envelope"


def test_open_refuses_non_canonical_outer_map(alpha: PrivateIdentity, beta: PrivateIdentity,
                                              keyring: Keyring) -> None:
    """Same fields, keys out of order: a second byte form would be a second envelope hash."""
    v = outer(seal_one(alpha, beta.public))
    data = msgpack.packb({"s": v["s"], "h": v["h"], "c": v["c"]}, use_bin_type=True)
    with pytest.raises(DecodeError) as exc:
        open_envelope(beta, keyring, data)
    assert exc.value.reason == "not_canonical"


@pytest.mark.parametrize(("changes", "why"), [
    ({"v": 2}, "version"),
    ({"extra": 1}, "unknown field"),
    ({"seq": 0}, "seq starts at 1"),
    ({"seq": -1}, "negative seq"),
    ({"seq": True}, "bool seq"),
    ({"at": -5}, "negative time"),
    ({"id": b"\x00" * 15}, "short id"),
    ({"prev": b"\x00" * 31}, "short prev"),
    ({"from_key": "alpha"}, "key as str"),
    ({"to": "Beta!"}, "bad party"),
    ({"kind": ""}, "empty kind"),
    ({"kind": "k" * 33}, "long kind"),
    ({"suite": [0x20, 1, 1]}, "unknown suite"),
    ({"suite": [0x20, 1]}, "short suite"),
    ({"v": True}, "bool version"),
    ({"suite": [0x20, True, 3]}, "bool in suite"),
    ({"suite": [0x20, [1], 3]}, "list in suite"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_open_refuses_malformed_headers(alpha: PrivateIdentity, beta: PrivateIdentity,
                                        keyring: Keyring, changes: dict[str, Any],
                                        why: str) -> None:
    h = dict(header_map(seal_one(alpha, beta.public)), **changes)
    data = forge(header=h, signer=alpha, to=beta.public)
    with pytest.raises(PeerError) as exc:
        open_envelope(beta, keyring, data)
    assert not isinstance(exc.value, OpaqueCryptoError)
    assert exc.value.reason in {"bad_header", "suite"}


def test_header_requires_all_fields(alpha: PrivateIdentity, beta: PrivateIdentity,
                                    keyring: Keyring) -> None:
    h = header_map(seal_one(alpha, beta.public))
    del h["prev"]
    with pytest.raises(PeerError) as exc:
        open_envelope(beta, keyring, forge(header=h, signer=alpha, to=beta.public))
    assert exc.value.reason == "bad_header"

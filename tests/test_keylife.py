"""Rotation and revocation statements: each attack named after what it tries."""

from __future__ import annotations

import pytest

from bridge.core import codec, keylife
from bridge.core.crypto.identity import TAG_KEY_ROTATION, PrivateIdentity
from bridge.core.errors import BridgeError, VerificationError


def ident(party: str, seed: int) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=seed,
                                    random_bytes=lambda n: bytes([seed]) * n)


OLD, NEW, MALLORY = ident("alpha", 1), ident("alpha", 2), ident("alpha", 3)


def reason(fn: object, *args: object) -> str:
    with pytest.raises(VerificationError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.reason


def test_rotation_round_trip() -> None:
    data = keylife.make_rotation(OLD, NEW, at=10)
    rotation = keylife.parse_rotation(data, OLD.public)
    assert rotation.new.key_id == NEW.key_id and rotation.old_key == OLD.key_id
    assert keylife.statement_key_id(data) == (keylife.ROTATION, OLD.key_id)


def test_rotation_onto_a_thiefs_key_needs_the_old_signature() -> None:
    # Mallory signs a rotation of alpha's key onto her own, with her key in the old slot.
    forged = keylife.make_rotation(MALLORY, NEW, at=10)
    assert reason(keylife.parse_rotation, forged, OLD.public) == "wrong_key"


def test_rotation_without_the_new_keys_consent_refused() -> None:
    data = codec.decode(keylife.make_rotation(OLD, NEW, at=10))
    data["new_sig"] = MALLORY.sign(TAG_KEY_ROTATION, data["r"])
    assert reason(keylife.parse_rotation, codec.encode(data), OLD.public) == "bad_signature"


def test_rotation_with_a_flipped_statement_byte_refused() -> None:
    data = codec.decode(keylife.make_rotation(OLD, NEW, at=10))
    r = bytearray(data["r"])
    r[-1] ^= 1
    data["r"] = bytes(r)
    with pytest.raises(BridgeError):
        keylife.parse_rotation(codec.encode(data), OLD.public)


def test_rotation_to_another_party_refused() -> None:
    with pytest.raises(ValueError):
        keylife.make_rotation(OLD, ident("beta", 4), at=10)


def test_revocation_round_trip_and_only_by_the_key_itself() -> None:
    data = keylife.make_revocation(OLD, since=5, at=10, reason="stolen")
    revocation = keylife.parse_revocation(data, OLD.public)
    assert (revocation.since, revocation.reason) == (5, "stolen")
    assert keylife.is_revocation_file(data)
    assert reason(keylife.parse_revocation, data, NEW.public) == "wrong_key"
    forged = codec.decode(keylife.make_revocation(MALLORY, since=5, at=10, reason="x"))
    genuine = codec.decode(data)
    forged["r"] = genuine["r"]  # Mallory's signature over alpha's statement
    assert reason(keylife.parse_revocation, codec.encode(forged), OLD.public) == "bad_signature"


def test_rotation_signature_is_not_a_revocation_signature() -> None:
    # Domain separation: the same key's rotation signature cannot stand for a revocation.
    rotation = codec.decode(keylife.make_rotation(OLD, NEW, at=10))
    fake = codec.encode({"r": rotation["r"], "sig": rotation["old_sig"]})
    assert reason(keylife.parse_revocation, fake, OLD.public) == "bad_key_statement"


def test_garbage_is_not_a_statement() -> None:
    for junk in (b"", b"\x00", codec.encode({"r": b"x"}), codec.encode([1, 2])):
        with pytest.raises(BridgeError):
            keylife.statement_key_id(junk)
        assert not keylife.is_revocation_file(junk)

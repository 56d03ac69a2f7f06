"""bridge.core.crypto.identity: key pairs, identity and key files' text, fingerprints,
domain-separated signatures (the files on disk: test_key_files)."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from conftest import CREATED, make_identity

from bridge.core import codec
from bridge.core.crypto import identity
from bridge.core.crypto.identity import (
    TAG_IDENTITY,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    check_party,
    format_fingerprint,
    normalise_fingerprint,
    signed_message,
    verify_signature,
)
from bridge.core.errors import BridgeError, UsageError, VerificationError

ALL_TAGS = [getattr(identity, name) for name in dir(identity) if name.startswith("TAG_")]


def statement_map(ident: PrivateIdentity, **changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = codec.decode(ident.public.statement)
    value.update(changes)
    return value


def self_signed(ident: PrivateIdentity, value: dict[str, Any]) -> tuple[bytes, bytes]:
    """A statement with the given content, validly self-signed by ``ident``'s signing key."""
    statement = codec.encode(value)
    return statement, ident.sign(TAG_IDENTITY, statement)


# ---------------------------------------------------------------- generation


def test_generate_is_deterministic_with_fixed_randomness() -> None:
    a1, a2 = make_identity("alpha"), make_identity("alpha")
    assert a1.key_id == a2.key_id
    assert a1.public.statement == a2.public.statement
    assert make_identity("alpha", seed="other").key_id != a1.key_id


def test_generated_identity_fields(alpha: PrivateIdentity) -> None:
    pub = alpha.public
    assert pub.party == "alpha"
    assert pub.created == CREATED
    assert pub.suite == identity.SUITE_X25519_CHACHA
    assert len(pub.sign_key) == 32 and len(pub.enc_key) == 32 and len(pub.key_id) == 32
    # 160 bits in base32 is 32 characters, read aloud in 8 groups of 4.
    assert len(pub.fingerprint.split()) == 8
    assert all(len(g) == 4 for g in pub.fingerprint.split())


def test_generate_with_os_randomness_differs() -> None:
    a = PrivateIdentity.generate("alpha", created=CREATED)
    b = PrivateIdentity.generate("alpha", created=CREATED)
    assert a.key_id != b.key_id


@pytest.mark.parametrize("party", ["", "Alpha", "-alpha", "al pha", "a" * 64, "ålpha", "a/b",
                                   "alpha\n", "alpha\n[peers.x]"])
def test_bad_party_names_refused(party: str) -> None:
    with pytest.raises(BridgeError) as exc:
        PrivateIdentity.generate(party, created=CREATED)
    assert "party" in str(exc.value)


def test_party_name_rules() -> None:
    assert check_party("a") == "a"
    assert check_party("commission-2_b") == "commission-2_b"
    assert check_party("a" * 63) == "a" * 63


def test_private_repr_shows_no_secrets(alpha: PrivateIdentity) -> None:
    text = repr(alpha)
    assert "alpha" in text
    assert alpha._secret_bytes().hex() not in text
    assert base64.b64encode(alpha._secret_bytes()).decode() not in text


# ---------------------------------------------------------------- public identity files


def test_public_dumps_loads_round_trip(alpha: PrivateIdentity) -> None:
    loaded = PublicIdentity.loads(alpha.public.dumps())
    assert loaded == alpha.public
    assert loaded.key_id == alpha.key_id


def _tampered(alpha: PrivateIdentity, **changes: Any) -> str:
    data = alpha.public.to_json()
    data.update(changes)
    return json.dumps(data)


def test_identity_file_with_party_changed_refused(alpha: PrivateIdentity) -> None:
    with pytest.raises(VerificationError, match="readable party or fingerprint"):
        PublicIdentity.loads(_tampered(alpha, party="beta"))


def test_identity_file_with_fingerprint_changed_refused(
        alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    with pytest.raises(VerificationError, match="readable party or fingerprint"):
        PublicIdentity.loads(_tampered(alpha, fingerprint=beta.public.fingerprint))


def test_identity_file_fingerprint_in_another_spelling_refused(
        alpha: PrivateIdentity) -> None:
    """A file holds the fingerprint in its one printed form (PROTOCOL §4.3); the spacing and
    case of a typed one are forgiven only where a person types it (§4.2)."""
    typed = alpha.public.fingerprint.replace(" ", "").lower()
    with pytest.raises(VerificationError, match="readable party or fingerprint"):
        PublicIdentity.loads(_tampered(alpha, fingerprint=typed))


def test_identity_file_with_any_statement_byte_flipped_refused(alpha: PrivateIdentity) -> None:
    statement = alpha.public.statement
    for i in range(len(statement)):
        flipped = bytearray(statement)
        flipped[i] ^= 0x01
        text = _tampered(alpha, statement=base64.b64encode(bytes(flipped)).decode())
        with pytest.raises(VerificationError) as exc:
            PublicIdentity.loads(text, source="alpha.pub")
        assert str(exc.value).startswith("alpha.pub: "), (i, str(exc.value))


def test_identity_file_with_signature_swapped_refused(
        alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    text = _tampered(alpha, signature=base64.b64encode(beta.public.signature).decode())
    with pytest.raises(VerificationError) as exc:
        PublicIdentity.loads(text)
    assert exc.value.reason == "bad_signature"


def test_identity_file_with_signature_byte_flipped_refused(alpha: PrivateIdentity) -> None:
    sig = bytearray(alpha.public.signature)
    sig[10] ^= 0x80
    with pytest.raises(VerificationError) as exc:
        PublicIdentity.loads(_tampered(alpha, signature=base64.b64encode(bytes(sig)).decode()))
    assert exc.value.reason == "bad_signature"


def test_identity_file_with_whole_statement_swapped_refused(
        alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """beta's statement and signature, under alpha's readable name and fingerprint."""
    b = beta.public.to_json()
    text = _tampered(alpha, statement=b["statement"], signature=b["signature"])
    with pytest.raises(VerificationError, match="readable party or fingerprint"):
        PublicIdentity.loads(text)


def test_impersonation_by_name_gets_another_fingerprint(
        alpha: PrivateIdentity, mallory: PrivateIdentity) -> None:
    """Anyone can self-sign a statement naming "alpha": only the fingerprint, compared out of
    band, tells the real one. The forged one must never share alpha's key id."""
    statement, sig = self_signed(mallory, statement_map(mallory, party="alpha"))
    forged = PublicIdentity.from_statement(statement, sig)
    assert forged.party == "alpha"
    assert forged.key_id != alpha.key_id
    assert forged.fingerprint != alpha.public.fingerprint


@pytest.mark.parametrize(("changes", "reason"), [
    ({"type": "bridge.rotation"}, "not_identity"),
    ({"v": 2}, "version"),
    ({"extra": 1}, "not_identity"),
    ({"sign_alg": "rsa"}, "not_identity"),
    ({"sign_key": b"\x00" * 31}, "not_identity"),
    ({"suite": [0x20, 1, 1]}, "suite"),
    ({"enc_key": b"\x00" * 33}, "suite"),
    ({"created": "yesterday"}, "not_identity"),
    ({"party": "Not A Party"}, "not_identity"),
    ({"v": True}, "version"),
    ({"suite": [0x20, True, 3]}, "suite"),
    ({"created": False}, "not_identity"),
], ids=["wrong_type", "future_version", "unknown_field", "other_alg", "short_sign_key",
        "unknown_suite", "long_enc_key", "text_time", "bad_party", "bool_version",
        "bool_in_suite", "bool_time"])
def test_odd_statements_refused_even_when_self_signed(
        alpha: PrivateIdentity, changes: dict[str, Any], reason: str) -> None:
    statement, sig = self_signed(alpha, statement_map(alpha, **changes))
    with pytest.raises(VerificationError) as exc:
        PublicIdentity.from_statement(statement, sig)
    assert exc.value.reason == reason


def test_statement_missing_a_field_refused(alpha: PrivateIdentity) -> None:
    value = statement_map(alpha)
    del value["enc_key"]
    statement, sig = self_signed(alpha, value)
    with pytest.raises(VerificationError):
        PublicIdentity.from_statement(statement, sig)


@pytest.mark.parametrize("text", [
    "", "null", "[]", "{}", '{"bridge_identity": 2}', "not json", "[" * 100_000,
    '{"bridge_identity": 1, "statement": 5, "signature": "AA=="}',
    '{"bridge_identity": 1, "statement": "!!!", "signature": "AA=="}',
    '{"bridge_identity": 1, "statement": "AA==", "signature": "AA=="}',
], ids=["empty", "null", "list", "empty_object", "version_2", "not_json", "json_depth_bomb",
        "statement_int", "statement_not_base64", "statement_garbage"])
def test_garbage_identity_files_refused(text: str) -> None:
    with pytest.raises(VerificationError):
        PublicIdentity.loads(text)


# ---------------------------------------------------------------- private key files


def test_private_dumps_loads_round_trip(alpha: PrivateIdentity) -> None:
    loaded = PrivateIdentity.loads(alpha.dumps())
    assert loaded.public == alpha.public
    sig = loaded.sign(b"bridge/test", b"body")
    assert alpha.public.verify(b"bridge/test", b"body", sig)


@pytest.mark.usefixtures("fast_argon2")
def test_sealed_private_round_trip(alpha: PrivateIdentity) -> None:
    text = alpha.dumps(passphrase=b"correct horse")
    doc = json.loads(text)
    assert doc["protection"] == "argon2id-xsalsa20poly1305"
    assert alpha._secret_bytes() not in base64.b64decode(doc["secrets"])
    loaded = PrivateIdentity.loads(text, passphrase=b"correct horse")
    assert loaded.public == alpha.public
    assert loaded._secret_bytes() == alpha._secret_bytes()


@pytest.mark.usefixtures("fast_argon2")
def test_sealed_private_wrong_passphrase_refused(alpha: PrivateIdentity) -> None:
    text = alpha.dumps(passphrase=b"correct horse")
    with pytest.raises(UsageError, match="wrong passphrase"):
        PrivateIdentity.loads(text, passphrase=b"battery staple", source="alpha.key")


@pytest.mark.usefixtures("fast_argon2")
def test_sealed_private_without_passphrase_refused(alpha: PrivateIdentity) -> None:
    with pytest.raises(UsageError, match="passphrase"):
        PrivateIdentity.loads(alpha.dumps(passphrase=b"pw"))


@pytest.mark.usefixtures("fast_argon2")
def test_sealed_private_with_tampered_ciphertext_refused(alpha: PrivateIdentity) -> None:
    doc = json.loads(alpha.dumps(passphrase=b"pw"))
    raw = bytearray(base64.b64decode(doc["secrets"]))
    raw[-1] ^= 1
    doc["secrets"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(UsageError):
        PrivateIdentity.loads(json.dumps(doc), passphrase=b"pw")


def test_private_file_with_someone_elses_secrets_refused(
        alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """A key file whose public part is alpha's but whose secrets are beta's."""
    doc = json.loads(alpha.dumps())
    doc["secrets"] = json.loads(beta.dumps())["secrets"]
    with pytest.raises(UsageError, match="does not match"):
        PrivateIdentity.loads(json.dumps(doc))


def test_private_file_with_tampered_public_statement_refused(alpha: PrivateIdentity) -> None:
    doc = json.loads(alpha.dumps())
    st = bytearray(base64.b64decode(doc["public"]["statement"]))
    st[0] ^= 0xFF
    doc["public"]["statement"] = base64.b64encode(bytes(st)).decode()
    with pytest.raises(UsageError, match=r"^alpha\.key: "):
        PrivateIdentity.loads(json.dumps(doc), source="alpha.key")


@pytest.mark.parametrize("text", [
    "", "{}", '{"bridge_private_key": 2}', "[" * 100_000,
    '{"bridge_private_key": 1, "public": {}, "secrets": "", "protection": "none"}',
], ids=["empty", "empty_object", "version_2", "json_depth_bomb", "empty_public"])
def test_garbage_private_key_files_refused(text: str) -> None:
    with pytest.raises(UsageError):
        PrivateIdentity.loads(text)


def test_private_file_with_unknown_protection_refused(alpha: PrivateIdentity) -> None:
    doc = json.loads(alpha.dumps())
    doc["protection"] = "rot13"
    with pytest.raises(UsageError, match="unknown protection"):
        PrivateIdentity.loads(json.dumps(doc))


# ---------------------------------------------------------------- signatures and tags


def test_tags_are_distinct_and_unambiguous() -> None:
    """tag || 0x00 || body is injective only if no tag contains NUL (the first NUL ends it)."""
    assert len(ALL_TAGS) >= 7
    assert len(set(ALL_TAGS)) == len(ALL_TAGS)
    assert all(b"\x00" not in tag for tag in ALL_TAGS)


def test_signed_message_layout() -> None:
    assert signed_message(b"t", b"body") == b"t\x00body"


@pytest.mark.parametrize(("sign_tag", "verify_tag"), list(itertools.permutations(ALL_TAGS, 2)))
def test_signature_under_one_tag_never_verifies_under_another(
        alpha: PrivateIdentity, sign_tag: bytes, verify_tag: bytes) -> None:
    body = b"the same body bytes"
    sig = alpha.sign(sign_tag, body)
    assert alpha.public.verify(sign_tag, body, sig)
    assert not alpha.public.verify(verify_tag, body, sig)


def test_tag_boundary_cannot_be_shifted(alpha: PrivateIdentity) -> None:
    """Moving bytes between tag and body does not keep a signature valid."""
    sig = alpha.sign(b"bridge/v1/doc", b"ument\x00x")
    assert not alpha.public.verify(b"bridge/v1/document", b"x", sig)


def test_signature_by_another_key_does_not_verify(alpha: PrivateIdentity,
                                                  beta: PrivateIdentity) -> None:
    sig = beta.sign(identity.TAG_DOCUMENT, b"body")
    assert not alpha.public.verify(identity.TAG_DOCUMENT, b"body", sig)


@pytest.mark.parametrize(("key", "sig"), [
    (b"\x00" * 31, b"\x00" * 64), (b"\x00" * 32, b"\x00" * 63), (b"\x00" * 32, b""),
    (b"\xff" * 32, b"\x00" * 64),
], ids=["short_key", "short_sig", "empty_sig", "invalid_point"])
def test_verify_signature_with_malformed_inputs_is_false(key: bytes, sig: bytes) -> None:
    assert verify_signature(key, identity.TAG_DOCUMENT, b"body", sig) is False


# ---------------------------------------------------------------- fingerprints and keyrings


def test_fingerprint_format_and_normalisation(alpha: PrivateIdentity) -> None:
    fp = format_fingerprint(alpha.key_id)
    assert fp == alpha.public.fingerprint
    assert normalise_fingerprint(fp.lower().replace(" ", "-")) == fp.replace(" ", "")
    assert base64.b32decode(fp.replace(" ", "")) == alpha.key_id[:20]


def test_keyring_lookup(alpha: PrivateIdentity, beta: PrivateIdentity,
                        mallory: PrivateIdentity) -> None:
    ring = Keyring.of([alpha.public, beta.public])
    assert len(ring) == 2
    assert ring.get(alpha.key_id) == alpha.public
    assert ring.get(mallory.key_id) is None
    assert {i.party for i in ring} == {"alpha", "beta"}

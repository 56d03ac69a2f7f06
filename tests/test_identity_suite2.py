"""Suite-2 identities (PROTOCOL.md §4.1, §4.3, §4.4): the identity file holds both signing
public keys and the X-Wing key, self-signed by both signing keys; the fingerprint covers all
three; the private key file holds the seeds. Suite-1 files keep reading as before."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import CREATED, fixed_random
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from bridge.core import codec
from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    TAG_IDENTITY,
    PrivateIdentity,
    PublicIdentity,
    signed_message,
)
from bridge.core.errors import VerificationError
from bridge.home.key_files import load_private, write_private

ED = suites.ED25519_SIGNATURE_SIZE


def suite_2(party: str, seed: str) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=CREATED, random_bytes=fixed_random(seed),
                                    suite=suites.SUITE_2)


@pytest.fixture(scope="module")
def alpha2() -> PrivateIdentity:
    return suite_2("alpha", "alpha-suite-2")


def statement_of(ident: PrivateIdentity) -> dict[str, object]:
    value = codec.decode(ident.public.statement)
    assert isinstance(value, dict)
    return value


def test_statement_holds_both_signing_keys_and_the_xwing_key(alpha2: PrivateIdentity) -> None:
    value = statement_of(alpha2)
    assert value["sign_alg"] == "ed25519+ml-dsa-65" and value["suite"] == [0x647A, 1, 3]
    sign_key, enc_key = value["sign_key"], value["enc_key"]
    assert isinstance(sign_key, bytes) and isinstance(enc_key, bytes)
    assert (len(sign_key), len(enc_key)) == (32 + 1952, 1216)
    assert alpha2.public.sign_key == sign_key and alpha2.public.enc_key == enc_key


def test_self_signature_is_by_both_signing_keys(alpha2: PrivateIdentity) -> None:
    message = signed_message(TAG_IDENTITY, alpha2.public.statement)
    assert suites.SUITE_2.verify(alpha2.public.sign_key, message, alpha2.public.signature)
    ed_only = alpha2.public.signature[:ED]
    with pytest.raises(VerificationError) as err:
        PublicIdentity.from_statement(alpha2.public.statement, ed_only)
    assert err.value.reason == "bad_signature"


def test_fingerprint_covers_each_of_the_three_public_keys(alpha2: PrivateIdentity) -> None:
    """Another key in any one place, self-signed again by its maker, is another fingerprint."""
    other = suite_2("alpha", "another-alpha")
    mine, theirs = statement_of(alpha2), statement_of(other)
    ed, ml = slice(0, 32), slice(32, None)
    seen = {alpha2.public.key_id}
    for field, part in (("sign_key", ed), ("sign_key", ml), ("enc_key", slice(None))):
        value = dict(mine)
        current, replacement = mine[field], theirs[field]
        assert isinstance(current, bytes) and isinstance(replacement, bytes)
        mixed = bytearray(current)
        mixed[part] = replacement[part]
        value[field] = bytes(mixed)
        seen.add(suites.sha256(signed_message(b"bridge/v1/fingerprint", codec.encode(value))))
    assert len(seen) == 4


def test_identity_file_round_trips_and_says_its_fingerprint(alpha2: PrivateIdentity) -> None:
    text = alpha2.public.dumps()
    assert PublicIdentity.loads(text) == alpha2.public
    assert json.loads(text)["fingerprint"] == alpha2.public.fingerprint


def test_private_key_file_holds_the_seeds_mode_0600(alpha2: PrivateIdentity,
                                                    tmp_path: Path) -> None:
    path = tmp_path / "alpha.key"
    write_private(path, alpha2)
    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    secrets = codec.decode(base64.b64decode(doc["secrets"]))
    assert isinstance(secrets, dict) and set(secrets) == {"sign_seed", "enc_secret"}
    assert (len(secrets["sign_seed"]), len(secrets["enc_secret"])) == (64, 32)
    loaded = load_private(path)
    assert loaded.public == alpha2.public
    body = b"a document header"
    assert alpha2.public.verify(TAG_DOCUMENT, body, loaded.sign(TAG_DOCUMENT, body))


def test_private_key_whose_mldsa_seed_differs_from_its_identity_is_refused(
        alpha2: PrivateIdentity) -> None:
    """Half the seed right is not enough: both public keys must match the statement."""
    secrets = codec.decode(alpha2._secret_bytes())
    assert isinstance(secrets, dict)
    with pytest.raises(Exception, match="signing key does not match"):
        PrivateIdentity(sign_seed=secrets["sign_seed"][:32] + bytes(32),
                        enc_secret=secrets["enc_secret"], public=alpha2.public)


def test_identity_claiming_suite_1_with_hybrid_keys_is_refused(alpha2: PrivateIdentity) -> None:
    value = statement_of(alpha2)
    value["suite"] = [0x20, 1, 3]
    with pytest.raises(VerificationError) as err:
        PublicIdentity.from_statement(codec.encode(value), alpha2.public.signature)
    assert err.value.reason == "not_identity"


def test_identity_with_a_malformed_xwing_key_is_refused(alpha2: PrivateIdentity) -> None:
    """An X-Wing key that ML-KEM refuses (a coefficient not below q) is refused when the
    identity is read, not at the first envelope sealed to it."""
    secrets = codec.decode(alpha2._secret_bytes())
    assert isinstance(secrets, dict)
    signing = suites.SUITE_2.signing_key(secrets["sign_seed"])
    value = statement_of(alpha2)
    enc_key = value["enc_key"]
    assert isinstance(enc_key, bytes)
    value["enc_key"] = b"\xff" * 3 + enc_key[3:]
    statement = codec.encode(value)
    signature = signing.sign(signed_message(TAG_IDENTITY, statement))
    with pytest.raises(VerificationError) as err:
        PublicIdentity.from_statement(statement, signature)
    assert err.value.reason == "not_identity"


def test_a_suite_2_identity_ml_dsa_half_is_the_fips_204_key_of_its_seed(
        alpha2: PrivateIdentity) -> None:
    secrets = codec.decode(alpha2._secret_bytes())
    assert isinstance(secrets, dict)
    ml = MLDSA65PrivateKey.from_seed_bytes(secrets["sign_seed"][32:])
    assert alpha2.public.sign_key[32:] == ml.public_key().public_bytes_raw()

"""Suite 2: hybrid signatures (Ed25519 and ML-DSA-65, both required) and HPKE with X-Wing.

Each negative test is named after the attack it tries: a quantum adversary who can forge one
half of a hybrid (Ed25519 once Shor's algorithm runs; ML-DSA should a flaw be found) must still
be refused, and so must halves moved between signatures or a suite-1 signature offered for a
suite-2 key (PROTOCOL.md §3.1).
"""

from __future__ import annotations

import hashlib

import nacl.signing
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from bridge.core.crypto import suites
from bridge.core.crypto.identity import TAG_DOCUMENT, TAG_ENVELOPE, signed_message

S2 = suites.SUITE_2
SEED = bytes(range(64))
MESSAGE = signed_message(TAG_DOCUMENT, b"a roster header")
OTHER = signed_message(TAG_DOCUMENT, b"another roster header")
ED = suites.ED25519_SIGNATURE_SIZE

# draft-connolly-cfrg-xwing-kem-08, Appendix C, first vector: the 32-byte decapsulation key
# and the start and end of its 1216-byte encapsulation key pk_M || pk_X.
XWING_SK = bytes.fromhex("7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")
XWING_PK_HEAD = "e2236b35a8c24b39b10aa1323a96a919a2ced88400633a7b07131713fc14b2b5b19cfc3d"
XWING_PK_TAIL = "eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"


@pytest.fixture(scope="module")
def key() -> suites.SigningKey:
    return S2.signing_key(SEED)


def test_suite_2_is_xwing_hkdf_sha256_chacha20poly1305() -> None:
    assert S2.id == (0x647A, 0x0001, 0x0003) and suites.get(S2.id) is S2
    assert suites.by_number(2) is S2 and suites.by_number(1) is suites.SUITE_1
    assert suites.by_number(3) is None
    assert (S2.sign_key_size, S2.enc_key_size, S2.signature_size) == (1984, 1216, 3373)


def test_xwing_keys_derive_as_the_draft_known_answer_says() -> None:
    public = S2.decryption_key(XWING_SK).public
    assert len(public) == 1216
    assert public.hex().startswith(XWING_PK_HEAD) and public.hex().endswith(XWING_PK_TAIL)


def test_hybrid_public_key_is_ed25519_then_mldsa65_of_the_two_seeds(
        key: suites.SigningKey) -> None:
    ed = bytes(nacl.signing.SigningKey(SEED[:32]).verify_key)
    ml = MLDSA65PrivateKey.from_seed_bytes(SEED[32:]).public_key().public_bytes_raw()
    assert key.public == ed + ml and key.seed() == SEED


def test_hybrid_signature_is_both_halves_over_the_same_bytes(key: suites.SigningKey) -> None:
    signature = key.sign(MESSAGE)
    assert len(signature) == S2.signature_size and S2.verify(key.public, MESSAGE, signature)
    # The Ed25519 half is libsodium's, byte for byte; the ML-DSA half verifies with the
    # library alone under the context string PROTOCOL.md §3.1 names.
    assert signature[:ED] == nacl.signing.SigningKey(SEED[:32]).sign(MESSAGE).signature
    MLDSA65PrivateKey.from_seed_bytes(SEED[32:]).public_key().verify(
        signature[ED:], MESSAGE, suites.HYBRID_CONTEXT)
    assert not S2.verify(key.public, OTHER, signature)


def test_ed25519_only_signature_is_refused(key: suites.SigningKey) -> None:
    """A quantum forger of Ed25519 who cannot forge ML-DSA: its half alone, padded or not."""
    ed_only = nacl.signing.SigningKey(SEED[:32]).sign(MESSAGE).signature
    assert not S2.verify(key.public, MESSAGE, ed_only)
    assert not S2.verify(key.public, MESSAGE, ed_only + bytes(suites.MLDSA65_SIGNATURE_SIZE))


def test_mldsa_only_signature_is_refused(key: suites.SigningKey) -> None:
    ml_only = MLDSA65PrivateKey.from_seed_bytes(SEED[32:]).sign(MESSAGE, suites.HYBRID_CONTEXT)
    assert not S2.verify(key.public, MESSAGE, ml_only)
    assert not S2.verify(key.public, MESSAGE, bytes(ED) + ml_only)


def test_halves_swapped_between_two_signed_objects_are_refused(key: suites.SigningKey) -> None:
    one, two = key.sign(MESSAGE), key.sign(OTHER)
    assert S2.verify(key.public, MESSAGE, one) and S2.verify(key.public, OTHER, two)
    assert not S2.verify(key.public, MESSAGE, one[:ED] + two[ED:])
    assert not S2.verify(key.public, MESSAGE, two[:ED] + one[ED:])
    assert not S2.verify(key.public, MESSAGE, two)


def test_halves_in_the_wrong_order_are_refused(key: suites.SigningKey) -> None:
    signature = key.sign(MESSAGE)
    assert not S2.verify(key.public, MESSAGE, signature[ED:] + signature[:ED])


def test_mldsa_half_without_the_hybrid_context_is_refused(key: suites.SigningKey) -> None:
    """An ML-DSA signature the key made for another use (no context) is no Bridge half."""
    ed = nacl.signing.SigningKey(SEED[:32]).sign(MESSAGE).signature
    plain = MLDSA65PrivateKey.from_seed_bytes(SEED[32:]).sign(MESSAGE)
    assert not S2.verify(key.public, MESSAGE, ed + plain)


def test_suite_1_signature_presented_for_a_suite_2_key_is_refused(
        key: suites.SigningKey) -> None:
    """The same Ed25519 key in both suites: a suite-1 signature by it is still not suite 2's."""
    suite_1 = suites.SUITE_1.signing_key(SEED[:32])
    classic = suite_1.sign(MESSAGE)
    assert suites.SUITE_1.verify(suite_1.public, MESSAGE, classic)
    assert not S2.verify(key.public, MESSAGE, classic)
    # and the other way: a hybrid is not a suite-1 signature, nor is its first half for the
    # suite-2 key's own Ed25519 half presented as a suite-1 key of another size.
    assert not suites.SUITE_1.verify(suite_1.public, MESSAGE, key.sign(MESSAGE))
    assert not suites.SUITE_1.verify(key.public, MESSAGE, classic)


def test_malformed_hybrid_sizes_are_refused_not_raised(key: suites.SigningKey) -> None:
    good = key.sign(MESSAGE)
    for public, signature in [(key.public[:-1], good), (key.public, good[:-1]),
                              (key.public + b"\x00", good), (key.public, good + b"\x00"),
                              (b"", b""), (bytes(len(key.public)), good)]:
        assert not S2.verify(public, MESSAGE, signature)


def test_xwing_hpke_seals_and_opens_with_the_info_bound() -> None:
    secret = hashlib.sha256(b"xwing test secret").digest()
    key = S2.decryption_key(secret)
    info = signed_message(TAG_ENVELOPE, b"header")
    sealed = S2.seal(key.public, b"a list of the detained", info)
    # enc is X-Wing's 1120-byte ciphertext (ct_M || ct_X), then ChaCha20-Poly1305's 16-byte tag.
    assert len(sealed) == 1120 + len(b"a list of the detained") + 16
    assert key.open(sealed, info) == b"a list of the detained"
    assert key.secret() == secret
    with pytest.raises(InvalidTag):
        key.open(sealed, signed_message(TAG_ENVELOPE, b"another header"))
    with pytest.raises(InvalidTag):
        S2.decryption_key(hashlib.sha256(b"someone else").digest()).open(sealed, info)


def test_xwing_ciphertext_with_a_flipped_bit_does_not_open() -> None:
    key = S2.decryption_key(bytes(32))
    sealed = bytearray(S2.seal(key.public, b"payload", b"info"))
    for position in (0, 1087, 1088, 1119, len(sealed) - 1):  # ct_M, ct_X, ct, tag
        broken = sealed.copy()
        broken[position] ^= 1
        with pytest.raises(InvalidTag):
            key.open(bytes(broken), b"info")


def test_malformed_xwing_public_key_is_refused_before_sealing() -> None:
    public = S2.decryption_key(bytes(32)).public
    assert S2.enc_key_valid(public)
    # ML-KEM's modulus check (FIPS 203 §7.2): a coefficient of 0xFFF is not below q = 3329.
    assert not S2.enc_key_valid(b"\xff" * 3 + public[3:])
    assert not S2.enc_key_valid(public[:-1])
    with pytest.raises(ValueError):
        S2.seal(b"\xff" * len(public), b"payload", b"info")


def test_seeds_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(ValueError):
        S2.signing_key(bytes(32))
    with pytest.raises(ValueError):
        S2.decryption_key(bytes(64))

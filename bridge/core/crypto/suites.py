"""The one place that names algorithms: every primitive Bridge uses, behind a suite table.

A *suite* is what an identity statement and an envelope header carry as ``suite``: the HPKE
KEM, KDF and AEAD ids of RFC 9180 §7 (PROTOCOL.md §4.1, §5.2), together with the signature
algorithm that the statement's ``sign_alg`` names. Suite 1, ``[32, 1, 3]``, is

- signatures: Ed25519 (RFC 8032 §5.1, pure, not Ed25519ph), with libsodium's strictness;
- encryption: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.

A post-quantum suite is one more entry in ``SUITES`` with its own functions; ``identity`` and
``envelope`` look a suite up by its id and never name a primitive themselves.

Outside the table: SHA-256 (key ids and envelope hashes, whatever the suite; PROTOCOL.md §4.2,
§5.1), and the sealing of a private key file with a passphrase (Argon2id v1.3 then
XSalsa20-Poly1305, PROTOCOL.md §4.4), which is libsodium's and so PyNaCl's: ``cryptography``
has Argon2id but no XSalsa20, and key files sealed by 0.1.0 must keep opening.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

SuiteId = tuple[int, int, int]

# RFC 9180 §7.1-§7.3 registry values.
KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_CHACHA20_POLY1305 = 0x0003
SUITE_X25519_CHACHA: SuiteId = (KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# ---------------------------------------------------------------- key holders


class SigningKey:
    """A secret signing key, kept parsed: signing does not decode the seed again."""

    __slots__ = ("_key", "public")

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key
        self.public: bytes = bytes(key.verify_key)

    def seed(self) -> bytes:
        return bytes(self._key)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._key.sign(message).signature)


class DecryptionKey:
    """A secret HPKE key, with the suite it decrypts for."""

    __slots__ = ("_hpke", "_key", "public")

    def __init__(self, key: X25519PrivateKey, suite: hpke.Suite) -> None:
        self._key = key
        self._hpke = suite
        self.public: bytes = key.public_key().public_bytes_raw()

    def secret(self) -> bytes:
        return self._key.private_bytes_raw()

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """HPKE single-shot open (RFC 9180 §6.1). Raises whatever the library raises."""
        return self._hpke.decrypt(ciphertext, self._key, info)


# ---------------------------------------------------------------- Ed25519

# Ed25519 is libsodium's (crypto_sign_detached / crypto_sign_verify_detached), not OpenSSL's:
# libsodium refuses a small-order or non-canonical public key and a small-order R, with which
# a signer could make one signature valid for many messages (PROTOCOL.md §3); OpenSSL accepts
# them. It is also the faster of the two here (verify about 110 µs against 185 µs of CPU,
# sign 42 against 56 µs), and PyNaCl is needed anyway for the sealed key files below.


def _ed25519_signing_key(seed: bytes) -> SigningKey:
    return SigningKey(nacl.signing.SigningKey(seed))


def _ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 as above, named: the C2SP signed notes (checkpoints, witness cosignatures) are
    Ed25519 by their specifications, whatever suite a party's identity is in."""
    return _ed25519_verify(public, message, signature)


def ed25519_signing_key(seed: bytes) -> SigningKey:
    return _ed25519_signing_key(seed)


# Signature type bytes of C2SP signed-note ("Signature types"): they enter the key ids of note
# signature lines, SHA-256(name || 0x0A || type || public key)[:4].
NOTE_ED25519 = 0x01
NOTE_COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignatures, C2SP tlog-cosignature


# ---------------------------------------------------------------- HPKE with X25519

_HPKE_X25519_CHACHA = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256,
                                 hpke.AEAD.CHACHA20_POLY1305)


def _x25519_decryption_key(secret: bytes) -> DecryptionKey:
    return DecryptionKey(X25519PrivateKey.from_private_bytes(secret), _HPKE_X25519_CHACHA)


def _x25519_seal(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base mode single-shot seal (RFC 9180 §6.1): ``enc || ct``."""
    return _HPKE_X25519_CHACHA.encrypt(plaintext, X25519PublicKey.from_public_bytes(public), info)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True, kw_only=True)
class Suite:
    """What one suite id means: sizes, and the functions that do the work."""

    id: SuiteId
    sign_alg: str  # the identity statement's "sign_alg" (PROTOCOL.md §4.1)
    sign_name: str  # for messages
    sign_seed_size: int
    sign_key_size: int
    enc_secret_size: int
    enc_key_size: int
    signing_key: Callable[[bytes], SigningKey]  # from the seed
    verify: Callable[[bytes, bytes, bytes], bool]  # (public key, message, signature)
    decryption_key: Callable[[bytes], DecryptionKey]  # from the secret
    seal: Callable[[bytes, bytes, bytes], bytes]  # (public key, plaintext, info) -> enc || ct


SUITE_1 = Suite(
    id=SUITE_X25519_CHACHA, sign_alg="ed25519", sign_name="Ed25519",
    sign_seed_size=32, sign_key_size=32, enc_secret_size=32, enc_key_size=32,
    signing_key=_ed25519_signing_key, verify=_ed25519_verify,
    decryption_key=_x25519_decryption_key, seal=_x25519_seal,
)
SUITES: dict[SuiteId, Suite] = {SUITE_1.id: SUITE_1}
DEFAULT_SUITE = SUITE_1


def get(suite_id: SuiteId) -> Suite | None:
    return SUITES.get(suite_id)


def sign_algorithms() -> frozenset[str]:
    return frozenset(s.sign_alg for s in SUITES.values())


# ---------------------------------------------------------------- sealed key files

# The protection name of PROTOCOL.md §4.4 says both algorithms.
SEALED = "argon2id-xsalsa20poly1305"
KDF_SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES
SEAL_NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE
# Argon2id cost of a newly sealed file: libsodium's MODERATE (3 passes over 256 MiB). Read at
# each sealing, so that tests may lower it (the format is the same).
ARGON2ID_COST = (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE)
# Argon2id work a key file may ask for: libsodium's minimums up to 16 passes over 1 GiB
# (its SENSITIVE preset is 4 over 1 GiB). A file asking more is refused, not obeyed for hours.
KDF_OPSLIMIT = (nacl.pwhash.argon2id.OPSLIMIT_MIN, 16)
KDF_MEMLIMIT = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)


def _passphrase_key(passphrase: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
                                    opslimit=opslimit, memlimit=memlimit)


def seal_secrets(passphrase: bytes, secrets: bytes, *, salt: bytes, nonce: bytes,
                 opslimit: int, memlimit: int) -> bytes:
    """``nonce || secretbox(Argon2id(passphrase, salt), nonce, secrets)`` (PROTOCOL.md §4.4)."""
    key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    return bytes(nacl.secret.SecretBox(key).encrypt(secrets, nonce))


def open_secrets(passphrase: bytes, sealed: bytes, *, salt: bytes,
                 opslimit: int, memlimit: int) -> bytes | None:
    """The secrets ``seal_secrets`` sealed, or None when they do not open with this passphrase
    (a wrong one, or sealed bytes altered: the same to Poly1305)."""
    key = _passphrase_key(passphrase, salt, opslimit, memlimit)
    try:
        return nacl.secret.SecretBox(key).decrypt(sealed)
    except nacl.exceptions.CryptoError:
        return None


__all__ = [
    "ARGON2ID_COST", "DEFAULT_SUITE", "KDF_MEMLIMIT", "KDF_OPSLIMIT", "KDF_SALT_SIZE",
    "NOTE_COSIGNATURE_V1", "NOTE_ED25519", "SEALED", "SEAL_NONCE_SIZE", "SUITES", "SUITE_1",
    "SUITE_X25519_CHACHA", "DecryptionKey", "SigningKey", "Suite", "SuiteId",
    "ed25519_signing_key", "ed25519_verify", "get",
    "open_secrets", "seal_secrets", "sha256", "sign_algorithms",
]

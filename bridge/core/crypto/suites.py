"""The one place that names algorithms: every primitive Bridge uses, behind a suite table.

A *suite* is what an identity statement and an envelope header carry as ``suite``: the HPKE
KEM, KDF and AEAD ids of RFC 9180 §7 (PROTOCOL.md §4.1, §5.2), together with the signature
algorithm that the statement's ``sign_alg`` names. Suite 1, ``[32, 1, 3]``, is

- signatures: Ed25519 (RFC 8032 §5.1, pure, not Ed25519ph), with libsodium's strictness;
- encryption: HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305.

Suite 2, ``[0x647A, 1, 3]``, the post-quantum one (PROTOCOL.md §3.1, §5.2), is

- signatures: Ed25519 *and* ML-DSA-65 (FIPS 204), both over the same bytes; a signature is the
  two concatenated and verifies only when both do (a hybrid: forging it takes breaking both);
- encryption: HPKE base mode, X-Wing (MLKEM768-X25519, KEM id 0x647A), HKDF-SHA256,
  ChaCha20-Poly1305.

``identity`` and ``envelope`` look a suite up by its id and never name a primitive themselves.

Outside the table: SHA-256 (key ids and envelope hashes, whatever the suite; PROTOCOL.md §4.2,
§5.1), and the sealing of a private key file with a passphrase (Argon2id v1.3 then
XSalsa20-Poly1305, PROTOCOL.md §4.4), which is libsodium's and so PyNaCl's: ``cryptography``
has Argon2id but no XSalsa20, and key files sealed by 0.1.0 must keep opening.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

# The hash and the XOF of every suite are named in ``hashes`` (no cryptographic library there).
from bridge.core.beside import Beside, Done, Pending, Then
from bridge.core.crypto.hashes import sha256, shake256

SuiteId = tuple[int, int, int]

# RFC 9180 §7.1-§7.3 registry values.
KEM_X25519_HKDF_SHA256 = 0x0020
KDF_HKDF_SHA256 = 0x0001
AEAD_CHACHA20_POLY1305 = 0x0003
SUITE_X25519_CHACHA: SuiteId = (KEM_X25519_HKDF_SHA256, KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305)
# draft-ietf-hpke-pq §3: X-Wing as an HPKE KEM.
KEM_XWING = 0x647A
SUITE_XWING_CHACHA: SuiteId = (KEM_XWING, KDF_HKDF_SHA256, AEAD_CHACHA20_POLY1305)


# ---------------------------------------------------------------- key holders


class SigningKey:
    """A secret signing key, kept parsed: signing does not decode the seed again."""

    __slots__ = ("_seed", "_sign", "_start", "public")

    def __init__(self, seed: bytes, public: bytes, sign: Callable[[bytes], bytes],
                 start: Callable[[bytes, Beside], Pending[bytes]] | None = None) -> None:
        self._seed = seed
        self._sign = sign
        self._start = start
        self.public: bytes = public

    def seed(self) -> bytes:
        return self._seed

    def sign(self, message: bytes) -> bytes:
        return self._sign(message)

    def start(self, message: bytes, beside: Beside) -> Pending[bytes]:
        """``sign(message)``, its slow part made ``beside`` (the same bytes, joined later)."""
        if self._start is None:
            return Done(self._sign(message))
        return self._start(message, beside)


class DecryptionKey:
    """A secret HPKE key (its secret as the key file holds it), kept parsed."""

    __slots__ = ("_open", "_secret", "public")

    def __init__(self, secret: bytes, public: bytes,
                 open_: Callable[[bytes, bytes], bytes]) -> None:
        self._secret = secret
        self._open = open_
        self.public: bytes = public

    def secret(self) -> bytes:
        return self._secret

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """HPKE single-shot open (RFC 9180 §6.1). Raises whatever the library raises."""
        return self._open(ciphertext, info)


# ---------------------------------------------------------------- Ed25519

# Ed25519 is libsodium's (crypto_sign_detached / crypto_sign_verify_detached), not OpenSSL's:
# libsodium refuses a small-order or non-canonical public key and a small-order R, with which
# a signer could make one signature valid for many messages (PROTOCOL.md §3); OpenSSL accepts
# them. It is also the faster of the two here (verify about 110 µs against 185 µs of CPU,
# sign 42 against 56 µs), and PyNaCl is needed anyway for the sealed key files below.


def _ed25519_signing_key(seed: bytes) -> SigningKey:
    key = nacl.signing.SigningKey(seed)

    def sign(message: bytes) -> bytes:
        return bytes(key.sign(message).signature)

    return SigningKey(seed, bytes(key.verify_key), sign)


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


def note_signing_key(sign_seed: bytes) -> SigningKey:
    """The Ed25519 key with which a party signs C2SP notes (its log checkpoints, a witness's
    cosignatures), from its signing seed: the whole seed in suite 1, the Ed25519 half (the
    first 32 bytes, as ``_hybrid_signing_key`` splits it) in suite 2. The notes are Ed25519 by
    their specifications; suite 2's ML-DSA half has no place in them (PROTOCOL.md §13.2)."""
    return _ed25519_signing_key(sign_seed[:32])


def note_public_key(sign_key: bytes) -> bytes:
    """The Ed25519 public key of ``note_signing_key``: a suite-1 key whole, a suite-2 key's
    first 32 bytes (the hybrid key is Ed25519 then ML-DSA-65, §3.1)."""
    return sign_key[:ED25519_KEY_SIZE]


# Signature type bytes of C2SP signed-note ("Signature types"): they enter the key ids of note
# signature lines, SHA-256(name || 0x0A || type || public key)[:4].
NOTE_ED25519 = 0x01
NOTE_COSIGNATURE_V1 = 0x04  # timestamped Ed25519 witness cosignatures, C2SP tlog-cosignature


# ---------------------------------------------------------------- HPKE with X25519

_HPKE_X25519_CHACHA = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256,
                                 hpke.AEAD.CHACHA20_POLY1305)


def _x25519_decryption_key(secret: bytes) -> DecryptionKey:
    key = X25519PrivateKey.from_private_bytes(secret)

    def open_(ciphertext: bytes, info: bytes) -> bytes:
        return _HPKE_X25519_CHACHA.decrypt(ciphertext, key, info)

    return DecryptionKey(secret, key.public_key().public_bytes_raw(), open_)


def _x25519_seal(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base mode single-shot seal (RFC 9180 §6.1): ``enc || ct``."""
    return _HPKE_X25519_CHACHA.encrypt(plaintext, X25519PublicKey.from_public_bytes(public), info)


# ---------------------------------------------------------------- Ed25519 + ML-DSA-65

ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64
MLDSA65_KEY_SIZE = 1952  # FIPS 204 Table 2: pk of ML-DSA-65
MLDSA65_SIGNATURE_SIZE = 3309  # FIPS 204 Table 2: signature of ML-DSA-65
HYBRID_KEY_SIZE = ED25519_KEY_SIZE + MLDSA65_KEY_SIZE
HYBRID_SIGNATURE_SIZE = ED25519_SIGNATURE_SIZE + MLDSA65_SIGNATURE_SIZE
# ML-DSA's context string (FIPS 204 §5.2, ctx) names the pair, not the purpose: the purpose tag
# is in the signed bytes, which both halves cover alike (PROTOCOL.md §3.1 says why). With it an
# ML-DSA half cut out of a Bridge hybrid verifies under no other use of the key.
HYBRID_CONTEXT = b"bridge/v1/ed25519+ml-dsa-65"


def _hybrid_signing_key(seed: bytes) -> SigningKey:
    """From 64 bytes: the Ed25519 seed (RFC 8032 §5.1.5) then the ML-DSA-65 seed xi (FIPS 204
    Algorithm 1); the public key is the two public keys concatenated."""
    if len(seed) != 64:
        raise ValueError("a hybrid signing seed is 64 bytes")
    classic = nacl.signing.SigningKey(seed[:32])
    post = MLDSA65PrivateKey.from_seed_bytes(seed[32:])

    def sign(message: bytes) -> bytes:
        # ML-DSA signing is hedged (FIPS 204 §3.4): the same message signs differently each time.
        return bytes(classic.sign(message).signature) + post.sign(message, HYBRID_CONTEXT)

    def start(message: bytes, beside: Beside) -> Pending[bytes]:
        # Only the library call goes beside: it releases the GIL at once, so it runs on the
        # other core, where Python work handed over would wait for the calling thread's GIL.
        classic_half = bytes(classic.sign(message).signature)
        return Then(beside(lambda: post.sign(message, HYBRID_CONTEXT)),
                    lambda post_half: classic_half + post_half)

    return SigningKey(seed, bytes(classic.verify_key) + post.public_key().public_bytes_raw(),
                      sign, start)


@functools.lru_cache(maxsize=256)
def _mldsa65_public(raw: bytes) -> MLDSA65PublicKey:
    """Parsed once per key: parsing costs a tenth of a verification, and a verifier checks many
    signatures by the same few keys. Raises ValueError for bytes that are no key."""
    return MLDSA65PublicKey.from_public_bytes(raw)


def _hybrid_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Both halves, or nothing: an Ed25519 signature alone, an ML-DSA-65 one alone, or either
    half of another signature in its place, is no signature."""
    if len(public) != HYBRID_KEY_SIZE or len(signature) != HYBRID_SIGNATURE_SIZE:
        return False
    if not _ed25519_verify(public[:ED25519_KEY_SIZE], message,
                           signature[:ED25519_SIGNATURE_SIZE]):
        return False
    try:
        _mldsa65_public(public[ED25519_KEY_SIZE:]).verify(
            signature[ED25519_SIGNATURE_SIZE:], message, HYBRID_CONTEXT)
    except (InvalidSignature, ValueError):
        return False
    return True


# ---------------------------------------------------------------- HPKE with X-Wing

XWING_SECRET_SIZE = 32
MLKEM768_KEY_SIZE = 1184  # FIPS 203 §8 Table 3: ek of ML-KEM-768
XWING_KEY_SIZE = MLKEM768_KEY_SIZE + 32  # draft-connolly-cfrg-xwing-kem §5.2: pk_M || pk_X
_HPKE_XWING_CHACHA = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256,
                                hpke.AEAD.CHACHA20_POLY1305)


def _xwing_private(secret: bytes) -> tuple[hpke.MLKEM768X25519PrivateKey, bytes]:
    """X-Wing's 32-byte decapsulation key expanded as its draft says (§5.2,
    expandDecapsulationKey): SHAKE-256 to 96 bytes, the first 64 the ML-KEM-768 seed d || z,
    the last 32 the X25519 secret. Returns the key and its public key pk_M || pk_X."""
    if len(secret) != XWING_SECRET_SIZE:
        raise ValueError("an X-Wing secret is 32 bytes")
    expanded = shake256(secret, 96)
    mlkem = MLKEM768PrivateKey.from_seed_bytes(expanded[:64])
    x25519 = X25519PrivateKey.from_private_bytes(expanded[64:])
    public = (mlkem.public_key().public_bytes_raw()
              + x25519.public_key().public_bytes_raw())
    return hpke.MLKEM768X25519PrivateKey(mlkem, x25519), public


def _xwing_decryption_key(secret: bytes) -> DecryptionKey:
    key, public = _xwing_private(secret)

    def open_(ciphertext: bytes, info: bytes) -> bytes:
        return _HPKE_XWING_CHACHA.decrypt(ciphertext, key, info)

    return DecryptionKey(secret, public, open_)


@functools.lru_cache(maxsize=256)
def _xwing_public(public: bytes) -> hpke.MLKEM768X25519PublicKey:
    """Raises ValueError for bytes that are no X-Wing key (FIPS 203 §7.2 modulus check).
    Parsed once per key, as ``_mldsa65_public``: the ML-KEM half's check costs a third of a
    seal, and a bridge seals to the same few peers' keys."""
    if len(public) != XWING_KEY_SIZE:
        raise ValueError(f"an X-Wing public key is {XWING_KEY_SIZE} bytes")
    return hpke.MLKEM768X25519PublicKey(
        MLKEM768PublicKey.from_public_bytes(public[:MLKEM768_KEY_SIZE]),
        X25519PublicKey.from_public_bytes(public[MLKEM768_KEY_SIZE:]))


def _xwing_key_valid(public: bytes) -> bool:
    try:
        _xwing_public(public)
    except ValueError:
        return False
    return True


def _xwing_seal(public: bytes, plaintext: bytes, info: bytes) -> bytes:
    """HPKE base mode single-shot seal (RFC 9180 §6.1): ``enc || ct``, enc 1120 bytes."""
    return _HPKE_XWING_CHACHA.encrypt(plaintext, _xwing_public(public), info)


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
    number: int  # what people and ``--suite`` call it
    signature_size: int
    # Is this (right-sized) encryption key one the suite can seal to? Checked when an identity
    # is read, so that a peer's malformed key is refused there and not at the first seal.
    enc_key_valid: Callable[[bytes], bool] = lambda _key: True


SUITE_1 = Suite(
    id=SUITE_X25519_CHACHA, sign_alg="ed25519", sign_name="Ed25519", number=1,
    sign_seed_size=32, sign_key_size=32, enc_secret_size=32, enc_key_size=32,
    signature_size=ED25519_SIGNATURE_SIZE,
    signing_key=_ed25519_signing_key, verify=_ed25519_verify,
    decryption_key=_x25519_decryption_key, seal=_x25519_seal,
)
SUITE_2 = Suite(
    id=SUITE_XWING_CHACHA, sign_alg="ed25519+ml-dsa-65", sign_name="Ed25519 + ML-DSA-65",
    number=2, sign_seed_size=64, sign_key_size=HYBRID_KEY_SIZE,
    enc_secret_size=XWING_SECRET_SIZE, enc_key_size=XWING_KEY_SIZE,
    signature_size=HYBRID_SIGNATURE_SIZE,
    signing_key=_hybrid_signing_key, verify=_hybrid_verify,
    decryption_key=_xwing_decryption_key, seal=_xwing_seal, enc_key_valid=_xwing_key_valid,
)
SUITES: dict[SuiteId, Suite] = {SUITE_1.id: SUITE_1, SUITE_2.id: SUITE_2}
# What the library's key generation makes unless told: suite 1, so that fixed test keys and
# callers written before suite 2 stay as they were. ``bridge init`` asks for NEW_IDENTITY_SUITE.
DEFAULT_SUITE = SUITE_1
NEW_IDENTITY_SUITE = SUITE_2


def get(suite_id: SuiteId) -> Suite | None:
    return SUITES.get(suite_id)


def by_number(number: int) -> Suite | None:
    """The suite people call ``number`` (``--suite 2``)."""
    return next((s for s in SUITES.values() if s.number == number), None)


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
    "ARGON2ID_COST", "DEFAULT_SUITE", "HYBRID_CONTEXT", "KDF_MEMLIMIT", "KDF_OPSLIMIT",
    "KDF_SALT_SIZE", "NEW_IDENTITY_SUITE", "NOTE_COSIGNATURE_V1", "NOTE_ED25519", "SEALED",
    "SEAL_NONCE_SIZE", "SUITES", "SUITE_1", "SUITE_2", "SUITE_X25519_CHACHA",
    "SUITE_XWING_CHACHA", "DecryptionKey", "SigningKey", "Suite", "SuiteId", "by_number",
    "ed25519_signing_key", "ed25519_verify", "get", "note_public_key", "note_signing_key",
    "open_secrets", "seal_secrets", "sha256", "sign_algorithms",
]

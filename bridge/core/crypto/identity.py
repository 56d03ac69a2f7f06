"""Party identities: key pairs, identity files, fingerprints, signing and verifying.

A party's identity is an Ed25519 signing key (RFC 8032) and an X25519 encryption key used with
HPKE (RFC 9180). The public half travels as an *identity statement*: canonical bytes naming the
party and both keys, self-signed with the signing key. Its SHA-256 (with a domain tag) is the
``key_id`` that envelopes, documents and receipts name; its first 160 bits, in base32, are the
*fingerprint* that people compare out of band before pinning a peer.

Every signature in Bridge covers ``tag || 0x00 || body`` with a distinct ASCII tag per purpose,
so that a signature made for one purpose can never be presented as another (see PROTOCOL.md §3).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bridge.core import codec, times
from bridge.core.errors import (
    DecodeError,
    InputError,
    OpaqueCryptoError,
    PeerError,
    UsageError,
    VerificationError,
)
from bridge.home.files import write_file

# Domain-separation tags (PROTOCOL.md §3). Never reuse one for another purpose.
TAG_IDENTITY = b"bridge/v1/identity"
TAG_FINGERPRINT = b"bridge/v1/fingerprint"
TAG_DOCUMENT = b"bridge/v1/document"
TAG_ENVELOPE = b"bridge/v1/envelope"
TAG_HPKE_INFO = b"bridge/v1/hpke-info"
TAG_TRANSPORT_RECEIPT = b"bridge/v1/transport-receipt"
TAG_KEY_ROTATION = b"bridge/v1/key-rotation"
TAG_KEY_REVOCATION = b"bridge/v1/key-revocation"

# HPKE suite ids from the RFC 9180 §7 registries: DHKEM(X25519, HKDF-SHA256),
# HKDF-SHA256, ChaCha20-Poly1305. Carried in every statement and envelope so that a hybrid
# post-quantum KEM can be added later without a format break.
SUITE_X25519_CHACHA = (0x0020, 0x0001, 0x0003)

# \Z, not $: "$" also matches before a trailing newline ("alpha\n").
PARTY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
KEY_FILE_VERSION = 1
SignFn = Callable[[bytes, bytes], bytes]


def signed_message(tag: bytes, body: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers: ``tag || 0x00 || body``."""
    return tag + b"\x00" + body


def check_party(name: str, *, field_name: str = "party") -> str:
    if not isinstance(name, str) or not PARTY_RE.match(name):
        raise InputError(
            "a party name is 1-63 characters: lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit",
            field=field_name,
        )
    return name


def format_fingerprint(key_id: bytes) -> str:
    """First 160 bits of the key id in RFC 4648 base32, in groups of four for reading aloud."""
    text = base64.b32encode(key_id[:20]).decode("ascii")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def normalise_fingerprint(text: str) -> str:
    """Accept a fingerprint typed with any spacing or case (PROTOCOL §4.2): ASCII white space,
    colons and hyphens are dropped and ASCII letters folded to upper case. Nothing else is
    folded: "ß".upper() is "SS" and "ſ".upper() is "S", which must not make another text
    equal to a fingerprint."""
    text = re.sub(r"[\s:-]", "", text, flags=re.ASCII)
    return text.upper() if text.isascii() else text


# Identity and key files (PROTOCOL §4.3, §4.4): a few hundred bytes, so a bound far above.
MAX_KEY_FILE_BYTES = 64 * 1024
IDENTITY_FILE_KEYS = frozenset({"bridge_identity", "party", "fingerprint", "statement",
                                "signature"})
_UTF8_BOM = b"\xef\xbb\xbf"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:  # json.loads keeps the last: a reader might see the first
            raise ValueError(f"the key {key!r} is given twice")
        obj[key] = value
    return obj


def _key_file_json(text: str | bytes) -> dict[str, Any]:
    """The strict JSON of an identity or key file (PROTOCOL §4.3): UTF-8 without a byte-order
    mark, at most MAX_KEY_FILE_BYTES, an object with no key given twice. ValueError says why.
    (json.loads alone would take a BOM, UTF-16 or UTF-32 from bytes, and a repeated key.)"""
    if isinstance(text, bytes):
        if text.startswith(_UTF8_BOM):
            raise ValueError("it begins with a byte-order mark")
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    elif text.startswith("\ufeff"):
        raise ValueError("it begins with a byte-order mark")
    if len(text) > MAX_KEY_FILE_BYTES:
        raise ValueError(f"larger than {MAX_KEY_FILE_BYTES} bytes")
    data = json.loads(text, object_pairs_hook=_unique_keys)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _is_version(value: Any, version: int) -> bool:
    # JSON true and 1.0 are == 1 in Python; only the integer is the version (PROTOCOL §2.1).
    return type(value) is int and value == version


def _strict_b64(value: Any) -> bytes:
    """RFC 4648 §4 base64 with padding, in its one canonical spelling."""
    if not isinstance(value, str):
        raise ValueError("not a string")
    raw = base64.b64decode(value, validate=True)
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("not canonical base64")
    return raw


def _read_key_file(path: Path, what: str) -> bytes:
    """At most MAX_KEY_FILE_BYTES + 1 bytes: a larger file is refused without being held."""
    try:
        with path.open("rb") as f:
            return f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def verify_signature(sign_key: bytes, tag: bytes, body: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature by ``sign_key`` over tag and body."""
    if len(signature) != 64 or len(sign_key) != 32:
        return False
    try:
        nacl.signing.VerifyKey(sign_key).verify(signed_message(tag, body), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class PublicIdentity:
    """A verified identity statement. Build with ``from_statement`` or ``load_public``."""

    party: str
    sign_key: bytes
    enc_key: bytes
    suite: tuple[int, int, int]
    created: int
    statement: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    key_id: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return format_fingerprint(self.key_id)

    @classmethod
    def from_statement(cls, statement: bytes, signature: bytes) -> PublicIdentity:
        """Decode a statement and check its self-signature (over the bytes as received)."""
        value = codec.decode(statement, codec.SMALL_LIMITS)
        if not isinstance(value, dict) or value.get("type") != "bridge.identity":
            raise VerificationError("not an identity statement", reason="not_identity")
        if type(value.get("v")) is not int or value["v"] != 1:  # true == 1 in Python only
            raise VerificationError("unsupported identity version", reason="version")
        try:
            party = check_party(value["party"])
            sign_key = value["sign_key"]
            enc_key = value["enc_key"]
            suite = tuple(value["suite"])
            created = value["created"]
            alg = value["sign_alg"]
        except (KeyError, TypeError, InputError) as exc:
            raise VerificationError(f"identity statement incomplete: {exc}",
                                    reason="not_identity") from exc
        if set(value) != {"v", "type", "party", "sign_alg", "sign_key", "suite", "enc_key",
                          "created"}:
            raise VerificationError("identity statement has unknown fields", reason="not_identity")
        if alg != "ed25519" or not isinstance(sign_key, bytes) or len(sign_key) != 32:
            raise VerificationError("identity signing key is not Ed25519", reason="not_identity")
        if (suite != SUITE_X25519_CHACHA or any(type(x) is not int for x in suite)
                or not isinstance(enc_key, bytes) or len(enc_key) != 32):
            raise VerificationError("identity HPKE suite not supported", reason="suite")
        if not isinstance(created, int) or isinstance(created, bool):
            raise VerificationError("identity creation time is not an integer",
                                    reason="not_identity")
        if not verify_signature(sign_key, TAG_IDENTITY, statement, signature):
            raise VerificationError("identity self-signature does not verify",
                                    reason="bad_signature")
        key_id = hashlib.sha256(signed_message(TAG_FINGERPRINT, statement)).digest()
        return cls(party=party, sign_key=sign_key, enc_key=enc_key,
                   suite=(suite[0], suite[1], suite[2]), created=created,
                   statement=statement, signature=signature, key_id=key_id)

    def verify(self, tag: bytes, body: bytes, signature: bytes) -> bool:
        return verify_signature(self.sign_key, tag, body, signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "bridge_identity": 1,
            "party": self.party,
            "fingerprint": self.fingerprint,
            "statement": base64.b64encode(self.statement).decode("ascii"),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    @classmethod
    def loads(cls, text: str | bytes, *, source: str = "identity file") -> PublicIdentity:
        """An identity file (PROTOCOL §4.3), every rule checked: strict JSON (no BOM, no key
        twice), exactly its five keys, the version the integer 1, canonical base64, a valid
        self-signature, and readable copies equal to what is signed."""
        try:
            data = _key_file_json(text)
        except (ValueError, RecursionError) as exc:  # nesting bomb: RecursionError
            raise VerificationError(f"{source}: not an identity file: {exc}",
                                    reason="not_identity") from exc
        if not _is_version(data.get("bridge_identity"), 1):
            raise VerificationError(f"{source}: not a Bridge identity file", reason="not_identity")
        if set(data) != IDENTITY_FILE_KEYS:
            raise VerificationError(f"{source}: an identity file has exactly the keys "
                                    f"{', '.join(sorted(IDENTITY_FILE_KEYS))}",
                                    reason="not_identity")
        try:
            statement = _strict_b64(data["statement"])
            signature = _strict_b64(data["signature"])
        except ValueError as exc:
            raise VerificationError(f"{source}: statement or signature not base64 ({exc})",
                                    reason="not_identity") from exc
        try:
            ident = cls.from_statement(statement, signature)
        except PeerError as exc:  # VerificationError, or DecodeError for non-canonical bytes
            raise VerificationError(f"{source}: {exc.message}", reason=exc.reason) from exc
        # The readable copies must agree with what is signed, or a reader could be misled. A
        # file is written by a program: the fingerprint is in its one printed form (§4.2),
        # not normalised as a typed one is.
        if data["party"] != ident.party or data["fingerprint"] != ident.fingerprint:
            raise VerificationError(f"{source}: readable party or fingerprint differs from the "
                                    "signed statement", reason="not_identity")
        return ident


def load_public(path: str | os.PathLike[str]) -> PublicIdentity:
    p = Path(path)
    return PublicIdentity.loads(_read_key_file(p, "identity file"), source=str(p))


class PrivateIdentity:
    """A party's private keys with its public identity. Never printed, never logged."""

    __slots__ = ("_enc", "_signing", "public")

    def __init__(self, *, sign_seed: bytes, enc_secret: bytes, public: PublicIdentity) -> None:
        self._signing = nacl.signing.SigningKey(sign_seed)
        self._enc = X25519PrivateKey.from_private_bytes(enc_secret)
        if bytes(self._signing.verify_key) != public.sign_key:
            raise UsageError("private signing key does not match its identity statement")
        if self._enc.public_key().public_bytes_raw() != public.enc_key:
            raise UsageError("private encryption key does not match its identity statement")
        self.public = public

    def __repr__(self) -> str:
        pub = self.public
        return f"PrivateIdentity(party={pub.party!r}, fingerprint={pub.fingerprint!r})"

    @property
    def party(self) -> str:
        return self.public.party

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    @property
    def hpke_private_key(self) -> X25519PrivateKey:
        return self._enc

    def sign(self, tag: bytes, body: bytes) -> bytes:
        return self._signing.sign(signed_message(tag, body)).signature

    @classmethod
    def generate(
        cls,
        party: str,
        *,
        created: int,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> PrivateIdentity:
        """New keys. ``random_bytes`` is a parameter so that test keys can be fixed."""
        check_party(party)
        sign_seed = random_bytes(32)
        enc_secret = random_bytes(32)
        signing = nacl.signing.SigningKey(sign_seed)
        enc_pub = X25519PrivateKey.from_private_bytes(enc_secret).public_key().public_bytes_raw()
        statement = codec.encode({
            "v": 1,
            "type": "bridge.identity",
            "party": party,
            "sign_alg": "ed25519",
            "sign_key": bytes(signing.verify_key),
            "suite": list(SUITE_X25519_CHACHA),
            "enc_key": enc_pub,
            "created": created,
        })
        signature = signing.sign(signed_message(TAG_IDENTITY, statement)).signature
        public = PublicIdentity.from_statement(statement, signature)
        return cls(sign_seed=sign_seed, enc_secret=enc_secret, public=public)

    def _secret_bytes(self) -> bytes:
        return codec.encode({
            "sign_seed": bytes(self._signing),
            "enc_secret": self._enc.private_bytes_raw(),
        })

    def dumps(self, *, passphrase: bytes | None = None,
              random_bytes: Callable[[int], bytes] = os.urandom) -> str:
        """The private key file's text. With a passphrase the secrets are sealed (Argon2id)."""
        doc: dict[str, Any] = {
            "bridge_private_key": KEY_FILE_VERSION,
            "party": self.party,
            "public": self.public.to_json(),
        }
        secrets = self._secret_bytes()
        if passphrase is None:
            doc["protection"] = "none"
            doc["secrets"] = base64.b64encode(secrets).decode("ascii")
        else:
            salt = random_bytes(nacl.pwhash.argon2id.SALTBYTES)
            ops = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
            mem = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
            key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
                                           opslimit=ops, memlimit=mem)
            nonce = random_bytes(nacl.secret.SecretBox.NONCE_SIZE)
            box = nacl.secret.SecretBox(key).encrypt(secrets, nonce)
            doc["protection"] = SEALED
            doc["kdf"] = {"salt": base64.b64encode(salt).decode("ascii"),
                          "opslimit": ops, "memlimit": mem}
            doc["secrets"] = base64.b64encode(bytes(box)).decode("ascii")
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def loads(cls, text: str | bytes, *, passphrase: bytes | None = None,
              source: str = "key file") -> PrivateIdentity:
        """A private key file (PROTOCOL §4.4), read as strictly as an identity file."""
        doc, public, raw = _key_file_fields(text, source)
        if doc["protection"] == SEALED:
            if passphrase is None:
                raise UsageError(f"{source} is sealed with a passphrase: give --passphrase-file")
            try:
                salt, ops, mem = _kdf_parameters(doc["kdf"])
            except ValueError as exc:
                raise UsageError(f"{source}: damaged passphrase parameters ({exc})") from exc
            key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
                                           opslimit=ops, memlimit=mem)
            try:
                raw = nacl.secret.SecretBox(key).decrypt(raw)
            except nacl.exceptions.CryptoError as exc:
                raise UsageError(f"{source}: wrong passphrase") from exc
        try:
            secrets = codec.decode(raw, codec.SMALL_LIMITS)
            return cls(sign_seed=secrets["sign_seed"], enc_secret=secrets["enc_secret"],
                       public=public)
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source}: damaged key material") from exc


SEALED = "argon2id-xsalsa20poly1305"
PRIVATE_FILE_KEYS = frozenset({"bridge_private_key", "party", "public", "protection",
                               "secrets"})  # and "kdf" when SEALED
KDF_KEYS = frozenset({"salt", "opslimit", "memlimit"})
# Argon2id work a key file may ask for: libsodium's minimums up to 16 passes over 1 GiB
# (its SENSITIVE preset is 4 over 1 GiB). A file asking more is refused, not obeyed for hours.
KDF_OPSLIMIT = (nacl.pwhash.argon2id.OPSLIMIT_MIN, 16)
KDF_MEMLIMIT = (nacl.pwhash.argon2id.MEMLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE)


def _key_file_fields(text: str | bytes, source: str
                     ) -> tuple[dict[str, Any], PublicIdentity, bytes]:
    """The checked fields of a private key file: the document, its public identity and the
    secrets' bytes (sealed or not). UsageError says what is wrong."""
    try:
        doc = _key_file_json(text)
        if not _is_version(doc.get("bridge_private_key"), KEY_FILE_VERSION):
            raise ValueError("not a Bridge private key file")
        protection = doc.get("protection")
        if protection not in ("none", SEALED):
            raise UsageError(f"{source}: unknown protection {protection!r}")
        expected = PRIVATE_FILE_KEYS | ({"kdf"} if protection == SEALED else set())
        if set(doc) != expected:
            raise ValueError(f"with protection {protection!r} it has exactly the keys "
                             f"{', '.join(sorted(expected))}")
        if not isinstance(doc["public"], dict):
            raise ValueError("public is not an identity file's object")
        public = PublicIdentity.loads(json.dumps(doc["public"]), source=source)
        if doc["party"] != public.party:
            raise ValueError("its party differs from the party of its public identity")
        raw = _strict_b64(doc["secrets"])
    except (ValueError, RecursionError, VerificationError) as exc:
        raise UsageError(f"{source}: not a valid Bridge private key file ({exc})") from exc
    return doc, public, raw


def _kdf_parameters(kdf: Any) -> tuple[bytes, int, int]:
    if not isinstance(kdf, dict) or set(kdf) != KDF_KEYS:
        raise ValueError(f"kdf has exactly the keys {', '.join(sorted(KDF_KEYS))}")
    salt = _strict_b64(kdf["salt"])
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise ValueError(f"the salt is {nacl.pwhash.argon2id.SALTBYTES} bytes")
    ops, mem = kdf["opslimit"], kdf["memlimit"]
    for name, value, (low, high) in (("opslimit", ops, KDF_OPSLIMIT),
                                     ("memlimit", mem, KDF_MEMLIMIT)):
        if type(value) is not int or not low <= value <= high:  # true is not 1 here either
            raise ValueError(f"{name} is a whole number from {low} to {high}")
    return salt, ops, mem


def check_private_file_mode(path: Path) -> None:
    """Refuse a private key file that group or others can read, as ssh does."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise UsageError(f"cannot read private key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise UsageError(
            f"Permissions {mode:04o} for '{path}' are too open: a private key file must not be "
            f"accessible by group or others. Bridge refuses to use it. "
            f"Fix: chmod 600 '{path}'"
        )


def load_private(path: str | os.PathLike[str], *,
                 passphrase: bytes | None = None) -> PrivateIdentity:
    p = Path(path)
    check_private_file_mode(p)
    return PrivateIdentity.loads(_read_key_file(p, "private key file"), passphrase=passphrase,
                                 source=str(p))


def write_private(path: Path, identity: PrivateIdentity, *,
                  passphrase: bytes | None = None) -> None:
    """Create the key file with mode 0600 from the start (no window where it is readable), and
    never over an existing one."""
    write_file(path, identity.dumps(passphrase=passphrase))


@dataclass(frozen=True)
class Keyring:
    """Known public identities by key id: the pinned peers and oneself, and their key history.

    A key's signatures are in force from its creation until the first of: its retirement by a
    rotation (``retired``: the rotation's ``at``; a later signature by the retired key is a
    forgery, PROTOCOL.md §4.5) and its revocation (``revoked``: the earliest ``since`` of every
    valid revocation of it, so that the order in which they are learnt cannot matter)."""

    by_id: Mapping[bytes, PublicIdentity]
    # key id -> time (ms) from which its signatures are void (a verified revocation).
    revoked: Mapping[bytes, int] = field(default_factory=dict)
    # key id -> time (ms) of the rotation that retired it; signatures dated after it are void.
    retired: Mapping[bytes, int] = field(default_factory=dict)

    @classmethod
    def of(cls, identities: Iterable[PublicIdentity],
           revoked: Mapping[bytes, int] | None = None,
           retired: Mapping[bytes, int] | None = None) -> Keyring:
        return cls({i.key_id: i for i in identities}, dict(revoked or {}), dict(retired or {}))

    def revoked_at(self, key_id: bytes, created: int) -> bool:
        """Is a signature by ``key_id`` dated ``created`` void under a known revocation?"""
        since = self.revoked.get(key_id)
        return since is not None and created >= since

    def void_reason(self, key_id: bytes, at: int) -> str | None:
        """Why a signature by ``key_id`` dated ``at`` is void (``revoked_key`` or
        ``retired_key``), or None while the key was in force at ``at``."""
        if self.revoked_at(key_id, at):
            return "revoked_key"
        retired = self.retired.get(key_id)
        # Strictly after: the rotation statement itself, and what was sealed in the same
        # millisecond before it, carry the retiring key's last valid time.
        if retired is not None and at > retired:
            return "retired_key"
        return None

    def check_in_force(self, signer: PublicIdentity, at: int, what: str) -> None:
        """Raise ``VerificationError`` (reason ``revoked_key`` or ``retired_key``) unless
        ``signer``'s key was in force at ``at``, the time its signature on ``what`` claims."""
        reason = self.void_reason(signer.key_id, at)
        if reason == "revoked_key":
            raise VerificationError(
                f"{what} is signed by {signer.party}'s key {signer.fingerprint}, revoked from "
                f"{iso_time(self.revoked[signer.key_id])}, at {iso_time(at)}", reason=reason)
        if reason == "retired_key":
            raise VerificationError(
                f"{what} is signed by {signer.party}'s key {signer.fingerprint}, retired by a "
                f"rotation at {iso_time(self.retired[signer.key_id])}, at {iso_time(at)}: a "
                "retired key signs nothing later", reason=reason)

    def revoked_later(self, key_id: bytes, at: int) -> int | None:
        """``since`` of the revocation of ``key_id`` when a signature dated ``at`` predates
        it: the signature stands, but proves nothing by itself (a thief can backdate), only
        with evidence that it existed before ``since`` (PROTOCOL.md §4.5)."""
        since = self.revoked.get(key_id)
        return since if since is not None and at < since else None

    @classmethod
    def from_files(cls, paths: Iterable[str | os.PathLike[str]]) -> Keyring:
        return cls.of(load_public(p) for p in paths)

    def get(self, key_id: bytes) -> PublicIdentity | None:
        return self.by_id.get(key_id)

    def __iter__(self) -> Iterator[PublicIdentity]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)


# The one time formatter (bridge.core.times), total: a far-future signed time still prints.
iso_time = times.format_ms


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


__all__ = [
    "SUITE_X25519_CHACHA", "TAG_DOCUMENT", "TAG_ENVELOPE", "TAG_FINGERPRINT", "TAG_HPKE_INFO",
    "TAG_IDENTITY", "TAG_KEY_REVOCATION", "TAG_KEY_ROTATION", "TAG_TRANSPORT_RECEIPT",
    "Keyring", "OpaqueCryptoError",
    "PrivateIdentity", "PublicIdentity", "check_party", "check_private_file_mode",
    "format_fingerprint", "iso_time", "load_private", "load_public", "normalise_fingerprint",
    "signed_message", "verify_signature", "write_private",
]

"""Party identities: key pairs, the text of identity and key files, fingerprints, signing and
verifying. Bytes in, objects out: the files themselves are read and written by
``bridge.home.key_files``, and every algorithm is called through ``bridge.core.crypto.suites``.

A party's identity is a signing key and an HPKE (RFC 9180) encryption key of one suite: in
suite 1 an Ed25519 key (RFC 8032) and an X25519 key; in suite 2 an Ed25519 and an ML-DSA-65 key
(the statement's ``sign_key`` is the two public keys concatenated, and each signature is two)
and an X-Wing key (PROTOCOL.md §4.1). The public half travels as an *identity statement*:
canonical bytes naming the party and its keys, self-signed with the signing key. Its SHA-256
(with a domain tag) is the ``key_id`` that envelopes, documents and receipts name; its first
160 bits, in base32, are the *fingerprint* that people compare out of band before pinning a
peer.

Every signature in Bridge covers ``tag || 0x00 || body`` with a distinct ASCII tag per purpose,
so that a signature made for one purpose can never be presented as another (see PROTOCOL.md §3).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.core import codec, times
from bridge.core.beside import Beside, Pending
from bridge.core.crypto import suites
from bridge.core.crypto.key_file_json import is_version, key_file_json, strict_b64
from bridge.core.crypto.suites import SEALED, SUITE_X25519_CHACHA
from bridge.core.errors import (
    DecodeError,
    InputError,
    OpaqueCryptoError,
    PeerError,
    UsageError,
    VerificationError,
)
from bridge.core.printable import quoted

# Domain-separation tags (PROTOCOL.md §3). Never reuse one for another purpose.
TAG_IDENTITY = b"bridge/v1/identity"
TAG_FINGERPRINT = b"bridge/v1/fingerprint"
TAG_DOCUMENT = b"bridge/v1/document"
TAG_ENVELOPE = b"bridge/v1/envelope"
TAG_HPKE_INFO = b"bridge/v1/hpke-info"
TAG_TRANSPORT_RECEIPT = b"bridge/v1/transport-receipt"
TAG_KEY_ROTATION = b"bridge/v1/key-rotation"
TAG_KEY_REVOCATION = b"bridge/v1/key-revocation"

# \Z, not $: "$" also matches before a trailing newline ("alpha\n").
PARTY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\Z")
KEY_FILE_VERSION = 1
SignFn = Callable[[bytes, bytes], bytes]


def signed_message(tag: bytes, body: bytes) -> bytes:
    """The exact bytes a signature covers: ``tag || 0x00 || body`` (PROTOCOL.md §3)."""
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


IDENTITY_FILE_KEYS = frozenset({"bridge_identity", "party", "fingerprint", "statement",
                                "signature"})


def verify_signature(sign_key: bytes, tag: bytes, body: bytes, signature: bytes, *,
                     suite: suites.SuiteId = SUITE_X25519_CHACHA) -> bool:
    """True iff ``signature`` is a valid signature by ``sign_key`` over tag and body, under the
    signature algorithm of ``suite`` (Ed25519 in suite 1; in suite 2 Ed25519 and ML-DSA-65,
    both required)."""
    entry = suites.get(suite)
    return entry is not None and entry.verify(sign_key, signed_message(tag, body), signature)


def _known_suite(value: tuple[Any, ...]) -> suites.Suite | None:
    """The table's entry for a statement's ``suite``: three integers (true and 32.0 are equal
    to integers in Python, and a list inside is not hashable), or None."""
    if len(value) != 3 or any(type(x) is not int for x in value):
        return None
    return suites.get((value[0], value[1], value[2]))


@dataclass(frozen=True, kw_only=True)
class PublicIdentity:
    """A verified identity statement. Build with ``from_statement`` or ``loads``."""

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

    @property
    def note_key(self) -> bytes:
        """The Ed25519 public key of this party's C2SP notes (``PrivateIdentity.sign_note``),
        covered by the fingerprint as part of ``sign_key``."""
        return suites.note_public_key(self.sign_key)

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
        entry = _known_suite(suite)
        # The signing key is checked first, by the rules of its suite (of suite 1 when the
        # suite is unknown), so that a statement's reason does not depend on the table's size.
        rules = entry or suites.DEFAULT_SUITE
        if (alg != rules.sign_alg or not isinstance(sign_key, bytes)
                or len(sign_key) != rules.sign_key_size):
            raise VerificationError(f"identity signing key is not {rules.sign_name}",
                                    reason="not_identity")
        if entry is None or not isinstance(enc_key, bytes) or len(enc_key) != entry.enc_key_size:
            raise VerificationError("identity HPKE suite not supported", reason="suite")
        if not entry.enc_key_valid(enc_key):
            raise VerificationError("identity encryption key is not a valid key of its suite",
                                    reason="not_identity")
        if not isinstance(created, int) or isinstance(created, bool):
            raise VerificationError("identity creation time is not an integer",
                                    reason="not_identity")
        if not entry.verify(sign_key, signed_message(TAG_IDENTITY, statement), signature):
            raise VerificationError("identity self-signature does not verify",
                                    reason="bad_signature")
        key_id = suites.sha256(signed_message(TAG_FINGERPRINT, statement))
        return cls(party=party, sign_key=sign_key, enc_key=enc_key, suite=entry.id,
                   created=created, statement=statement, signature=signature, key_id=key_id)

    def verify(self, tag: bytes, body: bytes, signature: bytes) -> bool:
        return verify_signature(self.sign_key, tag, body, signature, suite=self.suite)

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
            data = key_file_json(text)
        except (ValueError, RecursionError) as exc:  # nesting bomb: RecursionError
            raise VerificationError(f"{source}: not an identity file: {exc}",
                                    reason="not_identity") from exc
        if not is_version(data.get("bridge_identity"), 1):
            raise VerificationError(f"{source}: not a Bridge identity file", reason="not_identity")
        if set(data) != IDENTITY_FILE_KEYS:
            raise VerificationError(f"{source}: an identity file has exactly the keys "
                                    f"{', '.join(sorted(IDENTITY_FILE_KEYS))}",
                                    reason="not_identity")
        try:
            statement = strict_b64(data["statement"])
            signature = strict_b64(data["signature"])
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


class PrivateIdentity:
    """A party's private keys with its public identity. Never printed, never logged."""

    __slots__ = ("_decryption", "_note", "_signing", "public")

    def __init__(self, *, sign_seed: bytes, enc_secret: bytes, public: PublicIdentity) -> None:
        suite = suites.SUITES[public.suite]  # a PublicIdentity's suite is in the table
        self._signing = suite.signing_key(sign_seed)
        self._note = suites.note_signing_key(sign_seed)
        self._decryption = suite.decryption_key(enc_secret)
        if self._signing.public != public.sign_key:
            raise UsageError("private signing key does not match its identity statement")
        if self._decryption.public != public.enc_key:
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

    def sign(self, tag: bytes, body: bytes) -> bytes:
        return self._signing.sign(signed_message(tag, body))

    def start_sign(self, tag: bytes, body: bytes, beside: Beside) -> Pending[bytes]:
        """``sign(tag, body)``, its slow half (ML-DSA-65 in suite 2) made ``beside``."""
        return self._signing.start(signed_message(tag, body), beside)

    def sign_note(self, message: bytes) -> bytes:
        """The party's Ed25519 signature over a C2SP note message (a checkpoint text, or a
        cosignature's signed message: PROTOCOL.md §13), the one use of the key outside the
        tagged messages of §3. A note message holds no 0x00 (signed-note allows no control
        character), every tagged message holds one after its tag: neither can be passed off
        as the other."""
        if b"\x00" in message:
            raise UsageError("a note message holds no NUL byte")
        return self._note.sign(message)

    def decrypt(self, ciphertext: bytes, info: bytes) -> bytes:
        """HPKE open with this party's key, in its suite. Raises whatever the suite raises:
        the caller turns every failure into one opaque error."""
        return self._decryption.open(ciphertext, info)

    @classmethod
    def generate(
        cls,
        party: str,
        *,
        created: int,
        random_bytes: Callable[[int], bytes] = os.urandom,
        suite: suites.Suite = suites.DEFAULT_SUITE,
    ) -> PrivateIdentity:
        """New keys. ``random_bytes`` is a parameter so that test keys can be fixed."""
        check_party(party)
        sign_seed = random_bytes(suite.sign_seed_size)
        enc_secret = random_bytes(suite.enc_secret_size)
        signing = suite.signing_key(sign_seed)
        statement = codec.encode({
            "v": 1,
            "type": "bridge.identity",
            "party": party,
            "sign_alg": suite.sign_alg,
            "sign_key": signing.public,
            "suite": list(suite.id),
            "enc_key": suite.decryption_key(enc_secret).public,
            "created": created,
        })
        signature = signing.sign(signed_message(TAG_IDENTITY, statement))
        public = PublicIdentity.from_statement(statement, signature)
        return cls(sign_seed=sign_seed, enc_secret=enc_secret, public=public)

    def _secret_bytes(self) -> bytes:
        return codec.encode({
            "sign_seed": self._signing.seed(),
            "enc_secret": self._decryption.secret(),
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
            salt = random_bytes(suites.KDF_SALT_SIZE)
            ops, mem = suites.ARGON2ID_COST
            nonce = random_bytes(suites.SEAL_NONCE_SIZE)
            sealed = suites.seal_secrets(passphrase, secrets, salt=salt, nonce=nonce,
                                         opslimit=ops, memlimit=mem)
            doc["protection"] = SEALED
            doc["kdf"] = {"salt": base64.b64encode(salt).decode("ascii"),
                          "opslimit": ops, "memlimit": mem}
            doc["secrets"] = base64.b64encode(sealed).decode("ascii")
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
            opened = suites.open_secrets(passphrase, raw, salt=salt, opslimit=ops, memlimit=mem)
            if opened is None:
                raise UsageError(f"{source}: wrong passphrase")
            raw = opened
        try:
            secrets = codec.decode(raw, codec.SMALL_LIMITS)
            return cls(sign_seed=secrets["sign_seed"], enc_secret=secrets["enc_secret"],
                       public=public)
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{source}: damaged key material") from exc


PRIVATE_FILE_KEYS = frozenset({"bridge_private_key", "party", "public", "protection",
                               "secrets"})  # and "kdf" when SEALED
KDF_KEYS = frozenset({"salt", "opslimit", "memlimit"})


def _key_file_fields(text: str | bytes, source: str
                     ) -> tuple[dict[str, Any], PublicIdentity, bytes]:
    """The checked fields of a private key file: the document, its public identity and the
    secrets' bytes (sealed or not). UsageError says what is wrong."""
    try:
        doc = key_file_json(text)
        if not is_version(doc.get("bridge_private_key"), KEY_FILE_VERSION):
            raise ValueError("not a Bridge private key file")
        protection = doc.get("protection")
        if protection not in ("none", SEALED):
            raise UsageError(f"{source}: unknown protection {quoted(protection)}")
        expected = PRIVATE_FILE_KEYS | ({"kdf"} if protection == SEALED else set())
        if set(doc) != expected:
            raise ValueError(f"with protection {quoted(protection)} it has exactly the keys "
                             f"{', '.join(sorted(expected))}")
        if not isinstance(doc["public"], dict):
            raise ValueError("public is not an identity file's object")
        public = PublicIdentity.loads(json.dumps(doc["public"]), source=source)
        if doc["party"] != public.party:
            raise ValueError("its party differs from the party of its public identity")
        raw = strict_b64(doc["secrets"])
    except (ValueError, RecursionError, VerificationError) as exc:
        raise UsageError(f"{source}: not a valid Bridge private key file ({exc})") from exc
    return doc, public, raw


def _kdf_parameters(kdf: Any) -> tuple[bytes, int, int]:
    if not isinstance(kdf, dict) or set(kdf) != KDF_KEYS:
        raise ValueError(f"kdf has exactly the keys {', '.join(sorted(KDF_KEYS))}")
    salt = strict_b64(kdf["salt"])
    if len(salt) != suites.KDF_SALT_SIZE:
        raise ValueError(f"the salt is {suites.KDF_SALT_SIZE} bytes")
    ops, mem = kdf["opslimit"], kdf["memlimit"]
    for name, value, (low, high) in (("opslimit", ops, suites.KDF_OPSLIMIT),
                                     ("memlimit", mem, suites.KDF_MEMLIMIT)):
        if type(value) is not int or not low <= value <= high:  # true is not 1 here either
            raise ValueError(f"{name} is a whole number from {low} to {high}")
    return salt, ops, mem


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
    "PrivateIdentity", "PublicIdentity", "check_party", "format_fingerprint", "iso_time",
    "normalise_fingerprint", "signed_message", "verify_signature",
]

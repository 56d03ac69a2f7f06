"""Suite 2 as PROTOCOL.md §3.1 and §5.2 write it, with ``cryptography`` and msgpack alone (no
Bridge code): the suite-2 test identities' self-signatures verify half by half, and a committed
suite-2 envelope opens with X-Wing HPKE from the 32-byte secret of beta-test's key file."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent / "schemas" / "vectors" / "suite-2"
CONTEXT = bytes.fromhex("6272696467652f76312f656432353531392b6d6c2d6473612d3635")  # §3.1


def hybrid_verify(sign_key: bytes, tag: bytes, body: bytes, signature: bytes) -> None:
    """Raises unless both halves verify (§3.1)."""
    assert len(sign_key) == 1984 and len(signature) == 3373
    message = tag + b"\x00" + body
    Ed25519PublicKey.from_public_bytes(sign_key[:32]).verify(signature[:64], message)
    MLDSA65PublicKey.from_public_bytes(sign_key[32:]).verify(signature[64:], message, CONTEXT)


def identity(party: str) -> dict[str, Any]:
    doc = json.loads((ROOT / "keys" / f"{party}.pub").read_text())
    statement, signature = base64.b64decode(doc["statement"]), base64.b64decode(doc["signature"])
    value: dict[str, Any] = msgpack.unpackb(statement)
    assert value["suite"] == [0x647A, 1, 3] and value["sign_alg"] == "ed25519+ml-dsa-65"
    hybrid_verify(value["sign_key"], b"bridge/v1/identity", statement, signature)
    key_id = hashlib.sha256(b"bridge/v1/fingerprint\x00" + statement).digest()
    return value | {"key_id": key_id}


def xwing_private(secret: bytes) -> hpke.MLKEM768X25519PrivateKey:
    expanded = hashlib.shake_256(secret).digest(96)
    return hpke.MLKEM768X25519PrivateKey(MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
                                         X25519PrivateKey.from_private_bytes(expanded[64:]))


def test_suite_2_identities_verify_with_cryptography_alone() -> None:
    expected = json.loads((ROOT / "keys" / "expected.json").read_text())["fingerprints"]
    for party in ("alpha-test", "beta-test", "mallory-test"):
        key_id = identity(party)["key_id"]
        fingerprint = base64.b32encode(key_id[:20]).decode()
        assert " ".join(fingerprint[i:i + 4] for i in range(0, 32, 4)) == expected[party]


def test_a_suite_2_envelope_opens_with_cryptography_alone() -> None:
    alpha, beta = identity("alpha-test"), identity("beta-test")
    key_file = json.loads((ROOT / "keys" / "beta-test.key").read_text())
    secrets = msgpack.unpackb(base64.b64decode(key_file["secrets"]))
    recipient = xwing_private(secrets["enc_secret"])
    sidecar = json.loads((ROOT / "envelopes" / "001-manifest.json").read_text())
    outer = msgpack.unpackb((ROOT / "envelopes" / sidecar["file"]).read_bytes())
    h, c, s = outer["h"], outer["c"], outer["s"]
    header = msgpack.unpackb(h)
    assert header["from_key"] == alpha["key_id"] and header["to_key"] == beta["key_id"]
    hybrid_verify(alpha["sign_key"], b"bridge/v1/envelope",
                  struct.pack(">I", len(h)) + h + hashlib.sha256(c).digest(), s)
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256,
                       hpke.AEAD.CHACHA20_POLY1305)
    payload = suite.decrypt(c, recipient, b"bridge/v1/hpke-info\x00" + h)
    assert hashlib.sha256(payload).hexdigest() == sidecar["payload_sha256"]
    assert len(c) == 1120 + len(payload) + 16

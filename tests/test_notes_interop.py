"""The C2SP bytes, checked against what Bridge did not write: published vectors of other
implementations, and a second, minimal implementation of the formats written here from the
specifications (signed-note, tlog-checkpoint, tlog-cosignature, tlog-witness), using
``cryptography``'s Ed25519 rather than the libsodium one Bridge signs with."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from bridge.core import logtree
from bridge.core.crypto import suites
from bridge.core.errors import VerificationError
from bridge.core.merkle import MerkleTree
from bridge.core.notes import checkpoint, cosignature, note, witness_wire

# --- golang.org/x/mod/sumdb/note, note_test.go / example_test.go (ExampleSign) --------------
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFY"
           "C2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()
# --- transparency-dev/formats note/note_cosigv1_test.go: a native cosignature/v1 verifier
# key (type 0x04), and a cosignature whose timestamp is 1727964367.
COSIG_VERIFIER = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
COSIG_SIG = ("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHW"
             "WOworDcFiEBYJXORmnFBOBA==")


def _go_seed() -> bytes:
    blob = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    assert blob[0] == 0x01
    return blob[1:]


def _go_public() -> bytes:
    blob = base64.b64decode(GO_VERIFIER.split("+", 2)[2])
    assert blob[0] == 0x01
    return blob[1:]


def test_bridge_signs_the_go_sumdb_example_note_byte_for_byte() -> None:
    key = suites.ed25519_signing_key(_go_seed())
    assert key.public == _go_public()
    sig = checkpoint.ed25519_signature("PeterNeumann", key.public,
                                       key.sign(GO_TEXT.encode()))
    assert note.format_note(GO_TEXT, [sig]) == GO_NOTE


def test_bridge_computes_the_go_verifier_key_text() -> None:
    assert note.verifier_key("PeterNeumann", suites.NOTE_ED25519, _go_public()) == GO_VERIFIER


def test_bridge_opens_the_go_note_and_refuses_one_changed_letter() -> None:
    v = checkpoint.ed25519_note_verifier("PeterNeumann", _go_public())
    opened, good = note.open_note(GO_NOTE, [v])
    assert opened.text == GO_TEXT and len(good) == 1
    with pytest.raises(VerificationError) as err:
        note.open_note(GO_NOTE.replace(b"cryptography", b"cryptographY"), [v])
    assert err.value.reason == "bad_signature"


def test_cosignature_key_id_matches_the_published_type_4_verifier_key() -> None:
    name, kid, blob = COSIG_VERIFIER.split("+")
    raw = base64.b64decode(blob)
    assert raw[0] == suites.NOTE_COSIGNATURE_V1
    assert note.key_id(name, suites.NOTE_COSIGNATURE_V1, raw[1:]).hex() == kid
    assert note.verifier_key(name, suites.NOTE_COSIGNATURE_V1, raw[1:]) == COSIG_VERIFIER


def test_cosignature_timestamp_is_read_from_the_published_signature() -> None:
    blob = base64.b64decode(COSIG_SIG)
    line = note.NoteSignature(name="w", key_id=blob[:4], signature=blob[4:])
    read = cosignature.read_cosignature(line)
    assert read is not None and read[0] == 1727964367


# --- a second implementation, from the specifications ----------------------------------------

def ref_key_id(name: str, alg: int, pub: bytes) -> bytes:
    # signed-note §Signatures: SHA-256(key name || 0x0A || signature type || public key)[:4]
    return hashlib.sha256(name.encode() + b"\x0a" + bytes([alg]) + pub).digest()[:4]


def ref_checkpoint(origin: str, size: int, root: bytes) -> bytes:
    # tlog-checkpoint §Note text: three lines, each newline-terminated.
    return (origin + "\n" + str(size) + "\n" + base64.b64encode(root).decode() + "\n").encode()


def ref_sig_line(name: str, kid: bytes, sig: bytes) -> bytes:
    return "\u2014 ".encode() + name.encode() + b" " + base64.b64encode(kid + sig) + b"\n"


def ref_cosign(sk: Ed25519PrivateKey, name: str, t: int, body: bytes) -> bytes:
    # tlog-cosignature §Ed25519 signed message, and timestamped_signature (big-endian u64).
    pub = sk.public_key().public_bytes_raw()
    msg = b"cosignature/v1\n" + b"time " + str(t).encode() + b"\n" + body
    return ref_sig_line(name, ref_key_id(name, 4, pub), struct.pack(">Q", t) + sk.sign(msg))


SEED = bytes(range(32))
WSEED = bytes(range(32, 64))


def test_checkpoint_note_bytes_equal_the_reference_implementation() -> None:
    key = suites.ed25519_signing_key(SEED)
    root = hashlib.sha256(b"root").digest()
    origin = checkpoint.party_origin("alpha", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    cp = checkpoint.Checkpoint(origin=origin, size=20852163, root=root)
    mine = checkpoint.signed_checkpoint(cp, public=key.public, sign=key.sign)
    sk = Ed25519PrivateKey.from_private_bytes(SEED)
    body = ref_checkpoint(origin, 20852163, root)
    ref = body + b"\n" + ref_sig_line(origin, ref_key_id(origin, 1, key.public), sk.sign(body))
    assert mine == ref


def test_cosignature_bytes_equal_the_reference_and_verify_there() -> None:
    wkey = suites.ed25519_signing_key(WSEED)
    body = ref_checkpoint("bridge.example/alpha/abcd", 7, bytes(32))
    made = cosignature.cosign(body.decode(), name="bridge.example/witness/mediator",
                              public=wkey.public, timestamp=1679315147, sign=wkey.sign)
    sk = Ed25519PrivateKey.from_private_bytes(WSEED)
    assert made.line.line() == ref_cosign(sk, "bridge.example/witness/mediator", 1679315147,
                                          body)
    # And the reference's own verification of what Bridge made.
    blob = base64.b64decode(made.line.line().split(b" ")[2])
    t = struct.unpack(">Q", blob[4:12])[0]
    msg = b"cosignature/v1\ntime " + str(t).encode() + b"\n" + body
    Ed25519PublicKey.from_public_bytes(wkey.public).verify(blob[12:], msg)


def test_bridge_verifies_a_cosignature_made_by_the_reference() -> None:
    sk = Ed25519PrivateKey.from_private_bytes(WSEED)
    pub = sk.public_key().public_bytes_raw()
    body = ref_checkpoint("bridge.example/alpha/abcd", 3, bytes(32))
    data = body + b"\n" + ref_cosign(sk, "w.example", 5, body)
    v = cosignature.cosignature_verifier("w.example", pub)
    _, good = note.open_note(data, [v])
    assert cosignature.read_cosignature(good[0]) is not None
    with pytest.raises(VerificationError):
        note.open_note(data.replace(b"\n3\n", b"\n4\n"), [v])


def test_add_checkpoint_body_equals_the_spec_layout() -> None:
    tree = MerkleTree.from_leaves([bytes([i]) for i in range(9)])
    proof = logtree.consistency_proof(tree.node, 5, 9)
    cp_note = "o\n9\nAAAA\n\n\u2014 o AAAAAA==\n".encode()
    ref = b"old 5\n" + b"".join(base64.b64encode(h) + b"\n" for h in proof) + b"\n" + cp_note
    assert witness_wire.format_request(5, proof, cp_note) == ref
    parsed = witness_wire.parse_request(ref)
    assert (parsed.old, list(parsed.proof), parsed.note) == (5, proof, cp_note)

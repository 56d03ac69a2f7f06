"""Signed notes, checkpoints and the witness's decision (bridge.core.notes): what outside bytes
are refused with, and every answer of tlog-witness §add-checkpoint."""

from __future__ import annotations

import pytest

from bridge.core import logtree
from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import DecodeError, InputError, UsageError, VerificationError
from bridge.core.merkle import MerkleTree
from bridge.core.notes import checkpoint, cosignature, note, witness_wire
from bridge.core.notes.witness_wire import AddCheckpoint, Witnessed

LOG = suites.ed25519_signing_key(bytes(32))
WIT = suites.ed25519_signing_key(bytes([1]) * 32)
ORIGIN = "bridge.example/alpha/abcdefghijklmnop"
WNAME = "bridge.example/witness/mediator"


def _tree(n: int) -> MerkleTree:
    return MerkleTree.from_leaves([bytes([i]) for i in range(n)])


def _note(n: int, *, leaves: MerkleTree | None = None, key: suites.SigningKey = LOG) -> bytes:
    t = leaves or _tree(n)
    cp = checkpoint.Checkpoint(origin=ORIGIN, size=n, root=logtree.tree_root(t.node, n))
    return checkpoint.signed_checkpoint(cp, public=key.public, sign=key.sign)


@pytest.mark.parametrize("data", [
    b"no blank line\n\xe2\x80\x94 k AAAAAAA=\n",
    b"text\n\n",  # no signature lines
    b"text\n\n- k AAAAAAA=\n",  # a hyphen, not an em dash
    b"text\n\n\xe2\x80\x94 k not*base64\n",
    b"text\n\n\xe2\x80\x94 k AAAA\n",  # a key ID and no signature
    b"te\x07xt\n\n\xe2\x80\x94 k AAAAAAA=\n",  # a control character
    b"\xff\n\n\xe2\x80\x94 k AAAAAAA=\n",  # not UTF-8
    b"text\n\n" + b"\xe2\x80\x94 k AAAAAAA=\n" * 17,  # over 16 signatures
])
def test_a_malformed_note_is_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(DecodeError) as err:
        note.parse_note(data)
    assert err.value.reason == "malformed_note"


@pytest.mark.parametrize("text", ["o\n01\nAAAA\n", "o\n1\n", "o\n1\nAAAA\n", "o\n-1\n" + "A" * 43
                                  + "=\n", "o x\n1\n" + "A" * 43 + "=\n", "o\n1\n\n"])
def test_a_malformed_checkpoint_text_is_refused(text: str) -> None:
    with pytest.raises(DecodeError) as err:
        checkpoint.parse_checkpoint_text(text)
    assert err.value.reason == "malformed_checkpoint"


def test_a_signature_by_an_unknown_key_sharing_the_name_is_ignored_not_trusted() -> None:
    data = _note(3, key=WIT)  # same name, another key: another key ID
    with pytest.raises(VerificationError) as err:
        note.open_note(data, [checkpoint.ed25519_note_verifier(ORIGIN, LOG.public)])
    assert err.value.reason == "unknown_key"


def test_party_key_refuses_to_sign_a_message_with_a_nul_byte() -> None:
    party = PrivateIdentity.generate("alpha", created=1_700_000_000)
    with pytest.raises(UsageError):
        party.sign_note(b"bridge/v1/document\x00body")
    assert suites.ed25519_verify(party.public.note_key, b"x\n", party.sign_note(b"x\n"))


def test_a_suite_2_party_signs_its_notes_with_the_ed25519_half_of_its_hybrid_key() -> None:
    """C2SP notes are Ed25519: a hybrid (suite-2) key signs them with its Ed25519 half, which
    a plain Ed25519 note verifier checks, and the hybrid signature is never what a note holds."""
    party = PrivateIdentity.generate("alpha", created=1_700_000_000, suite=suites.SUITE_2)
    assert party.public.note_key == party.public.sign_key[:32]
    sig = party.sign_note(b"x\n")
    assert len(sig) == 64 and suites.ed25519_verify(party.public.note_key, b"x\n", sig)
    assert not suites.ed25519_verify(party.public.sign_key[32:64], b"x\n", sig)
    cp = checkpoint.Checkpoint(origin=ORIGIN, size=1, root=suites.sha256(b"record"))
    signed = checkpoint.signed_checkpoint(cp, public=party.public.note_key, sign=party.sign_note)
    opened, _ = note.open_note(signed, [checkpoint.ed25519_note_verifier(ORIGIN,
                                                                        party.public.note_key)])
    assert checkpoint.parse_checkpoint_text(opened.text).size == 1


def test_cosignature_time_out_of_range_is_refused() -> None:
    with pytest.raises(InputError):
        cosignature.cosigned_message(2**63, "o\n")


# --- the witness's decision ------------------------------------------------------------------

def _decide(req: AddCheckpoint, seen: Witnessed | None, *,
            known: bool = True) -> witness_wire.Decision:
    def trusted(origin: str) -> list[note.NoteVerifier] | None:
        if not known or origin != ORIGIN:
            return None
        return [checkpoint.ed25519_note_verifier(ORIGIN, LOG.public)]

    def cosign(text: str) -> list[cosignature.Cosignature]:
        return [cosignature.cosign(text, name=WNAME, public=WIT.public, timestamp=1000,
                                   sign=WIT.sign)]

    return witness_wire.decide(req, trusted=trusted, state=lambda o: seen, cosign=cosign)


def test_first_checkpoint_is_cosigned_and_the_cosignature_verifies() -> None:
    d = _decide(AddCheckpoint(0, (), _note(5)), None)
    assert (d.status, d.size) == (200, 5)
    data = _note(5) + b"".join(c.line.line() for c in d.cosignatures)
    v = cosignature.cosignature_verifier(WNAME, WIT.public)
    _, good = note.open_note(data, [v])
    assert cosignature.read_cosignature(good[0]) is not None


def test_extension_with_a_good_proof_is_cosigned() -> None:
    t = _tree(9)
    req = AddCheckpoint(5, tuple(logtree.consistency_proof(t.node, 5, 9)), _note(9))
    assert _decide(req, Witnessed(5, _tree(5).root)).status == 200


def test_rolled_back_log_gets_409_with_the_size_the_witness_has() -> None:
    d = _decide(AddCheckpoint(0, (), _note(3)), Witnessed(9, _tree(9).root))
    assert (d.status, d.reason, d.size) == (409, "stale_old_size", 9)


def test_same_size_with_another_root_is_a_409_fork() -> None:
    other = MerkleTree.from_leaves([b"x"] * 5)
    d = _decide(AddCheckpoint(5, (), _note(5, leaves=other)), Witnessed(5, _tree(5).root))
    assert (d.status, d.reason) == (409, "fork")


def test_forked_extension_gets_422() -> None:
    forked = MerkleTree.from_leaves([b"z", *[bytes([i]) for i in range(1, 9)]])
    req = AddCheckpoint(5, tuple(logtree.consistency_proof(forked.node, 5, 9)),
                        _note(9, leaves=forked))
    assert _decide(req, Witnessed(5, _tree(5).root)).status == 422


def test_unknown_origin_404_bad_signature_403_old_above_size_400() -> None:
    assert _decide(AddCheckpoint(0, (), _note(2)), None, known=False).status == 404
    assert _decide(AddCheckpoint(0, (), _note(2, key=WIT)), None).status == 403
    assert _decide(AddCheckpoint(3, (), _note(2)), None).status == 400
    assert _decide(AddCheckpoint(0, (), b"not a note"), None).status == 400


@pytest.mark.parametrize("body", [b"old 01\n\nx", b"old 1\n", b"new 1\n\nx",
                                  b"old 1\n" + b"AAAA\n" + b"\nx",
                                  b"old 1\n" + b"A" * 43 + b"=\n" * 64 + b"\nx"])
def test_a_malformed_add_checkpoint_body_is_refused(body: bytes) -> None:
    with pytest.raises(DecodeError):
        witness_wire.parse_request(body)


def test_size_body_of_a_409_is_read_strictly() -> None:
    assert witness_wire.parse_size(b"42\n") == 42
    assert witness_wire.parse_size(b"042\n") is None
    assert witness_wire.parse_size(b"42") is None

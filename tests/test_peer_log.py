"""The ``checkpoint`` envelope's payload (PROTOCOL.md §13.7), pure: what a party sends its peer
decodes and verifies, and each attack on it is refused with its reason — a truncated proof,
a checkpoint of another origin or signed by another key, a log that shrank or changed at the
same size, a forged cosignature, a record about someone else, oversized fields."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.core import audit, codec, logtree, peer_log
from bridge.core.audit_tree import LoggedRecord, sign_log_checkpoint
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import DecodeError, PeerError
from bridge.core.merkle import MerkleTree
from bridge.core.notes import checkpoint
from bridge.core.notes.cosignature import cosign
from bridge.core.notes.note import MAX_NOTE_BYTES
from bridge.home.key_files import load_public

ALPHA = PrivateIdentity.generate("alpha", created=1_700_000_000)
MALLORY = PrivateIdentity.generate("alpha", created=1_700_000_001)  # alpha's name, not its key
MEDIATOR = PrivateIdentity.generate("mediator", created=1_700_000_000)
OTHER_WITNESS = PrivateIdentity.generate("notary", created=1_700_000_000)
WITNESSES = {"mediator": MEDIATOR.public}
T = 1_700_000_500


def _log(n: int, *, fork_at: int | None = None) -> list[bytes]:
    """``n`` records of alpha's log: every third one a document record about beta; from
    ``fork_at`` on, records of another history."""
    out = []
    for seq in range(1, n + 1):
        kind = audit.DOCUMENT if seq % 3 == 0 else audit.REFUSAL
        body = {"digest": bytes([seq]) * 32, "dir": "out"} if kind == audit.DOCUMENT \
            else {"i": seq, "fork": fork_at is not None and seq >= fork_at}
        out.append(audit.record_bytes(seq=seq, at=1_700_000_000_000 + seq, kind=kind,
                                      peer="beta", body=codec.encode(body)))
    return out


class _Tree:
    """A log's RFC 9162 tree, its complete subtrees computed from the leaves."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves

    def node(self, level: int, index: int) -> bytes:
        return MerkleTree.from_leaves(self.leaves[index << level:(index + 1) << level]).root

    def root(self, size: int) -> bytes:
        return logtree.tree_root(self.node, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return logtree.inclusion_proof(self.node, index, size)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return logtree.consistency_proof(self.node, old, new)


def _tree(leaves: list[bytes]) -> _Tree:
    return _Tree(leaves)


def _note(size: int, root: bytes, *, signer: PrivateIdentity = ALPHA,
          witnesses: tuple[PrivateIdentity, ...] = (MEDIATOR,)) -> bytes:
    signed = sign_log_checkpoint(signer, size, root)
    text = signed.split(b"\n\n")[0].decode() + "\n"
    lines = b"".join(cosign(text, name=checkpoint.witness_key_name(w.party, w.public.fingerprint),
                            public=w.public.note_key, timestamp=T, sign=w.sign_note).line.line()
                     for w in witnesses)
    return signed + lines


def _message(leaves: list[bytes], size: int, old: int, *, records: bool = True,
             note: bytes | None = None) -> bytes:
    tree = _tree(leaves)
    carried = [LoggedRecord(record=leaves[i], index=i, proof=tuple(tree.inclusion(i, size)))
               for i in range(old, size) if records and (i + 1) % 3 == 0]
    return peer_log.encode(note or _note(size, tree.root(size)), old,
                           tree.consistency(old, size), carried)


def _kept(leaves: list[bytes], size: int) -> checkpoint.Checkpoint:
    return checkpoint.Checkpoint(origin=_origin(), size=size, root=_tree(leaves).root(size))


def _origin() -> str:
    return checkpoint.party_origin("alpha", ALPHA.public.fingerprint)


def _verified(payload: bytes, **kw: object) -> peer_log.VerifiedCheckpoint:
    args: dict[str, object] = {"party": ALPHA.public, "me": "beta", "witnesses": WITNESSES}
    args.update(kw)
    return peer_log.verify(peer_log.decode(payload), **args)  # type: ignore[arg-type]


def _reason(call: object) -> str:
    with pytest.raises(PeerError) as err:
        call()  # type: ignore[operator]
    return err.value.reason


# ------------------------------------------------------------ the honest exchange


def test_honest_checkpoints_verify_and_each_extends_the_one_before() -> None:
    leaves = _log(13)
    first = _verified(_message(leaves, 7, 0))
    assert peer_log.judge(None, first.message) == "first"
    assert first.witnessed == (("mediator", T),)
    assert [r.index for r in first.message.records] == [2, 5]
    assert first.digests == (bytes([3]) * 32, bytes([6]) * 32)
    later = _verified(_message(leaves, 13, 7))
    assert peer_log.judge(_kept(leaves, 7), later.message) == "extends"
    again = _verified(_message(leaves, 13, 13, records=False))
    assert peer_log.judge(_kept(leaves, 13), again.message) == "same"
    # The payload is canonical: what is decoded encodes to the same bytes.
    payload = _message(leaves, 13, 7)
    assert peer_log.decode(payload).to_payload() == payload


def test_cosignature_of_a_witness_not_pinned_here_is_kept_but_not_trusted() -> None:
    leaves = _log(6)
    note = _note(6, _tree(leaves).root(6), witnesses=(OTHER_WITNESS,))
    verified = _verified(_message(leaves, 6, 0, note=note))
    assert verified.witnessed == ()
    assert verified.message.note == note  # kept as it came


# ------------------------------------------------------------ split views


def test_log_rolled_back_and_regrown_differently_is_a_split_view() -> None:
    seen, forked = _log(8), _log(12, fork_at=5)
    msg = _verified(_message(forked, 12, 8)).message
    assert _reason(lambda: peer_log.judge(_kept(seen, 8), msg)) == peer_log.SPLIT_VIEW


def test_same_size_with_another_root_is_a_split_view() -> None:
    seen, forked = _log(8), _log(8, fork_at=2)
    msg = _verified(_message(forked, 8, 8, records=False)).message
    assert _reason(lambda: peer_log.judge(_kept(seen, 8), msg)) == peer_log.SPLIT_VIEW


def test_size_regression_is_a_split_view() -> None:
    leaves = _log(12)
    msg = _verified(_message(leaves, 6, 0, records=False)).message
    assert _reason(lambda: peer_log.judge(_kept(leaves, 12), msg)) == peer_log.SPLIT_VIEW


def test_truncated_consistency_proof_does_not_pass_as_an_extension() -> None:
    leaves = _log(13)
    value = codec.decode(_message(leaves, 13, 7), peer_log.LIMITS)
    value["proof"] = value["proof"][:-1]
    msg = peer_log.decode(codec.encode(value))
    assert _reason(lambda: peer_log.judge(_kept(leaves, 7), msg)) == peer_log.SPLIT_VIEW


def test_proof_from_a_size_we_do_not_hold_is_unverifiable_not_taken() -> None:
    leaves = _log(13)
    msg = peer_log.decode(_message(leaves, 13, 9))
    assert _reason(lambda: peer_log.judge(_kept(leaves, 7), msg)) == peer_log.UNVERIFIABLE


# ------------------------------------------------------------ signatures and records


def test_checkpoint_of_another_origin_is_refused() -> None:
    leaves = _log(6)
    cp = checkpoint.Checkpoint(origin=checkpoint.party_origin("gamma", "ab" * 16), size=6,
                               root=_tree(leaves).root(6))
    note = checkpoint.signed_checkpoint(cp, public=ALPHA.public.note_key, sign=ALPHA.sign_note)
    assert _reason(lambda: _verified(_message(leaves, 6, 0, note=note))) == "wrong_origin"


def test_checkpoint_of_an_origin_with_terminal_controls_is_refused_with_it_escaped() -> None:
    """The alarm names the peer's origin: a right-to-left override in it would reorder the
    log line and the terminal that shows it."""
    leaves = _log(6)
    cp = checkpoint.Checkpoint(origin="bridge.example/\u202egamma\x7f", size=6,
                               root=_tree(leaves).root(6))
    note = checkpoint.signed_checkpoint(cp, public=ALPHA.public.note_key, sign=ALPHA.sign_note)
    with pytest.raises(PeerError) as err:
        _verified(_message(leaves, 6, 0, note=note))
    said = str(err.value)
    assert err.value.reason == "wrong_origin" and "\\u202egamma\\x7f" in said, said
    assert "\u202e" not in said and "\x7f" not in said, said


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    leaves = _log(6)
    cp = _kept(leaves, 6)  # alpha's origin, signed by a key that is not alpha's pinned one
    note = checkpoint.signed_checkpoint(cp, public=MALLORY.public.note_key,
                                        sign=MALLORY.sign_note)
    assert _reason(lambda: _verified(_message(leaves, 6, 0, note=note))) == "bad_checkpoint"


def test_forged_cosignature_of_a_pinned_witness_is_refused() -> None:
    leaves = _log(6)
    text, sigs = _note(6, _tree(leaves).root(6)).split(b"\n\n")
    party, mediator = sigs.splitlines()
    name, blob = mediator.rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1  # one bit of the mediator's signature
    forged = text + b"\n\n" + party + b"\n" + name + b" " + base64.b64encode(raw) + b"\n"
    assert _reason(lambda: _verified(_message(leaves, 6, 0, note=forged))) == \
        "bad_cosignature"


def test_record_about_another_party_is_refused() -> None:
    leaves = _log(6)
    assert _reason(lambda: _verified(_message(leaves, 6, 0), me="gamma")) == "wrong_record"


def test_record_whose_inclusion_proof_does_not_hold_is_refused() -> None:
    leaves = _log(6)
    value = codec.decode(_message(leaves, 6, 0), peer_log.LIMITS)
    value["records"][0]["proof"][0] = bytes(32)
    assert _reason(lambda: _verified(codec.encode(value))) == "bad_proof"


# ------------------------------------------------------------ shape and bounds


def _bad(value: dict[str, object]) -> str:
    with pytest.raises(DecodeError) as err:
        peer_log.decode(codec.encode(value))
    return err.value.reason


def _base() -> dict[str, object]:
    value = codec.decode(_message(_log(6), 6, 0), peer_log.LIMITS)
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(("attack", "change"), [
    ("extra_key", lambda v: v.update(extra=1)),
    ("old_is_a_boolean", lambda v: v.update(old=True)),
    ("old_above_the_size", lambda v: v.update(old=7)),
    ("proof_hash_truncated", lambda v: v.update(proof=[bytes(31)])),
    ("proof_over_63_hashes", lambda v: v.update(proof=[bytes(32)] * 64)),
    ("records_over_the_bound", lambda v: v.update(records=v["records"] * 65)),
    ("records_out_of_order", lambda v: v.update(records=v["records"][::-1])),
    ("record_outside_the_tree", lambda v: v["records"][0].update(index=6)),
    ("note_over_its_bound", lambda v: v.update(note=b"x" * (MAX_NOTE_BYTES + 1))),
    ("note_not_a_checkpoint", lambda v: v.update(note=b"hello\n\n\xe2\x80\x94 k AAAAAAA=\n")),
])
def test_malformed_payload_is_refused(attack: str, change: object) -> None:
    value = _base()
    change(value)  # type: ignore[operator]
    assert _bad(value) == peer_log.BAD, attack


def test_payload_over_its_byte_bound_is_refused_before_it_is_read() -> None:
    with pytest.raises(DecodeError):
        peer_log.decode(codec.encode({"pad": b"x" * (peer_log.LIMITS.max_bytes + 1)}))


# ------------------------------------------------------------ the published vectors (§9)

VECTORS = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
PEER_CASES = json.loads((VECTORS / "witness" / "peer-checkpoint.json").read_text())["cases"]


@pytest.mark.parametrize("case", PEER_CASES, ids=lambda c: c["file"])
def test_peer_checkpoint_vector_is_judged_as_published(case: dict[str, Any]) -> None:
    alpha = load_public(VECTORS / "keys" / "alpha-test.pub")
    mediator = load_public(VECTORS / "witness" / "mediator-test.pub")
    msg = peer_log.decode((VECTORS / "witness" / case["file"]).read_bytes())
    verified = peer_log.verify(msg, party=alpha, me="beta-test",
                               witnesses={"mediator-test": mediator})
    assert (msg.old, msg.checkpoint.size) == (case["old"], case["size"])
    assert [r.index for r in msg.records] == case["record_indexes"]
    assert dict(verified.witnessed) == case["witnessed"]
    kept = checkpoint.Checkpoint(origin=msg.checkpoint.origin, size=case["kept"]["size"],
                                 root=base64.b64decode(case["kept"]["root"]))
    if "reason" in case:
        assert _reason(lambda: peer_log.judge(kept, msg)) == case["reason"]
    else:
        assert peer_log.judge(kept, msg) == case["verdict"]

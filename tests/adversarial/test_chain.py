"""The link (PROTOCOL.md §8.2): replays, gaps, reordering and forks of alpha's chain."""

from __future__ import annotations

import hashlib

from bridge.core import codec

from .hostile import (
    ZERO,
    Check,
    World,
    header_bytes,
    hpke_seal,
    manifest,
    metric,
    one_chunk,
    sign_as_envelope,
    store_holds,
    unique,
    x25519_of,
)


def fresh(world: World, prefix: str = "M") -> bytes:
    return one_chunk(manifest(world.alpha_key, unique(prefix)))


def test_replay_of_a_byte_identical_envelope_gets_the_original_receipt(world: World) -> None:
    env, receipt = world.accept(fresh(world, "M-REPLAY"))
    with store_holds(world.beta, world.view):
        for _ in range(3):
            again = world.post(env.data)
            assert (again.status, again.body) == (200, receipt)


def test_replay_after_later_envelopes_gets_the_original_receipt(world: World) -> None:
    sent = [world.accept(fresh(world, "M-LATER")) for _ in range(3)]
    with store_holds(world.beta, world.view):
        for env, receipt in sent[:2]:
            again = world.post(env.data)
            assert (again.status, again.body) == (200, receipt)


def test_skipped_sequence_number_is_a_gap_naming_the_expected_one(world: World) -> None:
    env = world.forger.seal(fresh(world, "M-GAP"), seq=world.forger.seq + 3)
    with store_holds(world.beta, world.view):  # a gap is answered, not recorded
        got = world.expect(env.data, status=409, result="rejected", reason="gap")
    # Authenticated: the answer may name what alpha sent, and what beta expects.
    assert (got.sender, got.seq, got.expected_seq) == ("alpha", env.header.seq,
                                                       world.forger.seq + 1)


def test_reordered_envelopes_are_taken_only_in_order(world: World) -> None:
    first = world.forger.seal(fresh(world, "M-ORDER"))
    second = world.forger.seal(fresh(world, "M-ORDER"), seq=first.header.seq + 1,
                               prev=first.digest)
    with store_holds(world.beta, world.view):
        got = world.expect(second.data, status=409, result="rejected", reason="gap")
        assert got.expected_seq == first.header.seq
    for env in (first, second):
        reply = world.post(env.data)
        assert (reply.status, world.answer(reply).result) == (200, "accepted")
        world.forger.taken(env)


def test_forked_chain_same_sequence_number_other_content_is_equivocation(world: World) -> None:
    before_prev = world.forger.prev
    env, _ = world.accept(fresh(world, "M-FORK"))
    seq = env.header.seq
    other = world.forger.seal(fresh(world, "M-FORK-B"), seq=seq, prev=before_prev)
    alarms = metric(world.beta, "security_alarms")
    with store_holds(world.beta, world.view, Check(refusals=[("alpha", seq, "equivocation", 1)])):
        got = world.expect(other.data, status=409, result="rejected", reason="equivocation")
        assert (got.seq, got.expected_seq) == (seq, seq + 1)
    assert metric(world.beta, "security_alarms") == alarms + 1


def test_forked_chain_next_sequence_number_naming_another_previous_is_equivocation(
        world: World) -> None:
    fork = world.forger.seal(fresh(world, "M-FORK-C"),
                             prev=hashlib.sha256(b"another history").digest())
    seq = fork.header.seq
    with store_holds(world.beta, world.view, Check(refusals=[("alpha", seq, "equivocation", 1)])):
        world.expect(fork.data, status=409, result="rejected", reason="equivocation")
    world.accept(fresh(world, "M-AFTER-FORK"))  # the honest next envelope is still welcome


def test_sequence_number_zero_is_refused_as_a_bad_header(world: World) -> None:
    h = codec.encode(codec.decode(header_bytes(world.alpha_key, world.beta_pub, seq=1,
                                               prev=ZERO)) | {"seq": 0})
    data = sign_as_envelope(world.alpha_key, h, hpke_seal(b"\x80", x25519_of(world.beta_pub), h))
    with store_holds(world.beta, world.view, Check(refusals=[(None, None, "bad_header", 0)])):
        world.expect(data, status=400, result="rejected", reason="bad_header")

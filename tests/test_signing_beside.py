"""Signatures made beside the database thread (``bridge.core.beside``, the daemon's
``SigningPool``): what could go wrong when the ML-DSA half of a hybrid signature is made on
another thread while the step that needs it goes on. Two signatures at once by one key must
both be the hybrid one; work no pool thread took up in time must be done by the joiner, once;
a round trip between two real engines with real pools must store each
transport receipt with the envelope it answers, as the sender got it; a chunk whose receipt
was begun as "accepted" but whose content is then refused must be answered "refused"; and a
signature that fails beside must leave nothing half stored."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import CREATED, fixed_random
from harness import Harness, open_pair, person, wire

from bridge.core import answers, codec
from bridge.core.beside import Pending
from bridge.core.crypto import suites
from bridge.core.crypto.identity import TAG_DOCUMENT, PrivateIdentity
from bridge.core.documents import AckItem
from bridge.core.streaming import AckStream
from bridge.daemon.dbthread import SigningPool

T = TypeVar("T")


def hybrid(party: str) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=CREATED, random_bytes=fixed_random(party),
                                    suite=suites.SUITE_2)


class Recording:
    """A ``SigningPool`` that also counts what it was handed."""

    def __init__(self, pool: SigningPool) -> None:
        self.pool = pool
        self.started = 0

    def __call__(self, fn: Callable[[], T]) -> Pending[T]:
        self.started += 1
        return self.pool(fn)


@pytest.fixture
def pool() -> Iterator[SigningPool]:
    signing = SigningPool()
    yield signing
    signing.close()


@pytest.fixture
def h(tmp_path: Path, pool: SigningPool) -> Iterator[Harness]:
    with open_pair(tmp_path, hybrid("alpha"), hybrid("beta")) as harness:
        for party in (harness.alpha, harness.beta):
            party.engine.engine.beside = Recording(pool)
        yield harness


def test_two_signatures_at_once_by_one_key_are_each_the_hybrid_one(pool: SigningPool) -> None:
    me = hybrid("alpha")
    bodies = [f"body {n}".encode() for n in range(16)]
    started = [me.start_sign(TAG_DOCUMENT, body, pool) for body in bodies]
    for body, signing in zip(bodies, started, strict=True):
        signature = signing.result()
        assert len(signature) == suites.HYBRID_SIGNATURE_SIZE
        assert me.public.verify(TAG_DOCUMENT, body, signature)  # both halves, or False
    # Each signature stands for the message it was started with, not another one in flight;
    # nor does its ML-DSA half stand beside another message's Ed25519 half.
    first, second = started[0].result(), started[1].result()
    assert not me.public.verify(TAG_DOCUMENT, bodies[0], second)
    classic = suites.ED25519_SIGNATURE_SIZE
    assert not me.public.verify(TAG_DOCUMENT, bodies[0], first[:classic] + second[classic:])


def test_a_signature_no_pool_thread_took_up_is_made_by_the_joiner() -> None:
    # A busy machine that does not schedule the pool's threads in time: the joiner must not
    # wait for them, and the work must not be done twice.
    pool = SigningPool(threads=1)
    release = threading.Event()
    try:
        blocker = pool(release.wait)  # the pool's one thread, taken
        runs: list[int] = []

        def sign() -> bytes:
            runs.append(1)
            return b"made"

        assert pool(sign).result() == b"made"
        release.set()
        assert blocker.result() is True
    finally:
        release.set()
        pool.close()
    assert runs == [1]


def test_each_receipt_made_beside_is_stored_with_the_envelope_it_answers(h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(6)],
                doc_id="M-1")
    h.courier.settle()
    wire.acknowledge(h.beta.engine, "M-1", all="RECEIVED")
    h.courier.settle()
    assert wire.document(h.alpha.engine, "M-1")["state"] == "acknowledged"
    for sender, receiver in ((h.alpha, h.beta), (h.beta, h.alpha)):
        sent = wire.outbox(sender.engine, receiver.name)
        assert sent and all(e.state == "delivered" for e in sent)
        issued = [codec.decode(body)["receipt"] for (body,) in wire.sql(receiver.engine).execute(
            "SELECT body FROM audit WHERE kind='receipt_issued' AND peer=? ORDER BY seq",
            (sender.name,))]
        for n, entry in enumerate(sent):
            stored = wire.inbox_receipt(receiver.engine, sender.name, entry.seq)
            assert stored is not None and stored == issued[n]
            got = answers.parse_answer(stored, receiver.identity.public)
            assert (got.seq, got.result) == (entry.seq, "accepted")
            assert answers.parse_answer(entry.receipt or b"", receiver.identity.public) == got
    assert h.beta.engine.engine.beside.started >= 3


def test_content_refused_after_its_accepted_receipt_was_begun_is_answered_refused(
        h: Harness) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(n) for n in range(2)],
                doc_id="M-1")
    h.courier.settle()
    # Beta (a buggy or compromised peer) signs an acknowledgement naming an item twice: it
    # authenticates and is in sequence, so alpha begins an "accepted" receipt for it.
    signed, leaf_hashes = wire.received_document(h.beta.engine, "M-1")
    stream = AckStream(answers=signed, ack_id="ACK-FORGED", created=h.clock.advance(seconds=1),
                       count=2, salt_key=bytes(32), chunk=8)
    twice = AckItem(id="P-00001", status="RECEIVED")
    leaves = stream.add([(twice, leaf_hashes["P-00001"])] * 2)
    stream.finish(h.beta.identity)
    wire.enqueue_raw(h.beta.engine, "chunk", stream.chunk_payload(0, leaves))
    before = wire.item(h.alpha.engine, "M-1", "P-00001")
    begun = h.alpha.engine.engine.beside.started
    h.courier.settle()
    assert h.alpha.engine.engine.beside.started > begun
    seq = wire.outbox(h.beta.engine, "alpha")[-1].seq
    stored = wire.inbox_receipt(h.alpha.engine, "beta", seq)
    assert stored is not None
    answer = answers.parse_answer(stored, h.alpha.identity.public)
    assert (answer.result, answer.reason) == ("refused", "bad_ack")
    assert wire.item(h.alpha.engine, "M-1", "P-00001") == before  # nothing of it applied


def test_a_signature_that_fails_beside_stores_nothing(h: Harness) -> None:
    class Broken:
        def result(self) -> bytes:
            raise RuntimeError("the signing library failed")

    def failing(fn: Callable[[], T]) -> Pending[T]:
        return Broken()  # type: ignore[return-value]

    h.alpha.engine.engine.beside = failing
    with pytest.raises(RuntimeError, match="signing library"):
        wire.submit(h.alpha.engine, "manifest", "beta", [person(1)], doc_id="M-1")
    conn: sqlite3.Connection = wire.sql(h.alpha.engine)
    assert conn.execute("SELECT count(*) FROM documents").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    assert wire.outbox(h.alpha.engine, "beta") == []

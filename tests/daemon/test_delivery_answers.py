"""A real sender daemon against a hostile receiver (``receiver.py``) that answers its deliveries
with crafted answers signed by the peer's real key: gaps that ask for nothing earlier, an answer
captured for another envelope and replayed, answers whose fields have the wrong types. The
sender must back off on every answer that makes no progress, never act on an answer bound to
another envelope, and never stop delivering.

The POST counts are bounds the backoff guarantees with a wide margin (PROTOCOL §8.4: the
sender backs off after every attempt that makes no progress); before it, these peers got
20-odd POSTs a second, each with an fsync'd transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from bridge.daemon.pair import Node, set_peer_url
from bridge.home.config import Delivery

from .conftest import EventLog, metric, person, wait_for
from .receiver import HostileReceiver, Post, accept, captured, gap, signed, statement

# Backoff from 0.2 s doubling to 2 s: in WINDOW seconds that is about a dozen attempts.
SLOW = Delivery(initial_backoff=0.2, max_backoff=2.0, request_timeout=30.0, chunk_items=4)
WINDOW = 8.0
MAX_POSTS = 30


@pytest.fixture
def hostile(make_nodes: Callable[..., tuple[Node, Node]]
            ) -> Iterator[Callable[..., tuple[Node, HostileReceiver]]]:
    """``hostile(answerer_for_key)``: alpha's daemon, delivering to a hostile receiver on
    beta's address that signs with beta's key."""
    made: list[HostileReceiver] = []

    def make(answerer: Callable[..., Callable[[Post], tuple[int, bytes]]]
             ) -> tuple[Node, HostileReceiver]:
        alpha, beta = make_nodes(delivery=SLOW)
        receiver = HostileReceiver(0, answerer(beta.home.identity()))
        made.append(receiver)
        set_peer_url(alpha.home, "beta", receiver.url)  # beta's daemon never runs
        alpha.start()
        return alpha, receiver

    yield make
    for r in made:
        r.close()


def posts_in_window(alpha: Node, receiver: HostileReceiver, n_items: int = 2) -> int:
    """Submit a document, let the sender deliver for WINDOW seconds; POSTs in that time."""
    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(n_items)],
                                 id="M-HOSTILE-1")
    wait_for(lambda: receiver.count() >= 1, what="the first delivery")
    start = time.monotonic()
    time.sleep(WINDOW)
    return receiver.count(since=start)


def test_gap_naming_the_envelopes_own_seq_does_not_make_the_sender_spin(
        hostile: Callable[..., tuple[Node, HostileReceiver]]) -> None:
    alpha, receiver = hostile(lambda key: gap(key, lambda post: post.header.seq))
    n = posts_in_window(alpha, receiver)
    assert n <= MAX_POSTS, f"{n} POSTs in {WINDOW} s: the sender does not back off"
    # A gap that asks for this very envelope is no request to resend: a failed attempt.
    assert metric(alpha, "delivery_failed_total") >= 1
    assert metric(alpha, "delivery_rewound_total") == 0
    assert alpha.client.document("M-HOSTILE-1")["state"] != "delivered"
    assert alpha.client.health()["status"] == "ok"


def test_gap_answered_to_every_later_envelope_backs_off_although_the_earlier_one_is_accepted(
        hostile: Callable[..., tuple[Node, HostileReceiver]]) -> None:
    """Seq 1 is accepted, every later envelope answered with a gap expecting 1: each round
    re-delivers seq 1 (no new ground) and must not reset the backoff."""
    def answerer(key):  # type: ignore[no-untyped-def]
        honest, rewind = accept(key), gap(key, lambda post: 1)
        return lambda post: honest(post) if post.header.seq == 1 else rewind(post)

    alpha, receiver = hostile(answerer)
    n = posts_in_window(alpha, receiver, n_items=8)  # two envelopes of four entries
    assert n <= MAX_POSTS, f"{n} POSTs in {WINDOW} s: rewinds do not back off"
    assert metric(alpha, "delivery_rewound_total") >= 1


def test_answer_captured_for_another_envelope_is_not_acted_on(
        hostile: Callable[..., tuple[Node, HostileReceiver]]) -> None:
    """A genuine gap rejection the peer signed for another envelope, replayed to every
    delivery: bound to that envelope's hash, it is a mismatch here, not a rewind."""
    alpha, receiver = hostile(lambda key: lambda post: (409, signed(key, captured(key, post))))
    n = posts_in_window(alpha, receiver)
    assert n <= MAX_POSTS, f"{n} POSTs in {WINDOW} s"
    assert metric(alpha, "delivery_rewound_total") == 0
    assert metric(alpha, "delivery_failed_total") >= 1


@pytest.mark.parametrize("fields", [
    {"envelope": "not bytes"},
    {"type": "bridge.rejection", "result": "rejected", "reason": "gap", "expected_seq": "1"},
    {"seq": True},
    {"reason": ["gap"], "result": "rejected", "type": "bridge.rejection"},
    {"at": 2 ** 63},
], ids=["envelope-as-string", "expected-seq-as-string", "seq-as-bool", "reason-as-array",
        "at-past-63-bits"])
def test_malformed_signed_answer_does_not_kill_the_delivery_loop(
        hostile: Callable[..., tuple[Node, HostileReceiver]], events: Callable[[Node], EventLog],
        fields: dict[str, object]) -> None:
    """Before, a well-signed answer with a string where bytes or an integer belong raised a
    TypeError that killed the delivery task: nothing logged, health "ok", never sent again."""
    state = {"bad": 2}

    def answerer(key):  # type: ignore[no-untyped-def]
        honest = accept(key)

        def answer(post: Post) -> tuple[int, bytes]:
            if state["bad"] > 0:
                state["bad"] -= 1
                return 409, signed(key, statement(key, post, **fields))
            return honest(post)
        return answer

    alpha, receiver = hostile(answerer)
    alpha_events = events(alpha)
    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-HOSTILE-1")
    alpha_events.wait("document_delivered", id="M-HOSTILE-1")
    assert receiver.count() >= 3
    assert metric(alpha, "delivery_failed_total") >= 2
    assert metric(alpha, "task_restarts_total") == 0
    assert alpha.client.health()["status"] == "ok"


def test_answer_of_64_mib_is_never_read_into_the_senders_memory(
        hostile: Callable[..., tuple[Node, HostileReceiver]]) -> None:
    """A transport answer is a small signed statement; a peer (or whoever stands at its
    address) answering with 64 MiB costs the sender no more than a normal answer."""
    huge = b"\x00" * (64 * 1024 * 1024)
    alpha, receiver = hostile(lambda key: lambda post: (200, huge))
    before = alpha.peak_rss_mb
    assert before is not None
    posts_in_window(alpha, receiver)
    grown = (alpha.peak_rss_mb or 0.0) - before
    assert grown < 32, f"the sender's peak RSS grew by {grown:.0f} MiB"
    assert metric(alpha, "delivery_failed_total") >= 1
    assert alpha.client.document("M-HOSTILE-1")["state"] != "delivered"
    assert alpha.client.health()["status"] == "ok"

"""A daemon killed (SIGKILL) in the middle of a stream it is reading: the shared steps of the
tests that show a half-read stream leaves nothing behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from bridge.daemon.pair import Node
from bridge.engine.store_check import check_all
from bridge.store.sqlite.store import Store


def kill_mid_stream(node: Node, send: Callable[[Iterator[Any]], object],
                    values: Iterable[Any], stop_after: int, *,
                    while_stalled: Callable[[], None]) -> None:
    """``send`` the ``values`` from a thread, the stream stalling after ``stop_after`` of
    them; ``while_stalled`` looks at ``node`` then; then ``node`` is killed, and the send
    must have failed (a stream cut by the daemon's death is never answered as committed)."""
    reached, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def stalled() -> Iterator[Any]:
        for k, value in enumerate(values):
            if k == stop_after:
                reached.set()
                release.wait(60)
                return  # the daemon is dead by then: the request fails, nothing more is sent
            yield value

    def run() -> None:
        try:
            send(stalled())
        except BaseException as exc:  # what the killed daemon gave back
            failed.append(exc)

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    assert reached.wait(60), "the stream never reached the place where it stalls"
    # A moment for the daemon to read and stage what was sent (the caller's checks hold
    # whenever the kill lands; the moment only makes it land with batches staged).
    time.sleep(1.0)
    while_stalled()
    node.kill()
    release.set()
    sender.join(30)
    assert failed, "a stream cut by the daemon's death must not be answered as committed"


def stop_and_check_store(node: Node) -> None:
    """Stop ``node``; its store then holds every row as signed and nothing left over."""
    node.stop()
    store = Store(node.home.db_path)
    try:
        assert check_all(store.check_rows()) == []
    finally:
        store.close()

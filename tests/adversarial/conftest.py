"""The adversarial suite: a REAL daemon (a subprocess, set up by bridge/daemon/pair.py) on
127.0.0.1,
attacked by a hostile peer written in the tests (``hostile.py``). Each test is one attack, named
after it; each checks the refusal (HTTP status, and the signed reason code where there is
one), that the daemon still serves (peer /v1/health and the local socket's /v1/health), and
that its store is unchanged except for the record of the refusal.

Most cases share one daemon (``world``, for the whole package: it keeps the suite fast);
cases that crash into the limits on purpose get their own (test_floods.py). At the end of a
run the suite prints how many cases it tried and how many held.

Every load loop here is bounded in count and in time, and stops by itself; all traffic goes to
127.0.0.1.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.core.crypto import suites
from bridge.core.crypto.identity import PrivateIdentity
from bridge.daemon.pair import ANY_PORT, Node, make_pair
from bridge.home.config import Delivery, Limits
from bridge.home.folder import Home

from .hostile import Forger, StoreView, World, now_ms

# Retries to alpha (whose daemon never runs) stay slow and quiet.
QUIET = Delivery(initial_backoff=0.5, max_backoff=5.0, request_timeout=10.0)
MAX_BODY = 256 * 1024
# The shared daemon: short deadlines (so the slow-sender cases are quick), and rate and
# refusal-record limits high enough that the cases' own traffic never meets them (the flood
# cases, which do, have their own daemons).
SHARED_LIMITS = Limits(max_connections=64, requests_per_second=1000.0, burst=2000,
                       body_read_seconds=2.0, idle_seconds=3.0, max_header_bytes=4096,
                       max_headers=32, refusal_records_per_minute=1_000_000)


def build_world(root: Path, limits: Limits, *, max_body: int = MAX_BODY) -> World:
    """alpha and beta pinning each other, and gamma (a third party, never running) pinned by
    beta; beta's daemon started with ``limits``."""
    # Suite 1: the hostile peer (hostile.py) is an independent implementation of suite 1's
    # HPKE and signatures (PROTOCOL.md §3, §5); suite 2's forgeries are tested in
    # tests/test_suite2_objects.py and by the suite-2 vectors.
    alpha, beta = make_pair(root, delivery=QUIET, suites=(1, 1))
    gamma_home = Home(root / "gamma")
    gamma_home.init("gamma", listen=ANY_PORT, suite=suites.SUITE_1)
    # beta reaches gamma (never running) at its parking address: connections refused.
    beta.pin(Node(home=gamma_home, party="gamma", log_path=root / "gamma.log"))
    beta.home.write_config(dataclasses.replace(beta.home.config(), max_body_bytes=max_body,
                                               limits=limits))
    sock = str(beta.home.socket_path)
    assert len(sock.encode()) < 100, f"socket path too long for AF_UNIX: {sock}"
    beta.start()
    view = StoreView(beta)
    alpha_key = alpha.home.identity()
    gamma_key = gamma_home.identity()
    beta_pub = alpha.home.peer_identity("beta")
    world = World(beta=beta, alpha=alpha, gamma_home=gamma_home, view=view,
                  alpha_key=alpha_key, gamma_key=gamma_key,
                  mallory=PrivateIdentity.generate("mallory", created=now_ms()),
                  beta_pub=beta_pub, gamma_pub=gamma_key.public,
                  forger=Forger(alpha_key, beta_pub, view),
                  gforger=Forger(gamma_key, beta_pub, view))
    return world


def stop(node: Node) -> None:
    with contextlib.suppress(Exception):
        node.stop(timeout=10)
    with contextlib.suppress(Exception):
        node.kill()


def attach_log(request: pytest.FixtureRequest, node: Node) -> None:
    nodes = getattr(request.node, "bridge_nodes", [])
    nodes.append(node)
    request.node.bridge_nodes = nodes


@pytest.fixture(scope="package")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    world = build_world(tmp_path_factory.mktemp("adv"), SHARED_LIMITS)
    yield world
    stop(world.beta)


@pytest.fixture
def world(shared_world: World, request: pytest.FixtureRequest) -> World:
    """The shared daemon, its link state re-read from its store (a failed case may have left
    the forgers unsure of it)."""
    shared_world.forger.sync()
    shared_world.gforger.sync()
    attach_log(request, shared_world.beta)
    return shared_world


@pytest.fixture
def own_world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
              ) -> Iterator[Callable[[Limits], World]]:
    """``own_world(limits)``: a daemon for this case alone, stopped at its end."""
    made: list[World] = []

    def make(limits: Limits) -> World:
        w = build_world(tmp_path_factory.mktemp("own"), limits)
        made.append(w)
        attach_log(request, w.beta)
        return w

    yield make
    for w in made:
        stop(w.beta)


def _in_suite(nodeid: str) -> bool:
    return "adversarial/" in nodeid.replace("\\", "/")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    """``adversarial: N cases tried, M held``: a case is tried once it ran (or failed to set
    up); it held when it passed with no error before or after."""
    tried: set[str] = set()
    broken: set[str] = set()
    for kind, reports in terminalreporter.stats.items():
        for rep in reports:
            nodeid = getattr(rep, "nodeid", "")
            when = getattr(rep, "when", None)
            if not nodeid or not _in_suite(nodeid) or when is None:
                continue
            if kind == "skipped" and when == "setup":
                continue
            if when == "call" or kind in ("failed", "error"):
                tried.add(nodeid)
            if kind in ("failed", "error"):
                broken.add(nodeid)
    if tried:
        terminalreporter.write_line(
            f"adversarial: {len(tried)} cases tried, {len(tried - broken)} held")

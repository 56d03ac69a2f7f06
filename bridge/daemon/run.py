"""The daemon: wires the store, the exchange, the peer endpoint, the local API and the delivery
loops together; handles signals and shuts down cleanly.

Threads: the asyncio loop serves HTTP; one database thread runs every ``Exchange`` call, so
store transactions never interleave and the loop never blocks on SQLite or on sealing. The
calls waiting for it run as one group, one commit (``bridge/daemon/dbthread.py``). A small
pool beside it makes the ML-DSA halves of signatures (``SigningPool``, there too).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiohttp import web

from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import UsageError
from bridge.daemon.check_beside import check_beside
from bridge.daemon.checkers import Checkers
from bridge.daemon.dbthread import DatabaseThread, SigningPool, groupable, read_only
from bridge.daemon.hooks import DaemonHooks
from bridge.daemon.logs import setup_logging
from bridge.daemon.recent import RecentEvents
from bridge.daemon.supervise import report_failure, supervise
from bridge.engine.exchange import Exchange
from bridge.engine.metrics import Metrics
from bridge.engine.sender import DeliveryLoop
from bridge.engine.store_check import damage_refuses_start
from bridge.home.addresses import parse_listen
from bridge.home.config import VIA_CARRY, VIA_RELAY, PeerConfig
from bridge.home.files import write_file
from bridge.home.folder import Home
from bridge.home.keystore import KeyStore
from bridge.home.peers import pinned_identities
from bridge.home.restored import refuse_unconfirmed
from bridge.home.tls import TlsFiles, normalise_tls_fingerprint, server_context
from bridge.home.witnesses import pinned_witnesses
from bridge.local.access import allowed_uids, check_home, uid_middleware
from bridge.local.api import LocalApi
from bridge.store.sqlite.store import Store, Written
from bridge.transports.http.courier import HttpCourier
from bridge.transports.http.endpoint import peer_app
from bridge.transports.http.limits import ConnectionGuard, GuardedSite, server_options
from bridge.transports.relay.courier import RelayCourier
from bridge.transports.relay.link import RelayLink, link_of_home
from bridge.witness.submitter import witness_loops

log = logging.getLogger("bridge.daemon")


def _claim_socket(path: str) -> None:
    """Remove a stale socket; refuse if a daemon is answering on it."""
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise UsageError(f"a daemon is already serving {path}")


class Daemon:
    """The wiring of one daemon. ``run`` takes it through named steps: lock the home, open the
    store, build the exchange and the local API, bind the peer endpoint (and report the port
    it got), open the local socket, start the background tasks, wait for a signal, shut down."""

    def __init__(self, home: Home, *, passphrase: bytes | None = None,
                 hooks: DaemonHooks | None = None) -> None:
        self.home = home
        self.passphrase = passphrase
        self.hooks = hooks or DaemonHooks()
        check_home(home)  # before reading a key: refuse folders other users can reach
        refuse_unconfirmed(home)  # a restored store must not reuse sequence numbers
        self.keystore = KeyStore(home)
        self.config = home.config()
        self.identity = home.identity(passphrase)
        self.peers = self.load_peers()
        self.tls = server_context(TlsFiles.of(home.tls_dir)) if self.config.tls_enabled else None
        self.metrics = Metrics()
        self.loops: dict[str, DeliveryLoop] = {}
        self._lock_fd: int | None = None
        # The mediator's relay, when this home joined one: one connection for every peer.
        self.relay = link_of_home(home, self.config, self.metrics)
        self.relay_couriers: dict[str, RelayCourier] = {}

    def load_peers(self) -> dict[str, PublicIdentity]:
        """Pinned peers from the home, each checked against its pinned fingerprint. The config
        is taken only if every peer holds: a bad edit leaves the one in force as it was."""
        config = self.home.config()
        peers = pinned_identities(self.home, config)
        self.config = config
        return peers

    def _finish_key_change(self, store: Store) -> None:
        """A key change staged but not installed when the daemon stopped: install it if its
        statement was committed for sending, else forget it (it never happened)."""
        staged = self.keystore.staged_own(self.identity.party, self.passphrase)
        if staged is None:
            return
        if store.key_change_committed(staged.key_id.hex()):
            self.keystore.install_own(self.identity, staged, self.passphrase)
            log.info("finished the key change to %s", staged.public.fingerprint)
            self.identity = staged
        else:
            self.keystore.discard_staged(self.identity.party)
            log.info("discarded a key change that was never committed")

    def _lock_home(self) -> None:
        path = self.home.db_path.parent / "daemon.lock"
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise UsageError(f"another daemon is running on {self.home.path}") from exc
        self._lock_fd = fd

    async def run(self) -> None:
        self._lock_home()
        self._loop = asyncio.get_running_loop()
        self._store = self._open_store()
        self._changed = asyncio.Condition()
        self._event_writes = 0  # changes that wrote events (or may have): the streams' mark
        self._recent = RecentEvents()  # what the streams write without reading the store
        self._wakes = {name: asyncio.Event() for name in self.peers}  # delivery loops
        self._witness_wakes: list[asyncio.Event] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._reloading = asyncio.Lock()  # one reload at a time (SIGHUP and the API may race)
        self.exchange = self._open_exchange()
        self.db = DatabaseThread(self._store, self._loop,
                                 grouped=groupable(self.exchange, self._store),
                                 reads=read_only(self.exchange, self._store),
                                 changed=self._changed_now, rolled_back=self.exchange.rolled_back,
                                 metrics=self.metrics)
        self.api = self._local_api()
        peer_runner, api_runner = await self._runners()
        self.port = await self._bind_peer_endpoint(peer_runner, api_runner)
        self.api.relay_status = self.relay.status if self.relay is not None else None
        # Signals before the socket: whoever can reach the daemon may SIGHUP it at once.
        stop = self._handle_signals()
        await self._open_local_socket(api_runner)
        self._start_background_tasks()
        self._announce()
        try:
            await stop.wait()
        finally:
            await self._shut_down(peer_runner, api_runner)

    # ------------------------------------------------------------------ the store and the engine

    def _open_store(self) -> Store:
        store = Store(self.home.db_path)
        if self.hooks.max_pages is not None:
            store.cap_pages(self.hooks.max_pages)
        with damage_refuses_start(self.home.db_path):
            self._finish_key_change(store)
        return store

    def _open_exchange(self) -> Exchange:
        retired = self.keystore.own_identities(self.passphrase)[1:]
        self._signing, self._checkers = SigningPool(), Checkers.of(self.config, self.metrics)
        with damage_refuses_start(self.home.db_path):
            exchange = Exchange(store=self._store, identity=self.identity, peers=self.peers,
                                config=self.config, notify=self._notify, clock=self.hooks.clock,
                                metrics=self.metrics, keystore=self.keystore,
                                passphrase=self.passphrase, retired=retired,
                                witnesses=pinned_witnesses(self.home), beside=self._signing)
        self.hooks.hold(exchange)
        # Before serving: a damaged store starts read-only with the alarm raised, never as sound.
        exchange.check_store()
        return exchange

    def run_in_db(self, fn: Any, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Every ``Exchange`` call, on the one database thread, answered after its commit.
        Queued when called, not when first awaited: callers' order is the order it runs in."""
        return self.db.run(fn, *args, **kwargs)

    def _notify(self) -> None:  # database thread: something changed
        if hasattr(self, "db"):
            self.db.notify()
        else:  # the exchange's checks at start, before the thread serves: whom, unknown
            self._changed_now(None)

    def _changed_now(self, written: Written | None) -> None:  # any thread: on disk
        if asyncio._get_running_loop() is self._loop:  # None off the loop's thread
            # Already on the loop (the database thread's answers are settled there): at once,
            # not through the loop's wake-up pipe and one more turn of the loop.
            self._on_change(written)
        else:
            self._loop.call_soon_threadsafe(self._on_change, written)

    def _on_change(self, written: Written | None) -> None:  # loop thread
        """Wake whom the change concerns: the delivery loops of the outboxes it wrote, the
        event streams if it wrote an event; all of them when that is not known (None).
        Witnessing is woken by every change (it follows the audit log)."""
        for loop in self.loops.values():
            loop.offer(written)  # what was queued, so that it need not be read back
        for name, event in self._wakes.items():
            if written is None or name in written.outboxes:
                event.set()
        for event in self._witness_wakes:
            event.set()
        self._recent.told(written)  # before a stream is woken for it
        if written is None or written.events:
            self._event_writes += 1
            self._one_shot(self._broadcast(), "broadcast")

    async def _broadcast(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _one_shot(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """A short task (a broadcast, a reload): kept until done, and its failure, if any,
        logged and counted the moment it happens, not when it is collected."""
        task = self._loop.create_task(work, name=name)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        task.add_done_callback(functools.partial(report_failure, metrics=self.metrics))

    # ------------------------------------------------------------------ the two doors

    def _local_api(self) -> LocalApi:
        api = LocalApi(exchange=self.exchange, run=self.run_in_db, metrics=self.metrics,
                       events_changed=self._changed, peer_status=self.peer_status,
                       max_body=self.config.max_body_bytes, check_beside=self._checkers.beside(),
                       event_writes=lambda: self._event_writes, held_events=self._recent.after)
        api.reload_peers = self.reload_peers
        return api

    async def _runners(self) -> tuple[web.AppRunner | None, web.AppRunner]:
        """The local API's runner, and the peer endpoint's when bridge.toml has a listen."""
        limits = self.config.limits
        self._guard = ConnectionGuard(limits.max_connections, self.metrics)
        peer_runner = None
        if self.config.listen is not None:
            peer_runner = web.AppRunner(
                peer_app(self.exchange, self.run_in_db, self.metrics, self.config.max_body_bytes,
                         limits, self._guard, beside=self._checkers.beside()),
                access_log=None, **server_options(limits, self.metrics))
            await peer_runner.setup()
        api_app = self.api.app()
        uids = allowed_uids(self.config.allowed_uids)
        api_app.middlewares.insert(0, uid_middleware(uids))  # outermost: before anything else
        api_runner = web.AppRunner(api_app, access_log=None)
        await api_runner.setup()
        return peer_runner, api_runner

    async def _bind_peer_endpoint(self, peer_runner: web.AppRunner | None,
                                  api_runner: web.AppRunner) -> int | None:
        """Bind the peer endpoint; the port it got (the configured one, or the kernel's
        choice for port 0) goes to HOME/peer.port and the local health answer. With no
        listen in bridge.toml there is none: no TCP socket is opened at all."""
        _claim_socket(str(self.home.socket_path))
        if peer_runner is None or self.config.listen is None:
            self.api.listening = False
            return None
        host, port = parse_listen(self.config.listen)
        # The peer endpoint first: a port that is taken stops the start before the local
        # socket exists, so nothing stale is left behind.
        try:
            await GuardedSite(peer_runner, host, port, guard=self._guard,
                              ssl_context=self.tls).start()
        except OSError as exc:
            await peer_runner.cleanup()
            await api_runner.cleanup()
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program "
                f"holds that port, or the address is not this machine's. Change listen in [bridge] "
                f"in {self.home.config_path}") from exc
        bound = int(peer_runner.addresses[0][1])
        # Written after the bind, atomically (a reader sees no port or the whole one), 0600.
        write_file(self.home.port_path, f"{bound}\n", replace=True)
        self.api.listen = {"host": host, "port": bound,
                           "scheme": "https" if self.tls else "http"}
        return bound

    async def _open_local_socket(self, api_runner: web.AppRunner) -> None:
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            await web.UnixSite(api_runner, str(self.home.socket_path)).start()
        finally:
            os.umask(old_umask)

    # ------------------------------------------------------------------ background work

    def _delivery_loop(self, name: str) -> DeliveryLoop:
        """The loop that delivers to ``name``, with the courier its ``via`` names."""
        peer = self.config.peers[name]
        courier: HttpCourier | RelayCourier
        answer_wait = None
        # Several in flight, over HTTP and through the relay alike (PROTOCOL.md §8.7).
        if peer.via == VIA_RELAY:
            assert self.relay is not None and self.config.relay is not None  # Config checks it
            courier = RelayCourier(link=self.relay, me=self.config.party, peer=name)
            self.relay_couriers[name] = courier  # where the consumer hands its answers
            answer_wait = self.config.relay.answer_wait
        else:
            assert peer.url is not None  # Config checks it: http needs a URL
            pin = peer.tls_fingerprint
            courier = HttpCourier(
                url=peer.url, request_timeout=self.config.delivery.request_timeout,
                tls_fingerprint=normalise_tls_fingerprint(pin) if pin else None,
                metrics=self.metrics)
        return DeliveryLoop(
            peer=name, courier=courier, exchange=self.exchange, run=self.run_in_db,
            policy=self.config.delivery, metrics=self.metrics, wake=self._wakes[name],
            answer_wait=answer_wait, window=self.config.delivery.in_flight)

    def _supervised(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        self._tasks[name] = asyncio.create_task(supervise(name, work, self.metrics), name=name)

    def _start_background_tasks(self) -> None:
        for name in self.peers:
            if self.config.peers[name].via != VIA_CARRY:  # carried by hand: no loop
                self._start_delivery(name)
        self._supervised("deadlines", self._watch_deadlines)
        self._supervised("store-check", self._check_beside)
        if self.relay is not None:
            self._start_relay(self.relay)
        # Witnessing (PROTOCOL.md §13.4): its own tasks, woken by every change, never awaited
        # by the exchange.
        for wloop in witness_loops(self.exchange, self.run_in_db, self.config.witnesses,
                                   pinned_witnesses(self.home), self.relay):
            self._witness_wakes.append(wloop.wake)
            self._supervised(f"witness-{wloop.name}", wloop.run_forever)

    def _start_relay(self, link: RelayLink) -> None:
        """The connection out to the mediator's broker and the consumer of what it holds for
        us (bridge/transports/relay). Imported here: only a home that joined a relay pays."""
        from bridge.transports.relay.consumer import RelayConsumer

        assert self.config.relay is not None
        consumer = RelayConsumer(
            link=link, exchange=self.exchange, run=self.run_in_db, metrics=self.metrics,
            couriers=self.relay_couriers, limits=self.config.limits,
            max_body=self.config.max_body_bytes, batch=self.config.relay.fetch_batch,
            skip_acks=self.hooks.relay_skip_acks, beside=self._checkers.beside())
        self._supervised("relay-link", link.run)
        self._supervised("relay-consume", consumer.run_forever)

    def _start_delivery(self, name: str) -> None:
        self._wakes.setdefault(name, asyncio.Event())
        self.loops[name] = loop = self._delivery_loop(name)
        self._supervised(f"deliver-{name}", loop.run_forever)

    async def _stop_delivery(self, name: str) -> DeliveryLoop:
        task = self._tasks.pop(f"deliver-{name}")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._wakes.pop(name, None)
        self.relay_couriers.pop(name, None)
        self.metrics.forget_peer(name)
        return self.loops.pop(name)

    async def _check_beside(self) -> None:
        """The whole store check, beside the work, once after a start that read only what
        changed since the last complete one (bridge/daemon/check_beside.py)."""
        await check_beside(self.exchange, self.run_in_db, self.home.db_path)
        await asyncio.Event().wait()  # a supervised task runs until the daemon stops

    async def _watch_deadlines(self) -> None:
        while True:
            try:
                await self.run_in_db(self.exchange.check_deadlines)
            except Exception:  # a bad row must not stop the watch; it is logged
                log.exception("deadline check failed")
            await asyncio.sleep(self.config.deadline_check_seconds)

    async def reload_peers(self) -> None:
        """SIGHUP, or ``POST /v1/peers/reload``: the pinned peers again, every change applied
        without a restart. A peer pinned since is delivered to from now on; a peer whose
        address or TLS pin changed is delivered to there; a peer removed is no longer (what
        is queued for it stays in the store, and goes out if it is pinned again)."""
        async with self._reloading:
            old = self.config.peers
            try:
                peers = self.load_peers()
            except Exception as exc:  # a bad edit must not take the daemon down
                log.error("peer reload failed, keeping the pinned keys in force: %s", exc)
                return
            await self.run_in_db(self.exchange.reload_peers, peers, self.config)
            await self._follow(old, self.config.peers)
            log.info("reloaded pinned peers: %s", ", ".join(sorted(peers)) or "none")

    async def _follow(self, old: Mapping[str, PeerConfig], new: Mapping[str, PeerConfig]
                      ) -> None:
        """The delivery loops made to match the pinned peers ``new`` (were ``old``): one for
        each, but for a peer carried by hand (bridge carry)."""
        delivered = {name for name, peer in new.items() if peer.via != VIA_CARRY}
        for name in sorted(self.loops.keys() - delivered):
            await self._stop_delivery(name)
            log.info("stopped delivering to %s: %s", name, "carried by hand (bridge carry)"
                     if name in new else "no longer pinned")
        for name in sorted(delivered):
            if name not in self.loops:
                self._start_delivery(name)
                log.info("delivering to %s %s", name, self._route(name))
            elif old.get(name) != new[name]:
                await self._redirect(name)

    def _route(self, name: str) -> str:
        peer = self.config.peers[name]
        return f"at {peer.url}" if peer.url else f"via the {peer.via}"

    async def _redirect(self, name: str) -> None:
        """A new delivery loop for ``name`` at its new address; what the old one knew of the
        peer's reachability is kept (so its coming back is still told). Whatever the old one
        had in flight is sent again: the peer answers a duplicate with its receipt."""
        old = await self._stop_delivery(name)
        self._start_delivery(name)
        self.loops[name].reachable = old.reachable
        self.loops[name].status = old.status
        log.info("delivering to %s %s", name, self._route(name))

    # ------------------------------------------------------------------ signals, start, stop

    def _handle_signals(self) -> asyncio.Event:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, stop.set)
        self._loop.add_signal_handler(
            signal.SIGHUP, lambda: self._one_shot(self.reload_peers(), "reload-peers"))
        return stop

    def _announce(self) -> None:
        sock_path = self.home.socket_path
        uids = allowed_uids(self.config.allowed_uids)
        if self.config.listen is not None and self.port is not None:
            host, _ = parse_listen(self.config.listen)
            where = f"{host}:{self.port}"
            endpoint = f"{'https' if self.tls else 'http'}://{where}"
        else:
            where = endpoint = "no TCP port"
        relay = f", relay {self.relay.settings.url}" if self.relay is not None else ""
        log.info("ready: party=%s peer endpoint %s%s socket=%s local uids=%s",
                 self.identity.party, endpoint, relay, sock_path,
                 ",".join(map(str, sorted(uids))))
        print(f"bridge daemon ready: {self.identity.party} on {where}{relay}, "
              f"socket {sock_path}", file=sys.stderr, flush=True)

    async def _shut_down(self, peer_runner: web.AppRunner | None,
                         api_runner: web.AppRunner) -> None:
        log.info("stopping: no new requests; finishing work in progress")
        self.api.stopping.set()
        await self._broadcast()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Stop accepting, let in-flight requests finish (their transactions commit or roll
        # back whole), then close the store from its own thread.
        await api_runner.cleanup()
        if peer_runner is not None:
            await peer_runner.cleanup()
        if self.relay is not None:
            await self.relay.close()
        await self.run_in_db(self._store.close)
        self.db.stop()
        self._signing.close()
        self._checkers.close()
        for path in (self.home.socket_path, self.home.port_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        log.info("stopped")

    def peer_status(self) -> dict[str, Any]:
        """Each peer's link as its delivery loop saw it (bridge/engine/link_status.py)."""
        return {name: dl.status.view() for name, dl in self.loops.items()}


def run_daemon(home: Home, *, passphrase: bytes | None = None, log_level: str = "info",
               log_format: str = "logfmt", hooks: DaemonHooks | None = None) -> None:
    """``hooks``: the tests' (``DaemonHooks``), each said loudly."""
    setup_logging(log_level, fmt=log_format)
    os.umask(0o077)  # anything created without bridge.home.files (SQLite's own files) is 0600 too
    for text in hooks.said() if hooks else []:
        log.warning("test hook: %s", text)
    daemon = Daemon(home, passphrase=passphrase, hooks=hooks)
    asyncio.run(daemon.run())

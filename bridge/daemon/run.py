"""The daemon: wires the store, the exchange, the peer endpoint, the local API and the delivery
loops together; handles signals and shuts down cleanly.

Threads: the asyncio loop serves HTTP; one database thread runs every ``Exchange`` call, so
store transactions never interleave and the loop never blocks on SQLite or on sealing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

from aiohttp import web

from bridge.core import times
from bridge.core.crypto.identity import PublicIdentity
from bridge.core.errors import UsageError
from bridge.engine.exchange import Exchange
from bridge.engine.metrics import Metrics
from bridge.engine.store_check import damage_refuses_start
from bridge.home.config import parse_listen
from bridge.home.folder import Home
from bridge.home.keystore import KeyStore
from bridge.home.peers import pinned_identities
from bridge.home.tls import TlsFiles, normalise_tls_fingerprint, server_context
from bridge.local.access import allowed_uids, check_home, uid_middleware
from bridge.local.api import LocalApi
from bridge.store.sqlite.store import Store
from bridge.transports.http.endpoint import DeliveryLoop, peer_app
from bridge.transports.http.limits import ConnectionGuard, GuardedSite, server_options

log = logging.getLogger("bridge.daemon")


class LogfmtFormatter(logging.Formatter):
    """One line per record, key=value, for people and for log shippers alike."""

    def format(self, record: logging.LogRecord) -> str:
        ts = times.format_ms(int(record.created * 1000))  # the one time formatter
        msg = record.getMessage()
        line = (f"ts={ts} level={record.levelname.lower()} "
                f"logger={record.name} msg={json.dumps(msg)}")
        if record.exc_info:
            line += f" exc={json.dumps(self.formatException(record.exc_info))}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for a journal or a log shipper that wants fields)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = times.format_ms(int(record.created * 1000))
        out = {"ts": ts, "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


LOG_FORMATS: dict[str, type[logging.Formatter]] = {"logfmt": LogfmtFormatter,
                                                   "json": JsonFormatter}


def setup_logging(level: str = "info", stream: IO[str] | None = None,
                  fmt: str = "logfmt") -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LOG_FORMATS[fmt]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


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


# A test hook: cap the store at this many pages (SQLite's max_page_count), so that a test can
# make a real daemon meet a real SQLITE_FULL without filling a disk.
MAX_PAGES_ENV = "BRIDGE_TEST_STORE_MAX_PAGES"


def _cap_store(store: Store) -> None:
    pages = os.environ.get(MAX_PAGES_ENV)
    if pages:
        store.db.execute(f"PRAGMA max_page_count = {int(pages)}")
        log.warning("store capped at %d pages (%s)", int(pages), MAX_PAGES_ENV)


class Daemon:
    def __init__(self, home: Home, *, passphrase: bytes | None = None) -> None:
        self.home = home
        self.passphrase = passphrase
        check_home(home)  # before reading a key: refuse folders other users can reach
        self.keystore = KeyStore(home)
        self.config = home.config()
        self.identity = home.identity(passphrase)
        self.peers = self.load_peers()
        self.tls = (server_context(TlsFiles.of(home.tls_dir)) if self.config.tls_enabled
                    else None)
        self.metrics = Metrics()
        self.loops: dict[str, DeliveryLoop] = {}
        self._lock_fd: int | None = None

    def load_peers(self) -> dict[str, PublicIdentity]:
        """Pinned peers from the home, each checked against its pinned fingerprint."""
        self.config = self.home.config()
        return pinned_identities(self.home, self.config)

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
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bridge-db")
        store = Store(self.home.db_path)
        _cap_store(store)
        with damage_refuses_start(self.home.db_path):
            self._finish_key_change(store)
        retired = self.keystore.own_identities(self.passphrase)[1:]
        changed = asyncio.Condition()
        wakes = {name: asyncio.Event() for name in self.peers}

        async def broadcast() -> None:
            async with changed:
                changed.notify_all()

        pending: set[asyncio.Task[None]] = set()

        def one_shot(work: Coroutine[Any, Any, None], name: str) -> None:
            """A short task (a broadcast, a reload): kept until done, and its failure, if
            any, logged and counted the moment it happens, not when it is collected."""
            task = loop.create_task(work, name=name)
            pending.add(task)
            task.add_done_callback(pending.discard)
            task.add_done_callback(functools.partial(_report_failure, metrics=self.metrics))

        def on_change() -> None:  # loop thread
            for event in wakes.values():
                event.set()
            one_shot(broadcast(), "broadcast")

        def notify() -> None:  # database thread
            loop.call_soon_threadsafe(on_change)

        async def run_in_db(fn: Any, *args: Any, **kwargs: Any) -> Any:
            return await loop.run_in_executor(executor, functools.partial(fn, *args, **kwargs))

        with damage_refuses_start(self.home.db_path):
            exchange = Exchange(store=store, identity=self.identity, peers=self.peers,
                                config=self.config, notify=notify, metrics=self.metrics,
                                keystore=self.keystore, passphrase=self.passphrase,
                                retired=retired)
        # Before serving: a damaged store starts read-only with the alarm raised, never as sound.
        exchange.check_store()
        api = LocalApi(exchange=exchange, run=run_in_db, metrics=self.metrics,
                       events_changed=changed, peer_status=self.peer_status,
                       max_body=self.config.max_body_bytes)
        host, port = parse_listen(self.config.listen)
        tls = self.tls
        uids = allowed_uids(self.config.allowed_uids)
        limits = self.config.limits
        guard = ConnectionGuard(limits.max_connections, self.metrics)
        peer_runner = web.AppRunner(
            peer_app(exchange, run_in_db, self.metrics, self.config.max_body_bytes, limits,
                     guard), access_log=None, **server_options(limits, self.metrics))
        api_app = api.app()
        api_app.middlewares.insert(0, uid_middleware(uids))  # outermost: before anything else
        api_runner = web.AppRunner(api_app, access_log=None)
        await peer_runner.setup()
        await api_runner.setup()
        sock_path = str(self.home.socket_path)
        _claim_socket(sock_path)
        # The peer endpoint first: a port that is taken stops the start before the local
        # socket exists, so nothing stale is left behind.
        try:
            await GuardedSite(peer_runner, host, port, guard=guard, ssl_context=tls).start()
        except OSError as exc:
            await peer_runner.cleanup()
            await api_runner.cleanup()
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}): another program "
                f"holds that port, or the address is not this machine's. Change listen in [bridge] "
                f"in {self.home.config_path}") from exc
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            await web.UnixSite(api_runner, sock_path).start()
        finally:
            os.umask(old_umask)

        for name in self.peers:
            pin = self.config.peers[name].tls_fingerprint
            self.loops[name] = DeliveryLoop(
                peer=name, url=self.config.peers[name].url, exchange=exchange, run=run_in_db,
                policy=self.config.delivery, metrics=self.metrics, wake=wakes[name],
                tls_fingerprint=normalise_tls_fingerprint(pin) if pin else None)

        async def watch_deadlines() -> None:
            while True:
                try:
                    await run_in_db(exchange.check_deadlines)
                except Exception:  # a bad row must not stop the watch; it is logged
                    log.exception("deadline check failed")
                await asyncio.sleep(self.config.deadline_check_seconds)

        work: dict[str, Callable[[], Awaitable[None]]] = {
            f"deliver-{n}": dl.run_forever for n, dl in self.loops.items()}
        work["deadlines"] = watch_deadlines
        tasks = [asyncio.create_task(supervise(name, fn, self.metrics), name=name)
                 for name, fn in work.items()]

        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def reload_peers() -> None:
            try:
                peers = self.load_peers()
            except Exception as exc:  # a bad edit must not take the daemon down
                log.error("peer reload failed, keeping the pinned keys in force: %s", exc)
                return
            await run_in_db(exchange.reload_peers, peers)
            log.info("reloaded pinned peers: %s", ", ".join(sorted(peers)))

        def on_hup() -> None:
            one_shot(reload_peers(), "reload-peers")

        loop.add_signal_handler(signal.SIGHUP, on_hup)
        api.reload_peers = reload_peers
        scheme = "https" if tls else "http"
        log.info("ready: party=%s peer endpoint %s://%s:%d socket=%s local uids=%s",
                 self.identity.party, scheme, host, port, sock_path,
                 ",".join(map(str, sorted(uids))))
        print(f"bridge daemon ready: {self.identity.party} on {host}:{port}, "
              f"socket {sock_path}", file=sys.stderr, flush=True)
        try:
            await stop.wait()
        finally:
            log.info("stopping: no new requests; finishing work in progress")
            api.stopping.set()
            await broadcast()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Stop accepting, let in-flight requests finish (their transactions commit or roll
            # back whole), then close the store from its own thread.
            await api_runner.cleanup()
            await peer_runner.cleanup()
            await loop.run_in_executor(executor, store.close)
            executor.shutdown(wait=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(sock_path)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            log.info("stopped")

    def peer_status(self) -> dict[str, Any]:
        return {name: {"reachable": dl.reachable} for name, dl in self.loops.items()}


# A restarted task that then runs this long is well again: its fault is cleared and its
# backoff starts over.
STABLE_SECONDS = 30.0


async def supervise(name: str, work: Callable[[], Awaitable[None]], metrics: Metrics, *,
                    initial: float = 0.5, cap: float = 60.0,
                    stable: float = STABLE_SECONDS) -> None:
    """Run ``work`` (meant to run until cancelled) for as long as the daemon runs. If it dies
    it is never silent: the exception is logged with its traceback, counted in /metrics
    (``task_restarts``), named in health (fault ``task_<name>``, "degraded") and the task is
    restarted after a backoff (exponential, capped). The fault clears once the restarted task
    has run for ``stable`` seconds."""
    fault = f"task_{name}"
    failures = 0
    while True:
        task = asyncio.ensure_future(work())
        try:
            done, _ = await asyncio.wait({task}, timeout=stable)
            if not done and metrics.clear_fault(fault):
                failures = 0
                log.info("background task %s is running again", name)
            await task
            detail = "returned, though it should run until stopped"
            log.error("background task %s %s; restarting it", name, detail)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"
            log.exception("background task %s died; restarting it", name)
        failures += 1
        metrics.inc("task_restarts", task=name)
        metrics.set_fault(fault, f"died {failures} time(s) in a row; last: {detail}")
        await asyncio.sleep(min(cap, initial * 2 ** min(failures - 1, 16)))


def _report_failure(task: asyncio.Task[None], *, metrics: Metrics) -> None:
    if task.cancelled() or task.exception() is None:
        return
    metrics.inc("task_failures", task=task.get_name())
    log.error("task %s failed", task.get_name(), exc_info=task.exception())


def run_daemon(home: Home, *, passphrase: bytes | None = None, log_level: str = "info",
               log_format: str = "logfmt") -> None:
    setup_logging(log_level, fmt=log_format)
    os.umask(0o077)  # anything created without bridge.home.files (SQLite's own files) is 0600 too
    daemon = Daemon(home, passphrase=passphrase)
    asyncio.run(daemon.run())

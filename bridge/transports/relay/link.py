"""The party's one connection to the mediator's broker (PROTOCOL.md, "Relay binding").

One NATS connection per daemon, made out to the broker (a party opens no port): authenticated
with the user nkey of the credential file the mediator handed out, its inbox under the party's
own prefix (``_INBOX_R``: the only subjects its credentials may subscribe to), over TLS checked
against a pinned CA for a ``tls://`` URL, and reconnecting for as long as the daemon runs. Its
state (connecting, connected, reconnecting, and the last error) is what health shows.

The broker is trusted for nothing but moving bytes: whatever this connection brings is judged by
the engine (``bridge.transports.relay.consumer``), and a broker's PubAck only says it holds a
message, never that the peer has it (``bridge.transports.relay.courier``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from bridge.core.printable import said
from bridge.engine.metrics import Metrics
from bridge.home.config import Config
from bridge.home.folder import Home
from bridge.transports.relay import binding
from bridge.transports.relay.nkeys import read_seed

log = logging.getLogger("bridge.relay")

# A fault named in health while the broker cannot be reached ("degraded"): envelopes wait in
# the outbox meanwhile, and nothing is lost.
FAULT = "relay_disconnected"
# Seconds between two tries at reaching the broker (nats-py's own reconnect loop, forever).
RECONNECT_WAIT = 1
CONNECT_TIMEOUT = 5
# How long a publish may wait for the broker's PubAck before it counts as not delivered.
PUBLISH_TIMEOUT = 10.0


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"  # never connected yet in this run
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"  # connected before; trying again
    CLOSED = "closed"  # the daemon is stopping


class RelayUnavailable(Exception):
    """The broker did not take a message: not connected, no PubAck in time, or refused."""


@dataclass(frozen=True, kw_only=True)
class LinkSettings:
    url: str
    seed: str  # the user nkey seed (a secret: never logged, never shown)
    party: str
    tls_ca: Path | None = None


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """TLS to the broker, trusting only the pinned CA (not the system's), host name checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class RelayLink:
    """The connection, its state, and publishing with a PubAck."""

    def __init__(self, settings: LinkSettings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.state = LinkState.CONNECTING
        self.last_error: str | None = None
        self.since = time.time()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._up = asyncio.Event()
        self.metrics.set_fault(FAULT, f"connecting to the relay at {settings.url}")

    # ------------------------------------------------------------ state

    def status(self) -> dict[str, Any]:
        """For health: where, in what state since when, and the last error (no secrets)."""
        return {"url": self.settings.url, "state": self.state.value,
                "since": int(self.since * 1000), "last_error": self.last_error}

    def _set(self, state: LinkState) -> None:
        if state is self.state:
            return
        self.state, self.since = state, time.time()
        if state is LinkState.CONNECTED:
            self._up.set()
            if self.metrics.clear_fault(FAULT):
                log.info("relay %s connected", self.settings.url)
        else:
            self._up.clear()
            if state is not LinkState.CLOSED:
                self.metrics.set_fault(FAULT, f"{state.value}: {self.last_error or 'no answer'}")
                log.warning("relay %s %s: %s", self.settings.url, state.value, self.last_error)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def wait_connected(self) -> JetStreamContext:
        await self._up.wait()
        assert self._js is not None
        return self._js

    # ------------------------------------------------------------ the connection

    async def run(self) -> None:
        """Connect, then keep the connection (nats-py reconnects forever); returns only when
        the connection is closed. Meant to run as a supervised task."""
        nc = Client()
        self._nc = nc
        tls = tls_context(self.settings.tls_ca) if self.settings.tls_ca else None
        closed = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            self.last_error = f"{type(exc).__name__}: {said(exc, 300)}"
            if self.state is LinkState.CONNECTED and not nc.is_connected:
                self._set(LinkState.RECONNECTING)
            elif self.state is not LinkState.CONNECTED:
                self.metrics.set_fault(FAULT, f"{self.state.value}: {self.last_error}")

        async def on_disconnected() -> None:
            if self.state is LinkState.CONNECTED:
                self._set(LinkState.RECONNECTING)

        async def on_reconnected() -> None:
            self._set(LinkState.CONNECTED)

        async def on_closed() -> None:
            closed.set()

        await nc.connect(
            servers=[self.settings.url], name=f"bridge {self.settings.party}",
            nkeys_seed_str=self.settings.seed,
            inbox_prefix=binding.inbox_prefix(self.settings.party),
            tls=tls, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT, connect_timeout=CONNECT_TIMEOUT,
            error_cb=on_error, disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected, closed_cb=on_closed)
        self._js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        self._set(LinkState.CONNECTED)
        await closed.wait()
        if self.state is not LinkState.CLOSED:
            # Closed for good under us (nats-py gives up on a connection after a protocol
            # error from the server): the supervised task makes a new one, and until then the
            # link is not connected (the consumer binds anew to the new one).
            self.last_error = self.last_error or "the connection was closed"
            self._set(LinkState.RECONNECTING)

    async def close(self) -> None:
        self._set(LinkState.CLOSED)
        self.metrics.clear_fault(FAULT)
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def publish(self, subject: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Publish and wait for the broker's PubAck (it holds the message, durably, and
        dropped it if it already held the same ``Nats-Msg-Id``). ``RelayUnavailable`` when
        the broker did not take it: nothing is buffered behind the caller's back."""
        if self._js is None or self._nc is None or not self.connected:
            raise RelayUnavailable(f"not connected to the relay ({self.state.value}"
                                   + (f": {self.last_error}" if self.last_error else "") + ")")
        limit = self._nc.max_payload - binding.HEADER_ALLOWANCE
        if len(body) > limit:
            # The server would refuse it; said plainly, since only a smaller envelope helps.
            raise RelayUnavailable(f"a message of {len(body)} bytes is over the relay's limit "
                                   f"of {limit}: lower [delivery] chunk_items")
        try:
            await self._js.publish(subject, body, headers=dict(headers),
                                   timeout=PUBLISH_TIMEOUT)
        except nats.js.errors.APIError as exc:  # a full stream, a message over its limit
            # The broker's words (bounded, escaped): they reach the log and the peer's events.
            raise RelayUnavailable(f"the relay refused the message: {said(exc)}") from exc
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise RelayUnavailable(f"no PubAck from the relay: {type(exc).__name__}: "
                                   f"{said(exc)}") from exc


    async def request(self, subject: str, body: bytes, timeout: float
                      ) -> tuple[dict[str, str], bytes]:
        """A core NATS request (no stream: the witness's add-checkpoint, PROTOCOL.md §13.8):
        the reply's headers and body, its reply subject under this party's own inbox prefix.
        ``RelayUnavailable`` when not connected, when no one listens on ``subject``, or when
        no reply came in ``timeout`` seconds."""
        if self._nc is None or not self.connected:
            raise RelayUnavailable(f"not connected to the relay ({self.state.value})")
        try:
            msg = await self._nc.request(subject, body, timeout=timeout)
        except nats.errors.NoRespondersError:
            raise RelayUnavailable(f"no one answers on {subject} through the relay") from None
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            raise RelayUnavailable(f"no answer through the relay: {type(exc).__name__}: "
                                   f"{said(exc)}") from exc
        return dict(msg.headers or {}), msg.data


def link_of_home(home: Home, config: Config, metrics: Metrics) -> RelayLink | None:
    """The relay link of a home that joined one (its ``[relay]`` table), else None."""
    relay = config.relay
    if relay is None:
        return None
    return RelayLink(LinkSettings(
        url=relay.url, seed=read_seed(home.path / relay.creds), party=config.party,
        tls_ca=home.path / relay.tls_ca if relay.tls_ca else None), metrics)


__all__ = ["FAULT", "LinkSettings", "LinkState", "RelayLink", "RelayUnavailable",
           "link_of_home", "tls_context"]

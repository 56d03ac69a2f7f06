"""The witness through the mediator's relay (PROTOCOL.md §13.8): the tlog-witness
``add-checkpoint`` exchange as NATS request/reply on ``bridge.witness.v1.NAME.add-checkpoint``.

The request's body is the HTTP binding's request body; the reply's body is the HTTP answer's
body, its status code in the ``Bridge-Status`` header and its media type in ``Content-Type``:
the same bytes, so the party reads them with the very code that reads an HTTP answer. The
witness's credentials let it receive on its own subject and answer each request once, on that
request's reply subject (the broker's ``allow_responses``): nothing else. Requests are judged
one at a time by the same ``Judge`` as the HTTP binding's, which records each one before its
answer is sent.

The connection is kept for as long as the witness runs (nats-py reconnects forever); a
witness that is not connected is, for a party, a witness that is down: its request finds no
responder, fails at once, and is tried again later (the submitter's backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from bridge.core.notes import witness_wire
from bridge.core.printable import said
from bridge.home.addresses import check_relay_url
from bridge.transports.relay import binding
from bridge.transports.relay.link import CONNECT_TIMEOUT, RECONNECT_WAIT, tls_context
from bridge.transports.relay.nkeys import read_seed
from bridge.witness.service import Judge, answer_parts

log = logging.getLogger("bridge.witness")


@dataclass(frozen=True, kw_only=True)
class RelaySettings:
    """Where the witness reaches the relay: its URL, the witness's credential file (from
    ``relay add-witness``) and, for ``tls://``, the CA the broker's certificate chains to."""

    url: str
    creds: Path
    tls_ca: Path | None = None

    def __post_init__(self) -> None:
        check_relay_url(self.url)


def _too_large() -> tuple[int, str, bytes]:
    return 413, "text/plain; charset=utf-8", b"request body is too large\n"


def reply_headers(status: int, content_type: str) -> dict[str, str]:
    return {binding.HEADER_STATUS: str(status), binding.HEADER_CONTENT_TYPE: content_type}


class RelayWitness:
    """The witness's one connection to the relay and its subscription."""

    def __init__(self, settings: RelaySettings, name: str, judge: Judge) -> None:
        self.settings = settings
        self.subject = binding.witness_subject(name)
        self.judge = judge
        self.nc = Client()
        self._closing = False
        self._again: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and subscribe; returns once requests can arrive."""
        await self._serve(self.nc)
        log.info("witness serving %s on the relay %s", self.subject, self.settings.url)

    async def _serve(self, nc: Client) -> None:
        s = self.settings

        async def on_error(exc: Exception) -> None:
            # The broker's words (they may quote a subject a party chose): bounded, escaped.
            log.warning("witness relay %s: %s: %s", s.url, type(exc).__name__, said(exc))

        async def on_closed() -> None:
            # nats-py reconnects forever, but gives a connection up for good after a protocol
            # error from the server: a subscription on it would never hear a request again.
            if not self._closing:
                log.warning("witness relay %s: the connection was closed; connecting again",
                            s.url)
                self._again = asyncio.ensure_future(self._connect_again())

        await nc.connect(
            servers=[s.url], name="bridge witness", nkeys_seed_str=read_seed(s.creds),
            tls=tls_context(s.tls_ca) if s.tls_ca else None, allow_reconnect=True,
            max_reconnect_attempts=-1, reconnect_time_wait=RECONNECT_WAIT,
            connect_timeout=CONNECT_TIMEOUT, error_cb=on_error, closed_cb=on_closed)
        # Answered on the connection the request came on: a request taken just before the
        # connection was replaced still goes back the way it came.
        await nc.subscribe(self.subject, cb=functools.partial(self._on_request, nc))
        await nc.flush()  # the server has the subscription: a request now finds us

    async def _connect_again(self) -> None:
        while not self._closing:
            nc = Client()
            try:
                await self._serve(nc)
            except asyncio.CancelledError:  # closing while connecting: nothing left open
                with contextlib.suppress(Exception):
                    await nc.close()
                raise
            except (nats.errors.Error, OSError) as exc:
                log.info("witness relay %s: not connected again yet (%s)", self.settings.url,
                         said(exc))
                with contextlib.suppress(Exception):
                    await nc.close()
                await asyncio.sleep(RECONNECT_WAIT)
                continue
            # Only now, with the subscription at the server, is this the witness's connection:
            # whoever sees it connected finds it serving.
            self.nc = nc
            log.info("witness serving %s on the relay %s again", self.subject,
                     self.settings.url)
            return

    async def _on_request(self, nc: Client, msg: Msg) -> None:
        if not msg.reply:
            return  # a publish, not a request: there is no one to answer
        if len(msg.data) > witness_wire.MAX_BODY:
            status, ctype, body = _too_large()
        else:
            status, ctype, body = answer_parts(await self.judge(msg.data, "relay"))
        try:
            await nc.publish(msg.reply, body, headers=reply_headers(status, ctype))
        except (nats.errors.Error, OSError) as exc:
            # The decision is recorded; the party asks again and is answered from the state.
            log.info("witness: answer not sent on the relay: %s", said(exc))

    async def close(self) -> None:
        self._closing = True
        if self._again is not None:
            self._again.cancel()
            await asyncio.gather(self._again, return_exceptions=True)
        if not self.nc.is_closed:
            await asyncio.shield(self.nc.close())


__all__ = ["RelaySettings", "RelayWitness", "reply_headers"]

"""How a party's checkpoint reaches its witness (PROTOCOL.md §13.4, §13.8): ``POST
/add-checkpoint`` at the witness's URL, or the same bytes as a request through the mediator's
relay. Either answers the HTTP status code, the media type and the body (at most
``MAX_ANSWER`` bytes), which ``bridge.engine.witnessing.read_answer`` judges alike; a witness
that cannot be reached raises ``WitnessUnreachable``, which the loop retries with backoff.
"""

from __future__ import annotations

import re
from typing import Protocol

import aiohttp

from bridge.transports.relay import binding
from bridge.transports.relay.link import RelayLink, RelayUnavailable

MAX_ANSWER = 64 * 1024
REQUEST_SECONDS = 15.0
_STATUS = re.compile(r"^[1-5][0-9][0-9]\Z")

Answer = tuple[int, str, bytes]  # status code, media type (no parameters), body


class WitnessUnreachable(Exception):
    """No answer from the witness: down, not listening, not connected, or too slow."""


class WitnessCourier(Protocol):
    async def add_checkpoint(self, body: bytes) -> Answer: ...

    async def close(self) -> None: ...


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip()


class HttpWitnessCourier:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/add-checkpoint"
        self._session: aiohttp.ClientSession | None = None

    async def add_checkpoint(self, body: bytes) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(self.url, data=body, timeout=aiohttp.ClientTimeout(
                    total=REQUEST_SECONDS)) as resp:
                data = await resp.content.read(MAX_ANSWER + 1)
                return (resp.status, media_type(resp.headers.get("Content-Type", "")),
                        data[:MAX_ANSWER])
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise WitnessUnreachable(str(exc) or type(exc).__name__) from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class RelayWitnessCourier:
    """The request on the witness's subject, the answer on this party's own inbox (no other
    party can read it: the broker lets each subscribe to its own prefix only)."""

    def __init__(self, link: RelayLink, witness: str) -> None:
        self.link = link
        self.subject = binding.witness_subject(witness)

    async def add_checkpoint(self, body: bytes) -> Answer:
        try:
            headers, data = await self.link.request(self.subject, body, REQUEST_SECONDS)
        except RelayUnavailable as exc:
            raise WitnessUnreachable(str(exc)) from exc
        status = headers.get(binding.HEADER_STATUS, "")
        if not _STATUS.match(status):
            # Only the witness may answer on the request's reply subject, but the broker
            # carries it: an answer without its status code is no answer.
            raise WitnessUnreachable(f"an answer through the relay without a valid "
                                     f"{binding.HEADER_STATUS} header")
        ctype = media_type(headers.get(binding.HEADER_CONTENT_TYPE, ""))
        return int(status), ctype, data[:MAX_ANSWER]

    async def close(self) -> None:
        """The link is the daemon's, shared with the peers' couriers: not ours to close."""


__all__ = ["MAX_ANSWER", "REQUEST_SECONDS", "Answer", "HttpWitnessCourier",
           "RelayWitnessCourier", "WitnessCourier", "WitnessUnreachable", "media_type"]

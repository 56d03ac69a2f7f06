"""The mediator's admin user at work: creating each party's stream and consumer, and reading
how much waits where. Through the JetStream API's own subjects and JSON (``$JS.API.…``), the
wire contract of the server, so that what is created is exactly what PROTOCOL.md's relay
binding says, field by field.

``relay status`` reads only stream and consumer state: counts, sizes and times; never a
message.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import Error as NatsError

from bridge.core.errors import PeerError, UsageError
from bridge.transports.relay import binding
from bridge.transports.relay.mediator import RelayConfig
from bridge.transports.relay.nkeys import read_seed

log = logging.getLogger("bridge.relay")

NS = 1_000_000_000
API_TIMEOUT = 10.0
# The JetStream API's error codes (its "err_code") this module acts on.
STREAM_IN_USE = 10058  # a stream of that name exists with another configuration
NOT_FOUND = (10059, 10014)  # stream, consumer not found


class ApiRefused(UsageError):
    """The JetStream API answered with an error."""

    def __init__(self, subject: str, error: dict[str, Any]) -> None:
        super().__init__(f"the relay's server refused {subject}: "
                         f"{error.get('description', 'error')} (code {error.get('code')})",
                         code="relay_api")
        self.err_code = error.get("err_code")


async def _quiet(exc: Exception) -> None:
    """nats-py's default error callback logs a traceback; the caller reports the failure."""
    log.debug("relay admin connection: %s", exc)


async def connect_user(url: str, creds: str, *, name: str, **options: Any) -> Client:
    """A connection with the credential file ``creds`` (no reconnects: the caller retries);
    ``UsageError`` when it cannot be made."""
    try:
        return await nats.connect(url, nkeys_seed_str=read_seed(creds), name=name,
                                  allow_reconnect=False, connect_timeout=5, error_cb=_quiet,
                                  **options)
    except (OSError, NatsError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the relay's server at {url} with {creds}: "
                         f"{type(exc).__name__} {exc}".rstrip(), code="relay_unreachable"
                         ) from exc


async def connect_admin(url: str, creds: str, **options: Any) -> Client:
    """A connection as the mediator's admin user."""
    return await connect_user(url, creds, name="bridge-relay-admin", **options)


async def api(nc: Client, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JetStream API request and its JSON answer; ``ApiRefused`` for an error answer."""
    payload = json.dumps(body).encode() if body is not None else b""
    reply = await nc.request(subject, payload, timeout=API_TIMEOUT)
    answer = json.loads(reply.data)
    if not isinstance(answer, dict):
        raise UsageError(f"the relay's server answered {subject} with no JSON object")
    if isinstance(answer.get("error"), dict):
        raise ApiRefused(subject, answer["error"])
    return answer


def stream_config(config: RelayConfig, party: str) -> dict[str, Any]:
    """Party ``party``'s stream: every subject toward it, on disk, a work queue (a message
    leaves once acked: the mediator keeps nothing it has delivered), refusing new messages when
    full rather than dropping old ones, with the duplicate window of the binding."""
    relay = config.relay
    return {
        "name": binding.stream_name(party),
        "subjects": [binding.inbound_subjects(party)],
        "retention": "workqueue",
        "storage": "file",
        "discard": "new",
        "num_replicas": 1,
        "max_consumers": 1,
        "max_msgs": -1,
        "max_bytes": relay.max_stream_bytes,
        "max_msg_size": relay.max_payload,
        "max_age": int(relay.max_age * NS),
        "duplicate_window": int(relay.duplicate_window * NS),
        "allow_direct": False,
    }


def consumer_config(config: RelayConfig, party: str) -> dict[str, Any]:
    """Its one durable pull consumer: explicit acks, every message, redelivered after
    ``ack_wait`` as often as it takes (``max_deliver`` -1)."""
    name = binding.consumer_name(party)
    return {
        "durable_name": name,
        "name": name,
        "ack_policy": "explicit",
        "deliver_policy": "all",
        "replay_policy": "instant",
        "ack_wait": int(config.relay.ack_wait * NS),
        "max_deliver": -1,
    }


async def ensure_party(nc: Client, config: RelayConfig, party: str) -> None:
    """Create the party's stream and consumer, or bring them to the configuration."""
    stream = binding.stream_name(party)
    body = stream_config(config, party)
    try:
        await api(nc, f"$JS.API.STREAM.CREATE.{stream}", body)
    except ApiRefused as exc:
        if exc.err_code != STREAM_IN_USE:
            raise
        await api(nc, f"$JS.API.STREAM.UPDATE.{stream}", body)
    consumer = binding.consumer_name(party)
    await api(nc, f"$JS.API.CONSUMER.CREATE.{stream}.{consumer}",
              {"stream_name": stream, "config": consumer_config(config, party)})


async def ensure_all(nc: Client, config: RelayConfig) -> None:
    for party in sorted(config.parties):
        await ensure_party(nc, config, party)


# ------------------------------------------------------------------ status


@dataclass(frozen=True, kw_only=True)
class StreamStatus:
    """What waits for one party: never a message, only counts, sizes and times."""

    party: str
    messages: int
    bytes: int
    last_message_at: str | None
    last_delivery_at: str | None
    being_processed: int
    redelivered: int
    pulling: bool
    waiting_from: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"party": self.party, "stream": binding.stream_name(self.party),
                "messages": self.messages, "bytes": self.bytes,
                "last_message_at": self.last_message_at,
                "last_delivery_at": self.last_delivery_at,
                "being_processed": self.being_processed, "redelivered": self.redelivered,
                "pulling": self.pulling, "waiting_from": dict(sorted(self.waiting_from.items()))}


def _time(value: object) -> str | None:
    """A server time as it says it (RFC 3339), or None for none (Go's zero time)."""
    if not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    return value


def _senders(subjects: dict[str, int], party: str) -> dict[str, int]:
    waiting: dict[str, int] = {}
    for name, count in subjects.items():
        try:
            sender = binding.parse_subject(name, recipient=party)
        except PeerError:
            sender = "?"  # a subject no party can publish to; only the admin could
        waiting[sender] = waiting.get(sender, 0) + int(count)
    return waiting


async def stream_status(nc: Client, party: str) -> StreamStatus:
    stream, consumer = binding.stream_name(party), binding.consumer_name(party)
    info = await api(nc, f"$JS.API.STREAM.INFO.{stream}",
                     {"subjects_filter": binding.inbound_subjects(party)})
    state = info.get("state") or {}
    ci = await api(nc, f"$JS.API.CONSUMER.INFO.{stream}.{consumer}")
    delivered = ci.get("delivered") or {}
    return StreamStatus(
        party=party, messages=int(state.get("messages", 0)), bytes=int(state.get("bytes", 0)),
        last_message_at=_time(state.get("last_ts")) if state.get("last_seq") else None,
        last_delivery_at=_time(delivered.get("last_active")),
        being_processed=int(ci.get("num_ack_pending", 0)),
        redelivered=int(ci.get("num_redelivered", 0)),
        pulling=int(ci.get("num_waiting", 0)) > 0,
        waiting_from=_senders(state.get("subjects") or {}, party))


async def relay_status(nc: Client, config: RelayConfig) -> list[StreamStatus]:
    return [await stream_status(nc, party) for party in sorted(config.parties)]


__all__ = ["ApiRefused", "StreamStatus", "api", "connect_admin", "connect_user", "consumer_config",
           "ensure_all", "ensure_party", "relay_status", "stream_config", "stream_status"]

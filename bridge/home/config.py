"""``bridge.toml``: the typed model of the configuration, read and written whole.

Two shapes of one model. ``ConfigFile`` is the file as it is laid out (sections ``[bridge]``,
``[delivery]``, ``[limits]``, ``[tls]``, ``[local]``, ``[peers.NAME]``); ``Config`` is what the
rest of Bridge reads (``config.delivery.…``, ``config.limits.…``, ``config.peers``). Every
class is a frozen dataclass validated on construction (pydantic), so a ``Config`` that exists is
a sound one: an unknown section or key, a value of the wrong type or out of range, is refused
and named, every problem at once — never silently ignored (a setting that is not read is worse
than none: the operator believes it is in force), and a negative backoff is never a 10 ms retry
loop. TOML has real types and they are kept: a bool is never a number (``True == 1`` in
Python), a string is never a number, and a whole number is a fine value for a number.

The file is written with ``tomli-w``, never by pasting values into text, so a quote or a
newline in a value cannot end its string. ``CONFIGURATION.md`` is generated from these classes
(``bridge/home/config_reference.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import tomli_w
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.dataclasses import dataclass

from bridge.core.crypto.identity import check_party
from bridge.core.errors import BridgeError, InputError, UsageError
from bridge.home.addresses import VIA_CARRY as VIA_CARRY  # the ways a peer is reached,
from bridge.home.addresses import VIA_HTTP as VIA_HTTP  # named where pydantic is not loaded
from bridge.home.addresses import VIA_RELAY as VIA_RELAY
from bridge.home.addresses import Via as Via
from bridge.home.addresses import WitnessVia as WitnessVia
from bridge.home.addresses import check_peer_url, check_relay_url, parse_listen
from bridge.home.config_problems import listed, problem
from bridge.home.tls import normalise_tls_fingerprint

DEFAULT_LISTEN = "127.0.0.1:7443"
DEFAULT_MAX_BODY = 64 * 1024 * 1024

def _as_value_error(check: Callable[[str], object]) -> Callable[[str], str]:
    """One of Bridge's own checks as a pydantic validator: its refusal (a ``BridgeError``)
    becomes a ``ValueError``, which pydantic collects with the others and names by field."""
    def validate(value: str) -> str:
        try:
            check(value)
        except InputError as exc:  # the field is named by where it stands in the file
            raise ValueError(exc.detail) from exc
        except BridgeError as exc:
            raise ValueError(str(exc)) from exc
        return value
    return validate


# The value types, each with its rule, shared by the file's tables and by ``Config``.
Party = Annotated[StrictStr, AfterValidator(_as_value_error(check_party))]
Listen = Annotated[StrictStr, AfterValidator(_as_value_error(parse_listen))]
PeerUrl = Annotated[StrictStr, AfterValidator(_as_value_error(check_peer_url))]
RelayUrl = Annotated[StrictStr, AfterValidator(_as_value_error(check_relay_url))]
TlsPin = Annotated[StrictStr, AfterValidator(_as_value_error(normalise_tls_fingerprint))]
Number = Annotated[float, Strict()]  # strict: a whole number is accepted, a bool or text is not
Count = Annotated[StrictInt, Field(ge=1)]
BodyBytes = Annotated[StrictInt, Field(ge=1)]
CheckSeconds = Annotated[Number, Field(ge=0.05, le=3600)]
Uid = Annotated[StrictInt, Field(ge=0)]
CheckProcesses = Annotated[StrictInt, Field(ge=0, le=8)]


def _table(title: str) -> ConfigDict:
    # ``title`` names the section in a ValidationError raised on construction
    # ("1 validation error for [delivery]"); ``extra="forbid"`` refuses unknown keys.
    return ConfigDict(extra="forbid", title=title)


@dataclass(frozen=True, kw_only=True, config=_table("[delivery]"))
class Delivery:
    """Retry policy for the delivery loop (exponential backoff with full jitter, capped)."""

    # A zero or negative backoff is a retry loop against the peer (and an fsync'd transaction
    # each time); an hour between attempts is the most that still delivers.
    initial_backoff: Number = Field(
        default=0.2, ge=0.01, le=3600,
        description="Seconds before the first retry of a delivery that failed; each further "
                    "retry waits up to twice as long (full jitter).")
    max_backoff: Number = Field(
        default=30.0, le=86400,
        description="The longest wait between two delivery attempts, in seconds "
                    "(at least initial_backoff).")
    request_timeout: Number = Field(
        default=30.0, gt=0, le=3600,
        description="Seconds a delivery request may take before it counts as failed.")
    chunk_items: StrictInt = Field(
        default=5000, ge=1, le=1_000_000,
        description="Items per envelope when a large document is split into chunks.")
    in_flight: StrictInt = Field(
        default=8, ge=1, le=64,
        description="Envelopes sent to one peer before their answers are back, over HTTP or "
                    "through the relay (PROTOCOL.md §8.7); 1 sends each only after the answer "
                    "to the one before.")
    # Backpressure (README, "Backpressure"): past either bound the local API refuses new
    # documents and acknowledgements for the peer with 429 and a Retry-After, storing nothing,
    # instead of letting the queue grow without bound while the link is slow or down.
    max_queued_envelopes: Count = Field(
        default=10_000, le=10_000_000,
        description="Envelopes waiting for one peer past which new documents and "
                    "acknowledgements for it are refused (429, Retry-After) until it drains.")
    max_queued_bytes: Count = Field(
        default=1 << 30, le=1 << 40,
        description="Sealed bytes waiting for one peer past which the same is refused.")

    @model_validator(mode="after")
    def _backoff_grows(self) -> Delivery:
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be at least initial_backoff")
        return self


@dataclass(frozen=True, kw_only=True, config=_table("[limits]"))
class Limits:
    """[limits]: what the peer endpoint accepts from the network (README, "Security limits").
    ``max_body_bytes`` is kept on ``Config`` (the local API uses it too) but written here."""

    max_connections: Count = Field(
        default=64, description="Connections open to the peer endpoint at once.")
    # The bucket stands before the signature is checked: it bounds what a flood claiming one
    # sender costs, and must not bound a real link. Measured on two shared cores (suite 2):
    # a forged envelope costs the endpoint about 1.3 ms of CPU to refuse, a replayed one 0.3 ms
    # (bench/peer_intake.py: ~420 and ~1,900 a second); two daemons exchanging small documents
    # as fast as their CPU allows receive about 80 envelopes a second each (bench/
    # concurrency.py). At 50 a second the bucket, not the CPU, was what bounded a busy link.
    requests_per_second: Number = Field(
        default=200.0, gt=0,
        description="Envelopes a second accepted from one sender (token bucket), before any "
                    "is verified: over twice what two daemons on two cores exchange (about 80 "
                    "a second each way), while a flood of forgeries claiming one sender costs "
                    "at most about a quarter of a core (1.3 ms each to refuse) ...")
    burst: Count = Field(default=400, description="... with this many saved up (two seconds).")
    body_read_seconds: Number = Field(
        default=60.0, gt=0,
        description="A request body must arrive whole within this many seconds.")
    idle_seconds: Number = Field(
        default=30.0, gt=0, description="A connection with no request in progress is closed after "
                                "this many seconds.")
    max_header_bytes: Count = Field(
        default=8190, description="The longest request line, and header line, in bytes.")
    max_headers: Count = Field(default=32, description="The most header lines in one request.")
    refusal_records_per_minute: Count = Field(
        default=600, description="Refusals recorded a minute (the rest are only counted).")


def _check_via(via: str, url: str | None, tls_fingerprint: str | None, what: str = "peer"
               ) -> None:
    """``http`` needs the peer's (or witness's) URL; the relay and the carrier reach no URL,
    and a URL or a TLS pin beside them would be a setting nobody reads."""
    if via == VIA_HTTP and url is None:
        raise ValueError(f"url is missing (a {what} reached over http needs its URL; "
                         "via = \"relay\" or \"carry\" needs none)")
    if via != VIA_HTTP and (url is not None or tls_fingerprint is not None):
        raise ValueError(f"a {what} reached via {via} has no url or tls_fingerprint")


@dataclass(frozen=True, kw_only=True, config=_table("[peers.NAME]"))
class PeerConfig:
    name: Party
    url: PeerUrl | None = None
    fingerprint: StrictStr
    # SHA-256 of the peer endpoint's TLS certificate (64 lower-case hex digits) for https://
    tls_fingerprint: TlsPin | None = None
    via: Via = VIA_HTTP

    @model_validator(mode="after")
    def _reached(self) -> PeerConfig:
        _check_via(self.via, self.url, self.tls_fingerprint)
        return self


@dataclass(frozen=True, kw_only=True, config=_table("[relay]"))
class RelayTable:
    """[relay]: the mediator's broker this party connects out to (``bridge relay join``)."""

    url: RelayUrl = Field(description="The mediator's broker, nats://HOST:PORT, or "
                                      "tls://HOST:PORT checked against tls_ca.")
    creds: StrictStr = Field(default="relay.creds",
                             description="The credential file the mediator handed out (its "
                                         "user nkey seed), relative to the home; mode 0600.")
    tls_ca: StrictStr | None = Field(
        default=None, description="The CA certificate (PEM, relative to the home) that the "
                                  "broker's certificate must chain to, for a tls:// URL.")
    answer_wait: Number = Field(
        default=300.0, ge=1, le=86400,
        description="Seconds to wait for a peer's answer through the relay before the envelope "
                    "is sent again (meanwhile it waits in the broker for the peer).")
    fetch_batch: Count = Field(default=64, le=1000,
                               description="Messages pulled from the broker at once, at most.")

    @model_validator(mode="after")
    def _tls_needs_a_ca(self) -> RelayTable:
        if self.url.startswith("tls://") and not self.tls_ca:
            raise ValueError("a tls:// relay needs tls_ca (the CA its certificate chains to)")
        if self.tls_ca and not self.url.startswith("tls://"):
            raise ValueError("tls_ca is read only for a tls:// relay URL")
        return self


WitnessSeconds = Annotated[Number, Field(ge=0.05, le=86400)]




@dataclass(frozen=True, kw_only=True, config=_table("[witnesses.NAME]"))
class WitnessConfig:
    name: Party
    url: PeerUrl | None = None
    fingerprint: StrictStr
    interval_seconds: WitnessSeconds = 5.0
    via: WitnessVia = "http"

    @model_validator(mode="after")
    def _reached(self) -> WitnessConfig:
        _check_via(self.via, self.url, None, what="witness")
        return self


@dataclass(frozen=True, kw_only=True, config=_table("configuration"))
class Config:
    party: Party
    listen: Listen | None = None  # None: no peer endpoint, no TCP port at all
    delivery: Delivery = Field(default_factory=Delivery)
    peers: dict[str, PeerConfig] = Field(default_factory=dict)
    max_body_bytes: BodyBytes = DEFAULT_MAX_BODY
    deadline_check_seconds: CheckSeconds = 5.0
    limits: Limits = Field(default_factory=Limits)
    tls_enabled: StrictBool = False  # [tls] enabled: serve the peer endpoint over TLS
    # [local] allowed_uids: who may use the local API; None means this uid and root.
    allowed_uids: tuple[Uid, ...] | None = None
    # [local] check_processes: processes checking large streams beside the daemon; None: 2, 0
    # on one core (bridge/daemon/checkers.py).
    check_processes: CheckProcesses | None = None
    relay: RelayTable | None = None  # [relay]: the mediator's broker, if this party joined one
    # [witnesses.NAME]: the witnesses this party's audit log is submitted to (PROTOCOL.md §13).
    witnesses: dict[str, WitnessConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _peers_by_name(self) -> Config:
        for name, peer in self.peers.items():
            if peer.name != name:
                raise ValueError(f"peer {peer.name!r} is filed under {name!r}")
            if peer.via == VIA_RELAY and self.relay is None:
                raise ValueError(f"peer {name!r} is reached via relay, but there is no [relay] "
                                 "table (join one with: bridge relay join URL --creds FILE)")
        for name, witness in self.witnesses.items():
            if witness.via == VIA_RELAY and self.relay is None:
                raise ValueError(f"witness {name!r} is reached via relay, but there is no "
                                 "[relay] table (join one with: bridge relay join URL --creds "
                                 "FILE)")
        return self

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], source: str) -> Config:
        """The configuration in a parsed ``bridge.toml``; ``UsageError`` listing every problem
        (``source`` names the file in it)."""
        return read_file(data, source).config()

    def to_toml(self) -> str:
        return render_toml(ConfigFile.of(self))


# ------------------------------------------------------------------ the file, as it is laid out


@dataclass(frozen=True, kw_only=True, config=_table("[bridge]"))
class BridgeTable:
    party: Party = Field(description="This party's name (lower case letters, digits, '-'), as "
                                     "its peers pin it.")
    listen: Listen | None = Field(
        default=None, description="HOST:PORT of the peer endpoint, where the other party "
                                  "delivers (port 0: any free port, written to HOME/peer.port "
                                  "once bound). Unset: no peer endpoint, no TCP port at all "
                                  "(peers reached via the relay or the carrier).")
    deadline_check_seconds: CheckSeconds = Field(
        default=5.0, description="How often acknowledgement deadlines are checked, in seconds.")
    max_body_bytes: BodyBytes | None = Field(
        default=None,
        description="Older place of [limits] max_body_bytes (read when [limits] has none).")


@dataclass(frozen=True, kw_only=True, config=_table("[limits]"))
class LimitsTable(Limits):
    max_body_bytes: BodyBytes = Field(
        default=DEFAULT_MAX_BODY,
        description="The largest request body, in bytes, on the peer endpoint and the local API.")


@dataclass(frozen=True, kw_only=True, config=_table("[tls]"))
class TlsTable:
    enabled: StrictBool = Field(
        default=False,
        description="Serve the peer endpoint over TLS (certificate in tls/; peers pin its "
                    "SHA-256).")


@dataclass(frozen=True, kw_only=True, config=_table("[local]"))
class LocalTable:
    allowed_uids: list[Uid] | None = Field(
        default=None,
        description="User ids that may use the local API (default: the daemon's own user "
                    "and root).")
    check_processes: CheckProcesses | None = Field(
        default=None,
        description="Processes beside the daemon that check a large streamed submission's "
                    "items (default: 2, none on one core; 0: the daemon checks every stream "
                    "itself).")


@dataclass(frozen=True, kw_only=True, config=_table("[peers.NAME]"))
class PeerTable:
    url: PeerUrl | None = Field(default=None,
                                description="The peer's endpoint, http(s)://HOST:PORT (for via "
                                            "= \"http\" only).")
    fingerprint: StrictStr = Field(description="The fingerprint of the peer's identity, compared "
                                               "out of band.")
    tls_fingerprint: TlsPin | None = Field(
        default=None, description="SHA-256 of the peer endpoint's TLS certificate (needed for an "
                          "https:// URL).")
    via: Via = Field(default=VIA_HTTP,
                     description="How the peer is reached: \"http\" (its url), \"relay\" "
                                 "(the mediator's broker, [relay]) or \"carry\" (files).")

    @model_validator(mode="after")
    def _reached(self) -> PeerTable:
        _check_via(self.via, self.url, self.tls_fingerprint)
        return self


@dataclass(frozen=True, kw_only=True, config=_table("[witnesses.NAME]"))
class WitnessTable:
    url: PeerUrl | None = Field(
        default=None, description="The witness's add-checkpoint prefix, http(s)://HOST:PORT "
                                  "(for via \"http\").")
    fingerprint: StrictStr = Field(description="The fingerprint of the witness's identity, "
                                               "compared out of band.")
    interval_seconds: WitnessSeconds = Field(
        default=5.0, description="While the audit log has grown, submit a checkpoint at least "
                                 "this often (one request in flight at a time).")
    via: WitnessVia = Field(
        default="http",
        description="How the witness is reached: \"http\" (its url) or \"relay\" (the "
                    "mediator's broker of the [relay] table; PROTOCOL.md §13.8).")

    @model_validator(mode="after")
    def _reached(self) -> WitnessTable:
        _check_via(self.via, self.url, None, what="witness")
        return self


@dataclass(frozen=True, kw_only=True, config=_table("bridge.toml"))
class ConfigFile:
    bridge: BridgeTable
    delivery: Delivery = Field(default_factory=Delivery)
    limits: LimitsTable = Field(default_factory=LimitsTable)
    tls: TlsTable = Field(default_factory=TlsTable)
    local: LocalTable = Field(default_factory=LocalTable)
    relay: RelayTable | None = None
    peers: dict[Party, PeerTable] = Field(default_factory=dict)
    witnesses: dict[Party, WitnessTable] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _older_body_limit(cls, data: Any) -> Any:
        # Files written before [limits] existed keep max_body_bytes in [bridge] (0.1.0).
        if not isinstance(data, dict):
            return data
        bridge, limits = data.get("bridge"), data.get("limits", {})
        if (isinstance(bridge, dict) and isinstance(limits, dict)
                and "max_body_bytes" in bridge and "max_body_bytes" not in limits):
            data = {**data, "limits": {**limits, "max_body_bytes": bridge["max_body_bytes"]}}
        return data

    def config(self) -> Config:
        limits = {f.name: getattr(self.limits, f.name) for f in dataclasses.fields(Limits)}
        uids = self.local.allowed_uids
        return Config(
            party=self.bridge.party, listen=self.bridge.listen, delivery=self.delivery,
            peers={name: PeerConfig(name=name, url=p.url, fingerprint=p.fingerprint,
                                    tls_fingerprint=p.tls_fingerprint or None, via=p.via)
                   for name, p in self.peers.items()},
            relay=self.relay,
            max_body_bytes=self.limits.max_body_bytes,
            deadline_check_seconds=self.bridge.deadline_check_seconds,
            limits=Limits(**limits), tls_enabled=self.tls.enabled,
            allowed_uids=tuple(uids) if uids is not None else None,
            check_processes=self.local.check_processes,
            witnesses={name: WitnessConfig(name=name, url=w.url, fingerprint=w.fingerprint,
                                           interval_seconds=w.interval_seconds, via=w.via)
                       for name, w in self.witnesses.items()})

    @classmethod
    def of(cls, config: Config) -> ConfigFile:
        uids = config.allowed_uids
        return cls(
            bridge=BridgeTable(party=config.party, listen=config.listen,
                               deadline_check_seconds=config.deadline_check_seconds),
            delivery=config.delivery,
            limits=LimitsTable(max_body_bytes=config.max_body_bytes,
                               **dataclasses.asdict(config.limits)),
            tls=TlsTable(enabled=config.tls_enabled),
            local=LocalTable(allowed_uids=list(uids) if uids is not None else None,
                             check_processes=config.check_processes),
            relay=config.relay,
            peers={p.name: PeerTable(url=p.url, fingerprint=p.fingerprint,
                                     tls_fingerprint=p.tls_fingerprint, via=p.via)
                   for p in config.peers.values()},
            witnesses={w.name: WitnessTable(url=w.url, fingerprint=w.fingerprint,
                                            interval_seconds=w.interval_seconds, via=w.via)
                       for w in config.witnesses.values()})


# Each section's place in the file, with the comment written above it (constant text: only
# values come from the configuration, and only tomli-w writes them).
SECTIONS: dict[str, tuple[type, str]] = {
    "bridge": (BridgeTable, "Bridge configuration. Times are in seconds."),
    "delivery": (Delivery, ""),
    "limits": (LimitsTable, "What the peer endpoint accepts (README, \"Security limits\")."),
    "tls": (TlsTable, "TLS on the peer endpoint (certificate in tls/; peers pin its SHA-256)."),
    "local": (LocalTable, "Who may use the local API (default: the daemon's own user and root)."),
    "relay": (RelayTable, "The mediator's broker (bridge relay join); peers via = \"relay\"."),
}
_FILE = TypeAdapter(ConfigFile)


def keys_of(table: type) -> list[str]:
    """A table's keys in the order they are written and documented: its own first, then those
    it shares with the model (``[limits] max_body_bytes`` before the other limits, as README's
    table has it)."""
    names = [f.name for f in dataclasses.fields(table)]
    own = set(vars(table).get("__annotations__", {}))
    return [n for n in names if n in own] + [n for n in names if n not in own]


def render_toml(file: ConfigFile) -> str:
    parts = []
    for name, (kind, comment) in SECTIONS.items():
        if getattr(file, name) is None:  # an optional table ([relay]) not in use
            continue
        values = dataclasses.asdict(getattr(file, name))
        table = {k: values[k] for k in keys_of(kind) if values[k] is not None}
        text = tomli_w.dumps({name: table})
        if name == "local" and not table:
            text += "# allowed_uids = [1001, 0]\n"
        parts.append((f"# {comment}\n" if comment else "") + text)
    for name, peer in file.peers.items():
        # ``via`` is written only when it is not the default: a peer reached over HTTP is
        # written as before the relay existed.
        parts.append(tomli_w.dumps({"peers": {name: {
            k: v for k, v in dataclasses.asdict(peer).items()
            if v is not None and not (k == "via" and v == VIA_HTTP)}}}))
    for name, wit in file.witnesses.items():
        parts.append(tomli_w.dumps({"witnesses": {name: {
            k: v for k, v in dataclasses.asdict(wit).items()
            if v is not None and not (k == "via" and v == VIA_HTTP)}}}))
    return "\n".join(parts)


def read_file(data: Mapping[str, Any], source: str) -> ConfigFile:
    try:
        return _FILE.validate_python(dict(data))
    except ValidationError as exc:
        named = {"peers": PeerTable, "witnesses": WitnessTable}
        problems = [problem(error, SECTIONS, named) for error in exc.errors()]
        raise UsageError(f"{source}: invalid configuration:{listed(problems)}") from None

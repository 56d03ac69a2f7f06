"""The daemon's metrics, in a Prometheus registry of its own, and its current faults (what makes
health say "degraded"): kept here, in memory, because a fault such as a full disk is exactly
when nothing can be written to the store.

Every metric is declared once, below, with a fixed name (``prometheus_client``); what varies is
a label (``task``, ``fault``), never a name made at run time. ``inc`` and ``set_gauge`` refuse a
name that is not declared: a typo is a failing test, not a series nobody watches. The names are
those README and operators' dashboards know (``bridge_peer_too_large_total``, ...), and every
sample carries the party (``party="alpha"``), as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

PREFIX = "bridge_"
M = TypeVar("M", Counter, Gauge)


@dataclass(frozen=True)
class Declared:
    doc: str
    labels: tuple[str, ...] = ()


# Counters, exposed as bridge_NAME_total.
COUNTERS: dict[str, Declared] = {
    # The peer endpoint's refusals, before an envelope costs any cryptography (README,
    # "Security limits").
    "peer_wrong_content_type": Declared("Requests refused for their content type (415)."),
    "peer_too_large": Declared("Requests refused for a body over max_body_bytes (413)."),
    "peer_body_timeout": Declared("Requests whose body did not arrive in time (408)."),
    "peer_rate_limited": Declared("Requests over their sender's rate (429)."),
    "peer_header_too_large": Declared("Requests with a header line over max_header_bytes."),
    "peer_bad_http": Declared("Requests that were not HTTP the endpoint can read."),
    "peer_connections_refused": Declared("Connections refused: every place was busy (503)."),
    "peer_connections_evicted": Declared("Idle connections closed to make room for a new one."),
    # Envelopes received, by the answer they got.
    "envelopes_accepted": Declared("Envelopes received and accepted."),
    "envelopes_duplicate": Declared("Envelopes received again, answered with the receipt."),
    "envelopes_refused": Declared("Envelopes received and refused, with a signed answer."),
    "envelopes_rejected": Declared("Envelopes rejected (malformed, unverifiable, too large)."),
    "envelopes_unavailable": Declared("Envelopes answered unavailable (the store is full)."),
    "envelopes_held": Declared("Envelopes that overtook an earlier one of their link and waited "
                               "for it (PROTOCOL.md §8.7)."),
    # Delivery to the peers.
    "envelopes_sent": Declared("Envelopes a peer decided on (delivered or refused)."),
    "delivery_retries": Declared("Delivery attempts that made no progress."),
    "delivery_failed": Declared("Delivery attempts that failed (no valid answer)."),
    "delivery_busy": Declared("Delivery attempts the peer refused over our rate (429); each "
                              "pauses sends to it until its Retry-After."),
    "delivery_resent_kept_closed": Declared(
        "Envelopes sent again at once because the peer closed the kept connection under them."),
    "delivery_rewound": Declared("Deliveries the peer asked to resend from an earlier seq."),
    "delivery_unavailable": Declared("Deliveries the peer could not record (its store full)."),
    "tls_pin_mismatches": Declared("Peer endpoints whose TLS certificate was not the pinned."),
    # The mediator's relay (bridge/transports/relay).
    "relay_refused": Declared("Messages off the relay refused (subject, headers, size, a "
                              "body that is not what it says)."),
    "relay_rate_limited": Declared("Envelopes off the relay left for later: over their "
                                   "sender's rate."),
    "relay_answers_late": Declared("Answers off the relay to envelopes already settled."),
    "relay_gaps_left": Declared("Envelopes off the relay that came before the one due from "
                                "their sender, left to the broker to bring again later."),
    "peer_errors": Declared("Delivery tries to a peer that went wrong, by reason code.",
                            ("peer", "reason")),
    # The store and the refusal records.
    "store_unavailable": Declared("Writes that failed because the store cannot be written."),
    "store_faults": Declared("Damage found in the store (what is stored is not what was "
                             "signed)."),
    "store_groups": Declared("Groups of operations committed by the database thread, each with "
                             "one commit (group commit, bridge/daemon/dbthread.py)."),
    "store_grouped_operations": Declared("Operations committed in those groups."),
    "stream_batches_beside": Declared("Batches of streamed submissions checked by the "
                                      "processes beside the daemon ([local] check_processes)."),
    "chunks_prepared_beside": Declared("Received chunks decoded and checked by the processes "
                                       "beside the daemon before their turn."),
    "refusals_coalesced": Declared("Refusals counted against an earlier row of theirs."),
    "refusals_not_recorded": Declared("Refusals past refusal_records_per_minute, only counted."),
    # The offline carrier (bridge carry).
    "carry_envelopes_exported": Declared("Envelopes written to carrier files."),
    "carry_records_imported": Declared("Records read from carrier files, by kind.", ("kind",)),
    # The local API.
    "documents_submitted": Declared("Documents submitted on the local API."),
    "acks_submitted": Declared("Acknowledgements submitted on the local API."),
    # Witnessing (PROTOCOL.md §13.4).
    "witness_cosignatures": Declared("Cosignatures of our audit log kept, by witness.",
                                     ("witness",)),
    "witness_refusals": Declared("Checkpoints a witness refused, by witness and reason.",
                                 ("witness", "reason")),
    "witness_unreachable": Declared("Submissions to a witness that got no answer.",
                                    ("witness",)),
    "peer_checkpoints": Declared("Witnessed checkpoints of a peer's log accepted (§13.7), by "
                                 "peer.", ("peer",)),
    # Background and one-shot tasks (bridge/daemon/run.py, supervise).
    "task_restarts": Declared("Background tasks restarted after they died.", ("task",)),
    "task_failures": Declared("One-shot tasks (a broadcast, a peer reload) that failed.",
                              ("task",)),
}

# Gauges the daemon sets, exposed as bridge_NAME.
GAUGES: dict[str, Declared] = {
    "store_corrupt": Declared("1 while the store is known to be damaged (read-only)."),
    "peer_connections_open": Declared("Connections open to the peer endpoint."),
    "peer_connections_peak": Declared("The most connections open at once since the start."),
    "peer_requests_in_progress": Declared("Requests the peer endpoint is working on."),
    "check_processes_ready": Declared("Processes beside the daemon started and ready to check "
                                      "streamed submissions and received chunks."),
    # Each peer's link (bridge/engine/link_status.py), and its queue (set for each scrape).
    "peer_reachable": Declared("1 if the peer took our last try, 0 if not.", ("peer",)),
    "peer_last_success_seconds": Declared("Unix time the peer last decided on an envelope.",
                                          ("peer",)),
    "peer_last_error_seconds": Declared("Unix time of the last try to the peer that went "
                                        "wrong.", ("peer",)),
    "peer_queued": Declared("Envelopes waiting for delivery to the peer.", ("peer",)),
    "peer_oldest_queued_age_seconds": Declared("Age of the oldest envelope waiting for the "
                                               "peer (0 when none waits).", ("peer",)),
}
# The gauges above that are one series per peer: a peer unpinned has them removed.
PEER_GAUGES = tuple(name for name, d in GAUGES.items() if d.labels == ("peer",))

# Gauges read from the store for each scrape (``Store.counters``), exposed as bridge_NAME.
STORE_GAUGES: dict[str, Declared] = {
    "queue_depth": Declared("Envelopes waiting for delivery."),
    "envelopes_sent": Declared("Envelopes in the outbox that have been sent."),
    "envelopes_received": Declared("Envelopes in the inbox."),
    "envelopes_rejected": Declared("Refusals recorded, with their counts."),
    "refusal_rows": Declared("Rows in the refusals table."),
    "retries": Declared("Delivery attempts beyond the first, over the outbox."),
    "security_alarms": Declared("Refusals that raised a security alarm, with their counts."),
    "security_alarm_events": Declared("security_alarm events in the event log, whatever raised "
                                      "them (a TLS pin mismatch, a refusal, a damaged store)."),
}


class UndeclaredMetric(LookupError):
    """A metric name that is not declared above: a mistake in the code, never the operator's."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = {name: Counter(PREFIX + name, d.doc, d.labels, registry=self.registry)
                          for name, d in COUNTERS.items()}
        self._gauges = {name: Gauge(PREFIX + name, d.doc, d.labels, registry=self.registry)
                        for name, d in GAUGES.items()}
        self._fault_count = Gauge(PREFIX + "faults", "Current faults (health says degraded).",
                                  registry=self.registry)
        self._fault = Gauge(PREFIX + "fault", "1 for each current fault, by its code.",
                            ("fault",), registry=self.registry)
        self._lock = threading.Lock()
        self._faults: dict[str, str] = {}
        self._ack_latency = _AckLatency()
        self.registry.register(self._ack_latency)

    def inc(self, name: str, by: int = 1, **labels: str) -> None:
        counter = _declared(self._counters, name)
        (counter.labels(**labels) if labels else counter).inc(by)

    def count(self, name: str, **labels: str) -> int:
        """A counter's value now, as /metrics shows it (for views and tests)."""
        _declared(self._counters, name)
        sample = (PREFIX + name).removesuffix("_total") + "_total"
        return int(self.registry.get_sample_value(sample, labels) or 0)

    def set_gauge(self, name: str, value: int, **labels: str) -> None:
        """A value that goes up and down (e.g. open connections), rendered as a gauge."""
        gauge = _declared(self._gauges, name)
        (gauge.labels(**labels) if labels else gauge).set(value)

    def forget_peer(self, peer: str) -> None:
        """A peer no longer pinned: its per-peer gauges go (its counters stay, as counters
        do)."""
        for name in PEER_GAUGES:
            try:
                self._gauges[name].remove(peer)
            except KeyError:
                pass  # never set for this peer

    def set_fault(self, name: str, detail: str) -> bool:
        """Record a fault by name (a code, e.g. ``store_unavailable``). True if it is new."""
        with self._lock:
            new = name not in self._faults
            self._faults[name] = detail
            self._fault.labels(fault=name).set(1)
            self._fault_count.set(len(self._faults))
            return new

    def clear_fault(self, name: str) -> bool:
        """True if the fault was there."""
        with self._lock:
            if self._faults.pop(name, None) is None:
                return False
            self._fault.remove(name)
            self._fault_count.set(len(self._faults))
            return True

    def faults(self) -> dict[str, str]:
        with self._lock:
            return dict(self._faults)

    def observe_ack_latency(self, seconds: float, n: int = 1) -> None:
        """``n`` items acknowledged ``seconds`` after they were sent (one observation each)."""
        self._ack_latency.observe(seconds, n)

    def render(self, gauges: Mapping[str, int], party: str) -> str:
        """The Prometheus text format: this registry and the store's ``gauges`` of this scrape,
        each sample labelled with ``party``."""
        families = [*self.registry.collect(), *_store_families(gauges)]
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Fixed([_with_party(f, party) for f in families]))
        return generate_latest(scrape).decode("utf-8")


def _declared(table: Mapping[str, M], name: str) -> M:
    try:
        return table[name]
    except KeyError:
        raise UndeclaredMetric(f"metric {name!r} is not declared in bridge/engine/metrics.py"
                               ) from None


class _AckLatency(Collector):
    """A summary (count and sum) that takes many observations of one value at once: an
    acknowledgement of 10,000 items is one call, not 10,000."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sum = 0.0
        self._count = 0

    def observe(self, seconds: float, n: int) -> None:
        with self._lock:
            self._sum += seconds * n
            self._count += n

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            count, total = self._count, self._sum
        yield SummaryMetricFamily(PREFIX + "ack_latency_seconds",
                                  "Seconds from sending an item to its acknowledgement.",
                                  count_value=count, sum_value=total)


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _store_families(gauges: Mapping[str, int]) -> Iterable[Metric]:
    for name, value in sorted(gauges.items()):
        if name not in STORE_GAUGES:
            raise UndeclaredMetric(f"store gauge {name!r} is not declared in "
                                   "bridge/engine/metrics.py")
        yield GaugeMetricFamily(PREFIX + name, STORE_GAUGES[name].doc, value=value)


def _with_party(family: Metric, party: str) -> Metric:
    """``family`` with the party on every sample; the ``_created`` samples left out (a
    daemon's start time is in its log, and they doubled every series)."""
    out = Metric(family.name, family.documentation, family.type, family.unit)
    for s in family.samples:
        if not s.name.endswith("_created"):
            out.add_sample(s.name, {"party": party, **s.labels}, s.value, s.timestamp,
                           s.exemplar)
    return out

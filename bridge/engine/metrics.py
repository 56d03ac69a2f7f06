"""In-memory counters, exposed with the store's gauges in Prometheus text format, and the
daemon's current faults (what makes health say "degraded"): kept here, in memory, because a
fault such as a full disk is exactly when nothing can be written to the store."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._gauges: dict[str, int] = {}
        self._ack_latency_sum = 0.0
        self._ack_latency_n = 0
        self._faults: dict[str, str] = {}

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def set_gauge(self, name: str, value: int) -> None:
        """A value that goes up and down (e.g. open connections), rendered as a gauge."""
        with self._lock:
            self._gauges[name] = value

    def set_fault(self, name: str, detail: str) -> bool:
        """Record a fault by name (a code, e.g. ``store_unavailable``). True if it is new."""
        with self._lock:
            new = name not in self._faults
            self._faults[name] = detail
            return new

    def clear_fault(self, name: str) -> bool:
        """True if the fault was there."""
        with self._lock:
            return self._faults.pop(name, None) is not None

    def faults(self) -> dict[str, str]:
        with self._lock:
            return dict(self._faults)

    def observe_ack_latency(self, seconds: float, n: int = 1) -> None:
        with self._lock:
            self._ack_latency_sum += seconds * n
            self._ack_latency_n += n

    def render(self, gauges: dict[str, int], party: str) -> str:
        lines = []
        with self._lock:
            counts = dict(self._counts)
            gauges = {**self._gauges, **gauges}
            lat_sum, lat_n = self._ack_latency_sum, self._ack_latency_n
            faults = sorted(self._faults)
        for name, value in sorted(gauges.items()):
            lines.append(f"# TYPE bridge_{name} gauge")
            lines.append(f'bridge_{name}{{party="{party}"}} {value}')
        for name, value in sorted(counts.items()):
            lines.append(f"# TYPE bridge_{name}_total counter")
            lines.append(f'bridge_{name}_total{{party="{party}"}} {value}')
        lines.append("# TYPE bridge_faults gauge")
        lines.append(f'bridge_faults{{party="{party}"}} {len(faults)}')
        lines.append("# TYPE bridge_fault gauge")
        for name in faults:
            lines.append(f'bridge_fault{{party="{party}",fault="{name}"}} 1')
        lines.append("# TYPE bridge_ack_latency_seconds summary")
        lines.append(f'bridge_ack_latency_seconds_sum{{party="{party}"}} {lat_sum:.6f}')
        lines.append(f'bridge_ack_latency_seconds_count{{party="{party}"}} {lat_n}')
        return "\n".join(lines) + "\n"

"""In-memory counters, exposed with the store's gauges in Prometheus text format."""

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

    def inc(self, name: str, by: int = 1) -> None:
        with self._lock:
            self._counts[name] += by

    def set_gauge(self, name: str, value: int) -> None:
        """A value that goes up and down (e.g. open connections), rendered as a gauge."""
        with self._lock:
            self._gauges[name] = value

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
        for name, value in sorted(gauges.items()):
            lines.append(f"# TYPE bridge_{name} gauge")
            lines.append(f'bridge_{name}{{party="{party}"}} {value}')
        for name, value in sorted(counts.items()):
            lines.append(f"# TYPE bridge_{name}_total counter")
            lines.append(f'bridge_{name}_total{{party="{party}"}} {value}')
        lines.append("# TYPE bridge_ack_latency_seconds summary")
        lines.append(f'bridge_ack_latency_seconds_sum{{party="{party}"}} {lat_sum:.6f}')
        lines.append(f'bridge_ack_latency_seconds_count{{party="{party}"}} {lat_n}')
        return "\n".join(lines) + "\n"

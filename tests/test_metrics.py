"""/metrics: a Prometheus registry per daemon, every metric declared once with a fixed name, the
party on every sample, and the names README and dashboards know."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bridge.engine.metrics import COUNTERS, GAUGES, STORE_GAUGES, Metrics, UndeclaredMetric
from bridge.store.sqlite.store import Store

ROOT = Path(__file__).resolve().parent.parent


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_exposition_parses_and_every_sample_names_the_party() -> None:
    metrics = Metrics()
    metrics.inc("peer_too_large")
    metrics.inc("delivery_failed", 3)
    metrics.inc("task_restarts", task="deliver-beta")
    metrics.set_gauge("peer_connections_open", 7)
    metrics.observe_ack_latency(0.5, n=4)
    samples = _samples(metrics.render({"queue_depth": 2}, "alpha"))
    assert all(dict(labels)["party"] == "alpha" for _, labels in samples)
    party = (("party", "alpha"),)
    assert samples[("bridge_peer_too_large_total", party)] == 1
    assert samples[("bridge_delivery_failed_total", party)] == 3
    assert samples[("bridge_task_restarts_total",
                    (("party", "alpha"), ("task", "deliver-beta")))] == 1
    assert samples[("bridge_peer_connections_open", party)] == 7
    assert samples[("bridge_queue_depth", party)] == 2
    assert samples[("bridge_ack_latency_seconds_count", party)] == 4
    assert samples[("bridge_ack_latency_seconds_sum", party)] == 2.0
    assert not any(name.endswith("_created") for name, _ in samples)


def test_faults_are_a_count_and_one_series_each_while_they_last() -> None:
    metrics = Metrics()
    assert metrics.set_fault("store_unavailable", "disk full")
    assert not metrics.set_fault("store_unavailable", "still full")
    metrics.set_fault("task_deadlines", "died")
    samples = _samples(metrics.render({}, "beta"))
    assert samples[("bridge_faults", (("party", "beta"),))] == 2
    assert samples[("bridge_fault", (("fault", "store_unavailable"), ("party", "beta")))] == 1
    assert metrics.clear_fault("store_unavailable") and not metrics.clear_fault("nothing")
    samples = _samples(metrics.render({}, "beta"))
    assert samples[("bridge_faults", (("party", "beta"),))] == 1
    assert ("bridge_fault", (("fault", "store_unavailable"), ("party", "beta"))) not in samples
    assert metrics.faults() == {"task_deadlines": "died"}


def test_each_daemon_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.inc("envelopes_accepted", 5)
    assert 'bridge_envelopes_accepted_total{party="b"} 0.0' in two.render({}, "b")


@pytest.mark.parametrize("call", [
    lambda m: m.inc("peer_tooo_large"),
    lambda m: m.set_gauge("queue_dept", 1),
    lambda m: m.render({"queue_dept": 1}, "alpha"),
])
def test_a_name_that_is_not_declared_is_refused(call) -> None:
    with pytest.raises(UndeclaredMetric, match="not declared"):
        call(Metrics())


def test_every_store_gauge_is_declared(tmp_path: Path) -> None:
    store = Store(tmp_path / "bridge.db")
    try:
        assert set(store.counters()) <= set(STORE_GAUGES)
        Metrics().render(store.counters(), "alpha")
    finally:
        store.close()


def test_every_metric_readme_names_is_declared() -> None:
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"`bridge_([a-z_]+?)(?:_total)?`", readme))
    named |= {f"delivery_{state}" for state in ("failed", "rewound", "unavailable")}
    named.discard("delivery_")
    declared = {*COUNTERS, *GAUGES, *STORE_GAUGES, "faults", "fault"}
    assert named and named <= declared, named - declared

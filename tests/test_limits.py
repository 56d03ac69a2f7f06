"""The pure limits (bridge/engine/limits.py) and their configuration ([limits] in bridge.toml)."""

from __future__ import annotations

import os
import tomllib

import pytest

from bridge.core import codec, envelope
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import UsageError
from bridge.engine.limits import Admission, RateLimiter, RefusalGate, claimed, claimed_sender
from bridge.engine.metrics import Metrics
from bridge.home.config import Config, Limits


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    rate = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [rate.allow("alpha") for _ in range(4)] == [True, True, True, False]
    assert rate.allow("beta")  # its own bucket
    clock.t += 0.5  # one token back
    assert [rate.allow("alpha") for _ in range(2)] == [True, False]
    clock.t += 100  # never more than the burst saved up
    assert [rate.allow("alpha") for _ in range(4)] == [True, True, True, False]
    assert rate.retry_after() == 1


def test_token_buckets_are_bounded_in_number() -> None:
    rate = RateLimiter(rate=1.0, burst=1, max_keys=10, clock=Clock())
    for n in range(100):
        rate.allow(f"address 10.0.0.{n}")
    assert len(rate._buckets) == 10


def test_refusal_gate_coalesces_identical_refusals_within_the_window() -> None:
    clock, metrics = Clock(), Metrics()
    gate = RefusalGate(per_minute=100, metrics=metrics, clock=clock)
    assert gate.admit(("x", "malformed")) == Admission(count=1)
    assert [gate.admit(("x", "malformed")) for _ in range(5)] == [None] * 5
    assert gate.admit(("y", "malformed")) == Admission(count=1)  # another key
    clock.t += 1.0
    # The next write of the key stands for itself and the five left out.
    assert gate.admit(("x", "malformed")) == Admission(count=6)
    assert 'bridge_refusals_coalesced_total{party="p"} 5.0' in metrics.render({}, "p")
    # A key without a window is written every time (the store coalesces it).
    assert [gate.admit("z", window=0.0) for _ in range(3)] == [Admission(count=1)] * 3


def test_refusal_gate_caps_writes_a_minute_and_counts_the_rest_against_their_keys() -> None:
    clock = Clock()
    gate = RefusalGate(per_minute=3, clock=clock)
    admitted = [gate.admit(n % 5, window=0.0) for n in range(10)]
    assert admitted[:3] == [Admission(count=1)] * 3 and admitted[3:] == [None] * 7
    clock.t += 60
    # Key 0 was left out once (n = 5), key 3 twice (n = 3 and 8): their next writes count them.
    later = gate.admit(0, window=0.0)
    assert later is not None and later.count == 2
    assert later.note.startswith("7 refusals over the cap")
    assert gate.admit(3, window=0.0) == Admission(count=3)


def test_refusal_gate_remembers_a_bounded_number_of_keys() -> None:
    clock = Clock()
    gate = RefusalGate(per_minute=10_000, max_keys=50, clock=clock)
    for n in range(1000):
        gate.admit(n)
    assert len(gate._recent) == 50


def test_claimed_sender_reads_the_header_of_a_canonical_envelope() -> None:
    alpha = PrivateIdentity.generate("alpha", created=1)
    beta = PrivateIdentity.generate("beta", created=1)
    for size in (0, 100, 70_000, 1 << 20):  # bin8, bin16 and bin32 ciphertexts
        env = envelope.seal(alpha, beta.public, message_id=os.urandom(16), seq=size + 1,
                            prev=bytes(32), sent_at=1_767_225_600_000, kind="chunk",
                            payload=b"x" * size)
        assert claimed_sender(env.data) == "alpha"
        assert claimed(env.data) == ("alpha", size + 1)
        assert claimed_sender(env.data[:-68]) == "alpha"  # the signature ("s", 64 bytes) unread
        assert claimed_sender(env.data[:40]) is None


@pytest.mark.parametrize("body", [b"", b"\x83", b"\x83\xa1c\xc6\xff\xff\xff\xff",
                                  b"\x83\xa1c\xc4\x01x\xa1h\xc4\x05\x81\xa4from", b"garbage",
                                  b"\x83\xa1c\xc4\x00\xa1h\xc4\x02\x90\x90"])
def test_claimed_sender_of_anything_else_is_none(body: bytes) -> None:
    assert claimed_sender(body) is None
    assert claimed(body) == (None, None)


@pytest.mark.parametrize(("header", "claim"), [
    ({"from": "alpha", "seq": True}, ("alpha", None)),  # a bool is no seq
    ({"from": "alpha", "seq": "7"}, ("alpha", None)),
    ({"from": 7, "seq": 7}, (None, 7)),
    ([1, 2], (None, None)),
])
def test_a_forged_header_claims_no_seq_or_sender_of_the_wrong_type(
        header: object, claim: tuple[str | None, int | None]) -> None:
    packed = codec.encode(header)
    body = b"\x83\xa1c\xc4\x00\xa1h\xc4" + bytes([len(packed)]) + packed
    assert claimed(body) == claim


def test_limits_round_trip_through_bridge_toml() -> None:
    limits = Limits(max_connections=8, requests_per_second=2.5, burst=5,
                    body_read_seconds=3.0, idle_seconds=4.0, max_header_bytes=2048,
                    max_headers=16, refusal_records_per_minute=60)
    config = Config(party="alpha", listen="127.0.0.1:7443", max_body_bytes=1234,
                    limits=limits)
    again = Config.from_toml(tomllib.loads(config.to_toml()), "bridge.toml")
    assert again == config


def test_max_body_bytes_of_an_older_file_is_still_read() -> None:
    old = tomllib.loads('[bridge]\nparty = "alpha"\nmax_body_bytes = 999\n')
    config = Config.from_toml(old, "bridge.toml")
    assert config.max_body_bytes == 999 and config.limits == Limits()


@pytest.mark.parametrize("text", ["max_conections = 3", "max_connections = 0",
                                  "requests_per_second = 0", "burst = -1",
                                  "body_read_seconds = -2", "max_body_bytes = 0",
                                  'idle_seconds = "soon"'])
def test_bad_limits_are_refused_with_the_file_named(text: str) -> None:
    data = tomllib.loads(f'[bridge]\nparty = "alpha"\n[limits]\n{text}\n')
    with pytest.raises(UsageError, match=r"bridge\.toml"):
        Config.from_toml(data, "bridge.toml")

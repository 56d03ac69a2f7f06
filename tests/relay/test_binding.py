"""The relay binding's names and checks (PROTOCOL.md, "Relay binding"): pure functions."""

from __future__ import annotations

import hashlib

import pytest

from bridge.core.errors import InputError, PeerError
from bridge.transports.relay import binding as b

BODY = b"\x82\xa1e\xc4\x03abc"
ENVELOPE_HASH = bytes(range(32))


def test_names_of_a_pair_put_the_recipient_first() -> None:
    assert b.subject("bravo", "alpha") == "bridge.v1.bravo.alpha"
    assert b.inbound_subjects("bravo") == "bridge.v1.bravo.>"
    assert b.stream_name("bravo") == "BRIDGE_bravo"
    assert b.consumer_name("bravo") == "bravo"
    assert b.inbox_prefix("bravo") == "_INBOX_bravo"


@pytest.mark.parametrize("name", ["", "Alpha", "a.b", "a*", ">", "a b", "a\tb", "-a",
                                  "a" * 64, "mediator-admin", "é"])
def test_a_name_that_is_no_party_or_no_subject_token_is_refused(name: str) -> None:
    with pytest.raises(InputError):
        b.party_token(name)
    with pytest.raises(InputError):
        b.subject(name, "alpha")


def test_msg_id_is_the_hex_sha256_of_the_body() -> None:
    assert b.msg_id(BODY) == hashlib.sha256(BODY).hexdigest()
    assert b.envelope_headers(BODY) == {"Nats-Msg-Id": hashlib.sha256(BODY).hexdigest(),
                                        "Bridge-Kind": "envelope"}


def test_answer_headers_carry_the_seq_and_envelope_hints() -> None:
    h = b.answer_headers(BODY, seq=7, envelope=ENVELOPE_HASH)
    assert h == {"Nats-Msg-Id": b.msg_id(BODY), "Bridge-Kind": "answer",
                 "Bridge-Envelope": ENVELOPE_HASH.hex(), "Bridge-Seq": "7"}
    assert "Bridge-Seq" not in b.answer_headers(BODY, seq=None, envelope=ENVELOPE_HASH)
    with pytest.raises(InputError):
        b.answer_headers(BODY, seq=0, envelope=ENVELOPE_HASH)
    with pytest.raises(InputError):
        b.answer_headers(BODY, seq=1, envelope=b"short")


def test_permissions_allow_publishing_only_toward_peers_as_oneself() -> None:
    perms = b.party_permissions("alpha", ["carol", "bravo", "bravo"])
    assert perms.publish == (
        "bridge.v1.bravo.alpha", "bridge.v1.carol.alpha",
        "$JS.API.CONSUMER.MSG.NEXT.BRIDGE_alpha.alpha", "$JS.API.CONSUMER.INFO.BRIDGE_alpha.alpha",
        "$JS.API.STREAM.INFO.BRIDGE_alpha", "$JS.ACK.BRIDGE_alpha.alpha.>")
    assert perms.subscribe == ("_INBOX_alpha.>",)
    assert not any("*" in s or s.endswith("bridge.>") for s in perms.publish)
    with pytest.raises(InputError):
        b.party_permissions("alpha", ["alpha"])


def parse(subject: str = "bridge.v1.bravo.alpha", headers: dict[str, str] | None = None,
          body: bytes = BODY, limit: int = 1024) -> b.RelayMessage:
    return b.parse_message(subject, b.envelope_headers(body) if headers is None else headers,
                           body, recipient="bravo", max_body_bytes=limit)


def test_an_envelope_and_an_answer_parse_with_their_routing() -> None:
    msg = parse()
    assert (msg.recipient, msg.sender, msg.kind, msg.seq) == ("bravo", "alpha",
                                                              b.Kind.ENVELOPE, None)
    ans = parse(headers={**b.answer_headers(BODY, seq=3, envelope=ENVELOPE_HASH),
                         "Nats-Expected-Stream": "BRIDGE_bravo"})
    assert (ans.kind, ans.seq, ans.envelope) == (b.Kind.ANSWER, 3, ENVELOPE_HASH)


@pytest.mark.parametrize(("subject", "reason"), [
    ("bridge.v1.carol.alpha", "bad_relay_subject"),   # another party's stream
    ("bridge.v1.bravo", "bad_relay_subject"),
    ("bridge.v1.bravo.alpha.x", "bad_relay_subject"),
    ("bridge.v2.bravo.alpha", "bad_relay_subject"),
    ("bridge.v1.bravo.Alpha", "bad_relay_subject"),
    ("bridge.v1.bravo.mediator-admin", "bad_relay_subject"),
])
def test_a_message_on_a_subject_of_another_shape_is_refused(subject: str, reason: str) -> None:
    with pytest.raises(PeerError) as err:
        parse(subject=subject)
    assert err.value.reason == reason


GOOD_ANSWER = b.answer_headers(BODY, seq=3, envelope=ENVELOPE_HASH)


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "bad_relay_header"),
    ({"Bridge-Kind": "envelope"}, "bad_relay_header"),
    ({"Nats-Msg-Id": "0" * 64, "Bridge-Kind": "envelope"}, "bad_msg_id"),
    ({"Nats-Msg-Id": b.msg_id(BODY)}, "bad_relay_header"),
    ({"Nats-Msg-Id": b.msg_id(BODY), "Bridge-Kind": "receipt"}, "bad_relay_kind"),
    ({"Nats-Msg-Id": b.msg_id(BODY), "Bridge-Kind": "ENVELOPE"}, "bad_relay_kind"),
    ({**b.envelope_headers(BODY), "Bridge-Seq": "1"}, "bad_relay_header"),
    ({**b.envelope_headers(BODY), "Bridge-Extra": "1"}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Envelope": "AB" * 32}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Envelope": "ab" * 31}, "bad_relay_header"),
    ({k: v for k, v in GOOD_ANSWER.items() if k != "Bridge-Envelope"}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Seq": "0"}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Seq": "07"}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Seq": "+7"}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Seq": str(2**63)}, "bad_relay_header"),
    ({**GOOD_ANSWER, "Bridge-Seq": "٣"}, "bad_relay_header"),
])
def test_missing_unknown_or_lying_headers_are_refused_with_a_reason(
        headers: dict[str, str], reason: str) -> None:
    with pytest.raises(PeerError) as err:
        parse(headers=headers)
    assert err.value.reason == reason


def test_a_body_over_the_limit_is_refused_before_its_headers_are_read() -> None:
    with pytest.raises(PeerError) as err:
        parse(headers={}, body=b"x" * 1025)
    assert err.value.reason == "too_large"
    assert parse(body=b"x" * 1024).kind is b.Kind.ENVELOPE

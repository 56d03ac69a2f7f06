"""Fuzzing the parsers that take bytes from outside: only BridgeError may ever escape.

Bounded budget (about 200 examples per property, no deadline) so the file runs in seconds. Two
kinds of input: arbitrary bytes, and valid encodings mutated by flipping, inserting and
deleting bytes (which reach much deeper into the parsers than random bytes do). A mutated
envelope or signed document must never authenticate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from conftest import make_identity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.core import codec, merkle
from bridge.core.crypto.identity import Keyring, PrivateIdentity, PublicIdentity
from bridge.core.documents import (
    AckItem,
    DocumentHeader,
    Item,
    SignedDocument,
    SignedHeader,
    decode_ack_entry,
    decode_declared_entry,
    sign_ack,
    sign_document,
)
from bridge.core.envelope import ZERO_HASH, EnvelopeHeader, open_envelope, seal
from bridge.core.errors import BridgeError

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ALPHA = make_identity("alpha")
BETA = make_identity("beta")
KEYRING = Keyring.of([ALPHA.public, BETA.public])
CREATED = 1_767_225_600_000

ENVELOPE = seal(ALPHA, BETA.public, message_id=b"\x01" * 16, seq=1, prev=ZERO_HASH,
                sent_at=CREATED, kind="document", payload=b"synthetic payload " * 8).data
DOCUMENT = sign_document(
    ALPHA, doc_type="manifest", doc_id="M-1", recipient="beta", created=CREATED,
    meta={"batch": 1}, salt_key=b"\x00" * 32,
    items=[Item(id=f"P-{n}", data={"surname": f"Surname{n}", "rank": "private",
                                   "born": f"2000-01-{n + 1:02d}"}) for n in range(3)])
ACK_DOC = sign_ack(BETA, answers=DOCUMENT.signed, ack_id="A-1", created=CREATED + 1,
                   items=[AckItem(id="P-0", status="RECEIVED")], salt_key=b"\x01" * 32,
                   declared_leaf_hashes={"P-0": merkle.leaf_hash(DOCUMENT.leaves[0])})
DOCUMENT_BYTES = codec.encode(DOCUMENT.to_map())
IDENTITY_TEXT = ALPHA.public.dumps().encode()


def only_bridge_errors(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a BridgeError is a fine answer, anything else fails the test."""
    try:
        return fn()
    except BridgeError:
        return None


# ---------------------------------------------------------------- strategies


canonical_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=codec.INT_MIN, max_value=codec.INT_MAX)
    | st.text(max_size=40) | st.binary(max_size=40),
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with 1 to 4 random byte flips, insertions or deletions."""
    data = bytearray(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "set"]))
        pos = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if op == "insert" or not data:
            data.insert(pos, draw(st.integers(min_value=0, max_value=255)))
        elif op == "delete":
            del data[pos]
        elif op == "flip":
            data[pos] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        else:
            data[pos] = draw(st.integers(min_value=0, max_value=255))
    return bytes(data)


def mutations_of(original: bytes) -> st.SearchStrategy[bytes]:
    return mutated(original).filter(lambda b: b != original)


# ---------------------------------------------------------------- codec


@FUZZ
@given(st.binary(max_size=512))
def test_decode_arbitrary_bytes(data: bytes) -> None:
    only_bridge_errors(lambda: codec.decode(data))
    only_bridge_errors(lambda: codec.decode(data, codec.SMALL_LIMITS))


@FUZZ
@given(canonical_values.map(codec.encode).flatmap(mutated))
def test_decode_mutated_encodings(data: bytes) -> None:
    value = only_bridge_errors(lambda: codec.decode(data, codec.Limits(max_depth=64)))
    if value is not None:
        # Whatever decodes is canonical: it re-encodes to exactly the bytes given.
        assert codec.encode(value) == data


@FUZZ
@given(canonical_values)
def test_encode_decode_round_trip(value: Any) -> None:
    data = codec.encode(value)
    assert codec.decode(data, codec.Limits(max_depth=64)) == value
    assert codec.encode(codec.decode(data, codec.Limits(max_depth=64))) == data


@FUZZ
@given(st.dictionaries(st.text(max_size=8), st.integers(min_value=-5, max_value=5), max_size=8),
       st.randoms())
def test_encoding_ignores_map_insertion_order(value: dict[str, int], rnd: Any) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert codec.encode(dict(items)) == codec.encode(value)


# ---------------------------------------------------------------- envelopes


@FUZZ
@given(st.binary(max_size=512))
def test_open_envelope_arbitrary_bytes(data: bytes) -> None:
    assert only_bridge_errors(lambda: open_envelope(BETA, KEYRING, data)) is None


@FUZZ
@given(mutations_of(ENVELOPE))
def test_open_envelope_mutated(data: bytes) -> None:
    """No mutation of a genuine envelope opens."""
    assert only_bridge_errors(lambda: open_envelope(BETA, KEYRING, data)) is None


@FUZZ
@given(st.binary(max_size=256) | mutations_of(codec.decode(ENVELOPE)["h"]))
def test_envelope_header_parse(data: bytes) -> None:
    only_bridge_errors(lambda: EnvelopeHeader.from_bytes(data))


# ---------------------------------------------------------------- documents


@FUZZ
@given(st.binary(max_size=512) | mutations_of(DOCUMENT.signed.data)
       | mutations_of(ACK_DOC.signed.data))
def test_document_header_from_bytes(data: bytes) -> None:
    only_bridge_errors(lambda: DocumentHeader.from_bytes(data))


@FUZZ
@given(canonical_values
       | st.fixed_dictionaries({"header": st.binary(max_size=64), "sig": st.binary(max_size=64)})
       | st.fixed_dictionaries({"header": mutations_of(DOCUMENT.signed.data),
                                "sig": st.just(DOCUMENT.signed.signature)}))
def test_signed_header_parse(value: Any) -> None:
    signed = only_bridge_errors(lambda: SignedHeader.parse(value))
    if signed is not None:
        # A header that changed after signing never passes its signature check.
        assert only_bridge_errors(lambda: signed.check_signature(KEYRING)) is None


@FUZZ
@given(st.binary(max_size=512))
def test_signed_header_parse_decoded_bytes(data: bytes) -> None:
    only_bridge_errors(lambda: SignedHeader.parse(codec.decode(data)))


@FUZZ
@given(mutations_of(DOCUMENT_BYTES))
def test_mutated_signed_document_never_checks(data: bytes) -> None:
    def parse_and_check() -> Any:
        doc = SignedDocument.parse(codec.decode(data))
        return doc.check(KEYRING)

    assert only_bridge_errors(parse_and_check) is None


@FUZZ
@given(st.binary(max_size=256) | mutations_of(DOCUMENT.leaves[1])
       | mutations_of(ACK_DOC.leaves[0]), st.integers(min_value=0, max_value=2))
def test_entry_decoders(data: bytes, index: int) -> None:
    only_bridge_errors(lambda: decode_declared_entry(data, index))
    only_bridge_errors(lambda: decode_ack_entry(data, index))


# ---------------------------------------------------------------- identity files


@FUZZ
@given(st.binary(max_size=512) | st.text(max_size=256).map(str.encode))
def test_public_identity_loads_arbitrary(data: bytes) -> None:
    only_bridge_errors(lambda: PublicIdentity.loads(data))


@FUZZ
@given(mutations_of(IDENTITY_TEXT))
def test_public_identity_loads_mutated(data: bytes) -> None:
    loaded = only_bridge_errors(lambda: PublicIdentity.loads(data))
    # JSON whitespace or the case of the readable fingerprint may change; the identity may not.
    assert loaded is None or loaded == ALPHA.public


@FUZZ
@given(st.binary(max_size=200))
def test_public_identity_from_statement_bytes(statement: bytes) -> None:
    only_bridge_errors(lambda: PublicIdentity.from_statement(statement, b"\x00" * 64))


@FUZZ
@given(st.dictionaries(st.sampled_from(["bridge_identity", "party", "fingerprint", "statement",
                                        "signature"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=20)
                       | st.lists(st.integers(), max_size=3), max_size=5))
def test_public_identity_loads_odd_json(doc: dict[str, Any]) -> None:
    only_bridge_errors(lambda: PublicIdentity.loads(json.dumps(doc)))


@FUZZ
@given(mutations_of(ALPHA.dumps().encode()))
def test_private_identity_loads_mutated(data: bytes) -> None:
    loaded = only_bridge_errors(lambda: PrivateIdentity.loads(data))
    assert loaded is None or loaded.public == ALPHA.public

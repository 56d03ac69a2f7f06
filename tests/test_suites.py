"""bridge.core.crypto.suites: the one file that names algorithms.

Ed25519 moved from libsodium (PyNaCl) to OpenSSL (cryptography). The two do not accept the same
signatures: OpenSSL accepts a small-order public key or R, with which a signer makes one
signature that verifies for many messages. The cases below are built with the curve arithmetic
of RFC 8032 §5.1 written out, and each must be judged as libsodium judges it (PROTOCOL.md §3).
A second suite in the table shows that adding one is a table entry: identities, envelopes and
their checks follow the suite id, never a name in identity or envelope.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator

import nacl.exceptions
import nacl.signing
import pytest
from conftest import CREATED, fixed_random
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from bridge.core import codec
from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    TAG_IDENTITY,
    Keyring,
    PrivateIdentity,
    PublicIdentity,
    signed_message,
)
from bridge.core.envelope import EnvelopeHeader, open_envelope, seal
from bridge.core.errors import PeerError, VerificationError

# ---------------------------------------------------------------- RFC 8032 §5.1 arithmetic

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
IDENTITY: Point = (0, 1, 1, 0)


def add(a: Point, b: Point) -> Point:
    e1 = (a[1] - a[0]) * (b[1] - b[0]) % P
    e2 = (a[1] + a[0]) * (b[1] + b[0]) % P
    c, d = 2 * a[3] * b[3] * D % P, 2 * a[2] * b[2] % P
    e, f, g, h = e2 - e1, d - c, d + c, e2 + e1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(k: int, point: Point) -> Point:
    out = IDENTITY
    while k:
        if k & 1:
            out = add(out, point)
        point, k = add(point, point), k >> 1
    return out


def x_of(y: int, sign: int) -> int | None:
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * pow(2, (P - 1) // 4, P) % P
    if (x * x - x2) % P:
        return None
    return P - x if x and (x & 1) != sign else x


def point(y: int, sign: int = 0) -> Point | None:
    x = x_of(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


def encode(pt: Point) -> bytes:
    zinv = pow(pt[2], P - 2, P)
    x, y = pt[0] * zinv % P, pt[1] * zinv % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


BASE = point(4 * pow(5, P - 2, P) % P)
assert BASE is not None


def order_8_point() -> Point:
    for y in range(2, 100):
        pt = point(y)
        if pt is not None and encode(mul(4, mul(L, pt))) != encode(IDENTITY):
            return mul(L, pt)
    raise AssertionError("no point of order 8 found")


T8 = order_8_point()
MESSAGE = b"bridge/v1/envelope\x00a body"


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def sig(r: bytes, s: int) -> bytes:
    return r + s.to_bytes(32, "little")


def signed_by_scalar(a: int, public: bytes, nonce_point: Point, r: int,
                     message: bytes = MESSAGE) -> bytes:
    """(R, r + k·a): valid cofactorless when ``public`` encodes [a]B and R is [r]B."""
    rb = encode(nonce_point)
    return sig(rb, (r + challenge(rb, public, message) * a) % L)


def forged_for_small_key(small: Point) -> tuple[bytes, bytes]:
    """A signature that verifies cofactorless under a key of small order, with no secret at
    all: R = [s]B - [k]A, searching s until k mod 8 agrees with the R chosen."""
    public = encode(small)
    for s in range(1, 400):
        for j in range(8):
            r = encode(add(mul(s, BASE), mul((8 - j) % 8, small)))
            if challenge(r, public, MESSAGE) % 8 == j:
                return public, sig(r, s)
    raise AssertionError("no forgery found")


def edge_cases() -> Iterator[tuple[str, bytes, bytes, bytes]]:
    """(name, public key, signature, message)."""
    for name, public, signature in single_message_cases():
        yield name, public, signature, MESSAGE
    a, r = 0x1234567 * 8 + 5, 987654321
    mixed = encode(add(mul(a, BASE), T8))
    for m in range(16):  # a mixed-order key: valid cofactorless only when 8 divides k
        message = MESSAGE + bytes([m])
        yield (f"key_mixed_order_{m}", mixed,
               signed_by_scalar(a, mixed, mul(r, BASE), r, message), message)


def single_message_cases() -> Iterator[tuple[str, bytes, bytes]]:
    a, r = 0x1234567 * 8 + 5, 987654321
    key = encode(mul(a, BASE))
    honest = signed_by_scalar(a, key, mul(r, BASE), r)
    yield "honest", key, honest
    yield "s_plus_l", key, sig(honest[:32], int.from_bytes(honest[32:], "little") + L)
    for k in (1, 2, 4, 3):  # orders 8, 4, 2, 8
        yield f"key_of_small_order_{k}", *forged_for_small_key(mul(k, T8))
    yield "key_identity", encode(IDENTITY), sig(encode(mul(42, BASE)), 42)
    negative_zero = encode(IDENTITY)[:31] + b"\x80"
    yield "key_identity_negative_zero", negative_zero, sig(encode(mul(5, BASE)), 5)
    for k in (0, 1, 2, 4):
        small = encode(mul(k, T8)) if k else encode(IDENTITY)
        yield f"r_of_small_order_{k}", key, sig(small, challenge(small, key, MESSAGE) * a % L)
    yield "r_mixed_order", key, signed_by_scalar(a, key, add(mul(r, BASE), T8), r)
    non_canonical_identity = (P + 1).to_bytes(32, "little")
    yield "key_non_canonical", non_canonical_identity, sig(encode(mul(7, BASE)), 7)
    yield "r_non_canonical", key, sig(non_canonical_identity,
                                      challenge(non_canonical_identity, key, MESSAGE) * a % L)


CASES = list(edge_cases())


def libsodium_accepts(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def openssl_accepts(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@pytest.mark.parametrize(("name", "public", "signature", "message"), CASES,
                         ids=[c[0] for c in CASES])
def test_ed25519_judges_each_edge_case_as_libsodium_does(name: str, public: bytes,
                                                         signature: bytes,
                                                         message: bytes) -> None:
    assert suites.SUITE_1.verify(public, message, signature) == libsodium_accepts(
        public, signature, message)


def test_the_edge_cases_are_those_where_openssl_alone_differs() -> None:
    """Without the suite's own checks, OpenSSL would accept these: the cases test something.
    (Should a later OpenSSL refuse them too, this fails and says the checks became redundant.)"""
    by_libsodium = {c[0] for c in CASES if libsodium_accepts(*c[1:])}
    by_openssl = {c[0] for c in CASES if openssl_accepts(*c[1:])}
    assert by_openssl - by_libsodium == {
        "key_identity", "key_identity_negative_zero", "key_non_canonical",
        *(f"key_of_small_order_{k}" for k in (1, 2, 3, 4)), "r_of_small_order_0"}
    assert "honest" in by_libsodium & by_openssl
    # Both are cofactorless: a mixed-order key's signature stands only when 8 divides k.
    mixed = {c[0] for c in CASES if c[0].startswith("key_mixed_order_")}
    assert by_libsodium & mixed == by_openssl & mixed
    assert set() < by_libsodium & mixed < mixed


def test_ed25519_signatures_are_libsodiums_byte_for_byte() -> None:
    for n in range(50):
        seed, message = os.urandom(32), os.urandom(n)
        theirs = nacl.signing.SigningKey(seed)
        ours = suites.SUITE_1.signing_key(seed)
        assert ours.public == bytes(theirs.verify_key)
        assert ours.sign(message) == theirs.sign(message).signature
        assert ours.seed() == seed


def test_malformed_sizes_are_refused_not_raised() -> None:
    key = suites.SUITE_1.signing_key(bytes(32))
    good = key.sign(MESSAGE)
    assert suites.SUITE_1.verify(key.public, MESSAGE, good)
    for public, signature in [(key.public[:31], good), (key.public, good[:63]),
                              (key.public + b"\x00", good), (b"", b"")]:
        assert not suites.SUITE_1.verify(public, MESSAGE, signature)


# ---------------------------------------------------------------- a second suite


OTHER_ID = (0x0020, 0x0001, 0x7FFF)


@pytest.fixture
def second_suite(monkeypatch: pytest.MonkeyPatch) -> suites.Suite:
    """Suite 1's functions under another id: what adding a suite takes."""
    other = dataclasses.replace(suites.SUITE_1, id=OTHER_ID)
    monkeypatch.setitem(suites.SUITES, OTHER_ID, other)
    return other


def test_a_suite_added_to_the_table_carries_identities_and_envelopes(
        second_suite: suites.Suite) -> None:
    alpha = PrivateIdentity.generate("alpha", created=CREATED, random_bytes=fixed_random("a2"),
                                     suite=second_suite)
    beta = PrivateIdentity.generate("beta", created=CREATED, random_bytes=fixed_random("b2"),
                                    suite=second_suite)
    assert beta.public.suite == OTHER_ID
    assert PublicIdentity.loads(beta.public.dumps()) == beta.public
    envelope = seal(alpha, beta.public, message_id=bytes(16), seq=1, prev=bytes(32),
                    sent_at=CREATED, kind="document", payload=b"payload")
    assert envelope.header.suite == OTHER_ID
    opened = open_envelope(beta, Keyring.of([alpha.public]), envelope.data)
    assert opened.payload == b"payload"


def test_an_envelope_in_another_suite_than_the_recipients_key_is_refused(
        second_suite: suites.Suite, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    """The recipient's pinned identity decides the suite: a header naming another, even a
    known one, is refused before any decryption."""
    other_beta = dataclasses.replace(beta.public, suite=OTHER_ID)
    envelope = seal(alpha, other_beta, message_id=bytes(16), seq=1, prev=bytes(32),
                    sent_at=CREATED, kind="document", payload=b"payload")
    with pytest.raises(PeerError) as err:
        open_envelope(beta, Keyring.of([alpha.public]), envelope.data)
    assert err.value.reason == "suite"


def test_a_suite_not_in_the_table_is_refused() -> None:
    with pytest.raises(PeerError) as err:
        EnvelopeHeader(sender="alpha", sender_key=bytes(32), recipient="beta",
                       recipient_key=bytes(32), message_id=bytes(16), seq=1, prev=bytes(32),
                       sent_at=CREATED, kind="document", suite=OTHER_ID)
    assert err.value.reason == "suite"


def test_an_identity_with_a_small_order_key_is_refused(alpha: PrivateIdentity) -> None:
    """Under the identity point every (R = [s]B, s) verifies for every message: a party with
    such a key could disown anything it signed. Its self-signature is refused (PROTOCOL §3)."""
    value = codec.decode(alpha.public.statement)
    value["sign_key"] = encode(IDENTITY)
    statement = codec.encode(value)
    anything = sig(encode(mul(42, BASE)), 42)
    assert openssl_accepts(encode(IDENTITY), anything, signed_message(TAG_IDENTITY, statement))
    with pytest.raises(VerificationError) as err:
        PublicIdentity.from_statement(statement, anything)
    assert err.value.reason == "bad_signature"

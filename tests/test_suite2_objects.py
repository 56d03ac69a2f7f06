"""Every signed object in suite 2, and suite negotiation without downgrade (PROTOCOL.md §3.1,
§5.2, §5.3): each object is signed in its signer's suite and verifies only with both halves;
each envelope is sealed in its recipient's suite, whatever the sender's."""

from __future__ import annotations

import nacl.signing
import pytest
from conftest import CREATED, fixed_random, make_identity

from bridge.core import answers, codec, envelope, keylife, merkle
from bridge.core.crypto import suites
from bridge.core.crypto.identity import (
    TAG_DOCUMENT,
    TAG_ENVELOPE,
    Keyring,
    PrivateIdentity,
    signed_message,
)
from bridge.core.documents import (
    AckItem,
    Item,
    SignedDocument,
    SignedHeader,
    sign_ack,
    sign_document,
)
from bridge.core.errors import OpaqueCryptoError, PeerError, VerificationError

ED = suites.ED25519_SIGNATURE_SIZE
SALT = bytes(32)


def suite_2(party: str, seed: str | None = None) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=CREATED,
                                    random_bytes=fixed_random((seed or party) + "/suite-2"),
                                    suite=suites.SUITE_2)


def seed_of(ident: PrivateIdentity) -> bytes:
    secrets = codec.decode(ident._secret_bytes())
    assert isinstance(secrets, dict)
    seed: bytes = secrets["sign_seed"]
    return seed


@pytest.fixture(scope="module")
def alpha2() -> PrivateIdentity:
    return suite_2("alpha")


@pytest.fixture(scope="module")
def beta2() -> PrivateIdentity:
    return suite_2("beta")


def seal(sender: PrivateIdentity, recipient: PrivateIdentity, payload: bytes = b"payload",
         ) -> envelope.Envelope:
    return envelope.seal(sender, recipient.public, message_id=bytes(16), seq=1, prev=bytes(32),
                         sent_at=CREATED, kind="document", payload=payload)


@pytest.mark.parametrize("pair", ["2->2", "1->2", "2->1", "1->1"])
def test_each_direction_is_sealed_in_the_recipients_suite(pair: str, alpha2: PrivateIdentity,
                                                          beta2: PrivateIdentity) -> None:
    """A suite-1 peer and a suite-2 party interoperate both ways: the envelope's HPKE is the
    recipient's, its signature the sender's."""
    one = {"alpha": make_identity("alpha"), "beta": make_identity("beta")}
    two = {"alpha": alpha2, "beta": beta2}
    sender = (one if pair[0] == "1" else two)["alpha"]
    recipient = (one if pair[-1] == "1" else two)["beta"]
    sealed = seal(sender, recipient)
    assert sealed.header.suite == recipient.public.suite
    _, _, ciphertext, signature = envelope.parse(sealed.data)
    enc = 1120 if pair[-1] == "2" else 32
    assert len(ciphertext) == enc + len(b"payload") + 16
    assert len(signature) == suites.SUITES[sender.public.suite].signature_size
    opened = envelope.open_envelope(recipient, Keyring.of([sender.public]), sealed.data)
    assert opened.payload == b"payload"


def forged_ed25519_only(sealed: envelope.Envelope, sender: PrivateIdentity) -> bytes:
    """The envelope with its signature replaced by an Ed25519 one alone, made with the
    sender's Ed25519 seed: what a forger who broke Ed25519 (and not ML-DSA) can produce."""
    _, header_bytes, ciphertext, _ = envelope.parse(sealed.data)
    body = envelope.signed_body(header_bytes, suites.sha256(ciphertext))
    ed = nacl.signing.SigningKey(seed_of(sender)[:32]).sign(signed_message(TAG_ENVELOPE, body))
    return envelope.wire_bytes(header_bytes, ciphertext, ed.signature)


def test_suite_1_envelope_claiming_a_suite_2_pinned_sender_is_refused(
        alpha2: PrivateIdentity) -> None:
    """The downgrade: a suite-1 recipient (whose envelopes are suite 1), a sender pinned with
    a suite-2 identity, and an envelope signed the suite-1 way by that sender's Ed25519 key."""
    beta1 = make_identity("beta")
    forged = forged_ed25519_only(seal(alpha2, beta1), alpha2)
    with pytest.raises(PeerError) as err:
        envelope.open_envelope(beta1, Keyring.of([alpha2.public]), forged)
    assert err.value.reason == "suite_downgrade"


def test_ed25519_only_envelope_to_a_suite_2_recipient_is_refused(
        alpha2: PrivateIdentity, beta2: PrivateIdentity) -> None:
    forged = forged_ed25519_only(seal(alpha2, beta2), alpha2)
    with pytest.raises(PeerError) as err:
        envelope.open_envelope(beta2, Keyring.of([alpha2.public]), forged)
    assert err.value.reason == "suite_downgrade"


def test_mldsa_only_envelope_signature_is_refused(alpha2: PrivateIdentity,
                                                  beta2: PrivateIdentity) -> None:
    sealed = seal(alpha2, beta2)
    _, header_bytes, ciphertext, signature = envelope.parse(sealed.data)
    for forged in (signature[ED:], bytes(ED) + signature[ED:]):
        data = envelope.wire_bytes(header_bytes, ciphertext, forged)
        with pytest.raises(OpaqueCryptoError):
            envelope.open_envelope(beta2, Keyring.of([alpha2.public]), data)


def test_signature_halves_swapped_between_two_envelopes_are_refused(
        alpha2: PrivateIdentity, beta2: PrivateIdentity) -> None:
    one, two = seal(alpha2, beta2, b"one"), seal(alpha2, beta2, b"two")
    _, h1, c1, s1 = envelope.parse(one.data)
    _, _, _, s2 = envelope.parse(two.data)
    for mixed in (s1[:ED] + s2[ED:], s2[:ED] + s1[ED:]):
        with pytest.raises(OpaqueCryptoError):
            envelope.open_envelope(beta2, Keyring.of([alpha2.public]),
                                   envelope.wire_bytes(h1, c1, mixed))


def test_suite_1_sealed_envelope_to_a_suite_2_recipient_is_refused(
        alpha2: PrivateIdentity, beta2: PrivateIdentity) -> None:
    """Sealed to a suite-1 copy of beta's name and key id: the header's suite is not beta's."""
    beta1 = make_identity("beta")
    fake = type(beta2.public)(**{**beta2.public.__dict__, "suite": beta1.public.suite,
                                 "enc_key": beta1.public.enc_key})
    sealed = envelope.seal(alpha2, fake, message_id=bytes(16), seq=1, prev=bytes(32),
                           sent_at=CREATED, kind="document", payload=b"payload")
    with pytest.raises(PeerError) as err:
        envelope.open_envelope(beta2, Keyring.of([alpha2.public]), sealed.data)
    assert err.value.reason == "suite"


def manifest_document(issuer: PrivateIdentity, recipient: str = "beta") -> SignedDocument:
    return sign_document(issuer, doc_type="manifest", doc_id="MAN-1", recipient=recipient,
                         created=CREATED, meta={}, salt_key=SALT,
                         items=[Item(id="REM-1", data={"kind": "remains_package"})])


def manifest(issuer: PrivateIdentity, recipient: str = "beta") -> SignedHeader:
    return manifest_document(issuer, recipient).signed


def test_documents_and_acknowledgements_sign_in_the_signers_suite(
        alpha2: PrivateIdentity, beta2: PrivateIdentity) -> None:
    beta1 = make_identity("beta")
    keys = Keyring.of([alpha2.public, beta1.public])
    doc = manifest_document(alpha2)
    man = doc.signed
    assert len(man.signature) == suites.SUITE_2.signature_size
    assert man.check_signature(keys) == alpha2.public
    hashes = {e.item_id: merkle.leaf_hash(doc.leaves[e.index]) for e in doc.declared_entries()}
    ack = sign_ack(beta1, answers=man, ack_id="ACK-1", created=CREATED + 1,
                   items=[AckItem(id="REM-1", status="RECEIVED")],
                   declared_leaf_hashes=hashes, salt_key=SALT)
    assert len(ack.signed.signature) == 64 and ack.signed.check_signature(keys) == beta1.public


@pytest.mark.parametrize("forgery", ["ed25519-only", "mldsa-only", "halves-swapped"])
def test_document_signature_forgeries_are_refused(forgery: str,
                                                  alpha2: PrivateIdentity) -> None:
    man, other = manifest(alpha2), manifest(alpha2, recipient="gamma")
    ed = nacl.signing.SigningKey(seed_of(alpha2)[:32]).sign(
        signed_message(TAG_DOCUMENT, man.data)).signature
    signature = {"ed25519-only": ed, "mldsa-only": man.signature[ED:],
                 "halves-swapped": man.signature[:ED] + other.signature[ED:]}[forgery]
    forged = SignedHeader.parse({"header": man.data, "sig": signature})
    with pytest.raises(VerificationError) as err:
        forged.check_signature(Keyring.of([alpha2.public]))
    assert err.value.reason == "bad_signature"


def test_transport_receipts_sign_in_the_signers_suite(alpha2: PrivateIdentity) -> None:
    answer = answers.TransportAnswer(
        sender="beta", recipient="alpha", by_key=alpha2.key_id, envelope=bytes(32),
        message_id=bytes(16), seq=1, at=CREATED, result="accepted", reason=None,
        expected_seq=None)
    data = answers.sign_answer(alpha2, answer)
    assert answers.parse_answer(data, alpha2.public).seq == 1
    outer = codec.decode(data)
    assert isinstance(outer, dict)
    ed_only = codec.encode({"r": outer["r"], "s": outer["s"][:ED]})
    with pytest.raises(PeerError) as err:
        answers.parse_answer(ed_only, alpha2.public)
    assert err.value.reason == "bad_receipt"


def test_rotation_from_suite_1_to_2_is_signed_by_the_old_key_and_both_new_keys() -> None:
    old = make_identity("beta")
    new = suite_2("beta", "beta-next")
    data = keylife.make_rotation(old, new, at=CREATED + 10)
    outer = codec.decode(data)
    assert isinstance(outer, dict)
    assert (len(outer["old_sig"]), len(outer["new_sig"])) == (64, suites.SUITE_2.signature_size)
    assert keylife.parse_rotation(data, old.public).new == new.public
    ed_only = codec.encode({**outer, "new_sig": outer["new_sig"][:ED]})
    with pytest.raises(VerificationError) as err:
        keylife.parse_rotation(ed_only, old.public)
    assert err.value.reason == "bad_signature"


def test_rotation_down_from_suite_2_to_1_is_refused(beta2: PrivateIdentity) -> None:
    """Whoever holds a suite-2 key (or forged it) cannot move its peers back to suite 1."""
    down = make_identity("beta", "beta-down")
    data = keylife.make_rotation(beta2, down, at=CREATED + 10)
    with pytest.raises(VerificationError) as err:
        keylife.parse_rotation(data, beta2.public)
    assert err.value.reason == "suite_downgrade"


def test_revocation_by_a_suite_2_key_needs_both_halves(beta2: PrivateIdentity) -> None:
    data = keylife.make_revocation(beta2, since=CREATED + 5, at=CREATED + 10, reason="stolen")
    assert keylife.parse_revocation(data, beta2.public).since == CREATED + 5
    outer = codec.decode(data)
    assert isinstance(outer, dict)
    mldsa_only = codec.encode({"r": outer["r"], "sig": outer["sig"][ED:]})
    with pytest.raises(VerificationError) as err:
        keylife.parse_revocation(mldsa_only, beta2.public)
    assert err.value.reason == "bad_signature"

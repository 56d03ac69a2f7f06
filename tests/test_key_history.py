"""Keys over time, as a verifier sees them: rotations bound what a retired key may sign,
revocations what a revoked one may, whatever the order the statements are given in.

Each attack is named after what it tries (PROTOCOL.md §4.5, §4.6).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bridge.cli.verify import verify
from bridge.core import keylife, merkle
from bridge.core.crypto import suites
from bridge.core.crypto.identity import Keyring, PrivateIdentity
from bridge.core.documents import AckItem, Item, SignedDocument, sign_ack, sign_document
from bridge.core.errors import UsageError, VerificationError
from bridge.core.receipts import build_document_receipt, build_item_receipt, check_receipt

T0 = 1_772_438_400_000  # 2026-03-02T08:00:00Z
HOUR = 3_600_000
DAY = 24 * HOUR


def ident(party: str, seed: int, created: int = T0) -> PrivateIdentity:
    return PrivateIdentity.generate(party, created=created,
                                    random_bytes=lambda n: bytes([seed]) * n)


ALPHA = ident("alpha", 1)
BETA_OLD = ident("beta", 2)
BETA_NEW = ident("beta", 3, created=T0 + 10 * DAY)
MALLORY = ident("beta", 4, created=T0 + 11 * DAY)
ROTATION = keylife.make_rotation(BETA_OLD, BETA_NEW, at=T0 + 10 * DAY)


def _salt(name: str) -> bytes:
    return hashlib.sha256(b"test-salt/" + name.encode()).digest()


def _manifest() -> SignedDocument:
    return sign_document(ALPHA, doc_type="manifest", doc_id="M-1", recipient="beta",
                         created=T0 + HOUR, meta={}, items=[Item(id="P-1", data={})],
                         salt_key=_salt("M-1"))


def _ack(signer: PrivateIdentity, doc: SignedDocument, ack_id: str, created: int,
         status: str) -> SignedDocument:
    hashes = {e.item_id: merkle.leaf_hash(doc.leaves[e.index]) for e in doc.declared_entries()}
    return sign_ack(signer, answers=doc.signed, ack_id=ack_id, created=created,
                    items=[AckItem(id="P-1", status=status, reason="forged" if
                                   status == "DISPUTED" else None)],
                    declared_leaf_hashes=hashes, salt_key=_salt(ack_id))


def _forged_receipt() -> bytes:
    """beta received M-1 (under its old key), then rotated; whoever kept the retired private
    key signs a DISPUTED acknowledgement dated a month later."""
    doc = _manifest()
    genuine = _ack(BETA_OLD, doc, "A-1", T0 + 2 * HOUR, "RECEIVED")
    forged = _ack(BETA_OLD, doc, "A-FORGED", T0 + 40 * DAY, "DISPUTED")
    return build_item_receipt(doc, "P-1", [genuine, forged])


def _write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return str(path)


def _verify(*args: str) -> Result:
    return CliRunner().invoke(verify, list(args))


# ---------------------------------------------------------------- finding 8: retired keys


def test_retired_key_forges_an_acknowledgement_a_month_later_and_verify_refuses_it(
        tmp_path: Path) -> None:
    receipt = _write(tmp_path, "P-1.receipt", _forged_receipt())
    alpha = _write(tmp_path, "alpha.pub", ALPHA.public.dumps())
    old = _write(tmp_path, "beta-old.pub", BETA_OLD.public.dumps())
    new = _write(tmp_path, "beta.pub", BETA_NEW.public.dumps())
    history = _write(tmp_path, "beta.history", keylife.History(
        identities=(BETA_NEW.public, BETA_OLD.public), statements=(ROTATION,)).dumps())

    # The old advice (old and new identity files, no history): refused as a usage error,
    # since the verifier cannot know when the old key stopped.
    blind = _verify(receipt, "--keys", alpha, "--keys", old, "--keys", new)
    assert blind.exit_code == 2 and "history" in blind.output
    # With the history: the forged acknowledgement is signed after the key's retirement.
    for keys in (["--keys", alpha, "--keys", new, "--keys", history],
                 ["--keys", history, "--keys", old, "--keys", alpha, "--keys", new]):
        out = _verify(receipt, *keys)
        assert out.exit_code == 1, out.output
        assert "FAIL" in out.output and "[retired_key]" in out.output


def test_retired_key_signatures_up_to_the_rotation_still_verify() -> None:
    doc = _manifest()
    receipt = build_item_receipt(doc, "P-1", [_ack(BETA_OLD, doc, "A-1", T0 + 2 * HOUR,
                                                   "RECEIVED")])
    keys = keylife.build_keyring([ALPHA.public, BETA_NEW.public], [BETA_OLD.public],
                                 [ROTATION])
    result = check_receipt(receipt, keys)
    assert result.ok and result.status == "RECEIVED" and not result.caveats


def test_key_in_a_history_file_without_a_rotation_onto_a_given_key_is_not_trusted() -> None:
    # Mallory's history file names her key as beta's and a rotation from it onto the old
    # key: no given (pinned) key vouches for hers, so nothing she signs verifies.
    fake = keylife.make_rotation(MALLORY, BETA_OLD, at=T0 + 12 * DAY)
    keys = keylife.build_keyring([ALPHA.public, BETA_NEW.public], [MALLORY.public], [fake])
    assert keys.get(MALLORY.key_id) is None


def test_backdated_second_rotation_of_a_retired_key_only_retires_it_earlier() -> None:
    # A thief with the retired key signs another rotation of it, dated earlier, onto her own
    # key: her key is not given, so it gains nothing; the retirement only moves earlier (as
    # a revocation by the thief could: whoever holds a key can end trust in it, not add any).
    thief = keylife.make_rotation(BETA_OLD, MALLORY, at=T0 + 5 * DAY)
    for statements in ([ROTATION, thief], [thief, ROTATION]):
        keys = keylife.build_keyring([BETA_NEW.public], [BETA_OLD.public, MALLORY.public],
                                     statements)
        assert keys.get(MALLORY.key_id) is None
        assert keys.retired[BETA_OLD.key_id] == T0 + 5 * DAY  # the earliest retirement wins


def test_a_rotation_retires_a_given_key_even_when_its_successor_is_not_given() -> None:
    # The mediator holds only the old identity file and the history: the forgery dated after
    # the rotation still fails, and the rotation adds no trust in the new key.
    keys = keylife.build_keyring([ALPHA.public, BETA_OLD.public], [BETA_NEW.public],
                                 [ROTATION])
    assert keys.get(BETA_NEW.key_id) is None
    assert check_receipt(_forged_receipt(), keys).reason == "retired_key"


def test_two_keys_of_one_party_without_a_statement_between_them_are_refused() -> None:
    with pytest.raises(UsageError, match="history"):
        keylife.build_keyring([ALPHA.public, BETA_OLD.public, BETA_NEW.public])
    keylife.build_keyring([ALPHA.public, BETA_OLD.public, BETA_NEW.public], (), [ROTATION])


def test_history_file_round_trip_and_garbage_refused() -> None:
    history = keylife.History(identities=(BETA_NEW.public, BETA_OLD.public),
                              statements=(ROTATION,))
    again = keylife.History.loads(history.dumps().encode(), source="h")
    assert again == history and keylife.is_history_file(history.dumps().encode())
    for junk in (b"{}", b'{"bridge_key_history": true, "identities": [], "statements": []}',
                 b'{"bridge_key_history": 1, "identities": [], "statements": ["!"]}', b"\xff"):
        with pytest.raises(VerificationError):
            keylife.History.loads(junk, source="junk")


# ---------------------------------------------------------------- finding 9: revocations


def _revocation(key: PrivateIdentity, since: int, at: int) -> bytes:
    return keylife.make_revocation(key, since=since, at=at, reason="stolen")


def test_verifier_keeps_the_earliest_since_whatever_the_order_of_revocations(
        tmp_path: Path) -> None:
    doc = _manifest()
    receipt = _write(tmp_path, "r", build_item_receipt(
        doc, "P-1", [_ack(BETA_OLD, doc, "A-1", T0 + 3 * DAY, "RECEIVED")]))
    thiefs = _write(tmp_path, "thief.revocation", _revocation(BETA_OLD, T0 + 9 * DAY,
                                                              T0 + 9 * DAY))
    owners = _write(tmp_path, "owner.revocation", _revocation(BETA_OLD, T0 + 2 * DAY,
                                                              T0 + 9 * DAY + 1))
    base = ["--keys", _write(tmp_path, "alpha.pub", ALPHA.public.dumps()),
            "--keys", _write(tmp_path, "beta.pub", BETA_OLD.public.dumps())]
    for order in ([thiefs, owners], [owners, thiefs]):
        out = _verify(receipt, *base, *(a for f in order for a in ("--keys", f)))
        assert out.exit_code == 1 and "[revoked_key]" in out.output, out.output


def test_thiefs_revocation_since_2099_is_refused() -> None:
    with pytest.raises(VerificationError) as info:
        _revocation(BETA_OLD, 4_070_908_800_000, T0 + DAY)  # 2099-01-01, made in 2026
    assert info.value.reason == "bad_since"
    forged = _forged_since(BETA_OLD, since=4_070_908_800_000, at=T0 + DAY)
    with pytest.raises(VerificationError) as info:
        keylife.parse_revocation(forged, BETA_OLD.public)
    assert info.value.reason == "bad_since"


def test_revocation_since_before_the_key_existed_or_past_9999_is_refused() -> None:
    for since, at in ((T0 - 1, T0 + DAY), (2**62, 2**62)):
        forged = _forged_since(BETA_OLD, since=since, at=at)
        with pytest.raises(VerificationError):
            keylife.parse_revocation(forged, BETA_OLD.public)


def _forged_since(key: PrivateIdentity, *, since: int, at: int) -> bytes:
    """A revocation made without ``make_revocation``'s check, as a hostile peer would."""
    from bridge.core import codec
    from bridge.core.crypto.identity import TAG_KEY_REVOCATION

    r = codec.encode({"v": 1, "type": keylife.REVOCATION, "party": key.party, "key": key.key_id,
                      "since": since, "at": at, "reason": "x"})
    return codec.encode({"r": r, "sig": key.sign(TAG_KEY_REVOCATION, r)})


def test_signature_dated_before_a_later_revocation_is_reported_not_silently_ok() -> None:
    doc = _manifest()
    early = _ack(BETA_OLD, doc, "A-1", T0 + 2 * HOUR, "RECEIVED")
    keys = Keyring.of([ALPHA.public, BETA_OLD.public],
                      {ALPHA.key_id: T0 + DAY, BETA_OLD.key_id: T0 + DAY})
    for data in (build_item_receipt(doc, "P-1", [early]), build_document_receipt(doc, [early])):
        result = check_receipt(data, keys)
        assert result.ok
        assert len(result.caveats) == 2
        assert "acknowledged it at" in result.caveats[0]  # beta's ack predates alpha's since
        assert "proves nothing" in result.caveats[1]  # beta's own key: only its own claim
        assert "CAUTION" in result.summary()
        assert result.to_json()["caveats"] == list(result.caveats)
    late = _ack(BETA_NEW, doc, "A-2", T0 + 2 * DAY, "RECEIVED")
    result = check_receipt(build_item_receipt(doc, "P-1", [late]),
                           Keyring.of([ALPHA.public, BETA_NEW.public], {ALPHA.key_id: T0 + DAY}))
    assert result.ok and result.caveats and "not acknowledged before" in result.caveats[0]


def test_keyring_void_reason() -> None:
    keys = Keyring.of([BETA_OLD.public], {BETA_OLD.key_id: T0 + 5}, {BETA_OLD.key_id: T0 + 3})
    assert keys.void_reason(BETA_OLD.key_id, T0 + 3) is None
    assert keys.void_reason(BETA_OLD.key_id, T0 + 4) == "retired_key"
    assert keys.void_reason(BETA_OLD.key_id, T0 + 5) == "revoked_key"
    assert keys.revoked_later(BETA_OLD.key_id, T0) == T0 + 5


# ---------------------------------------------------------------- finding 6: statement floods


def test_rotation_flood_costs_the_same_per_statement_however_long_the_history(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each accepted rotation used to re-read and re-verify every stored history file. Count
    the identity statements verified per rotation: the same for the first and the 40th."""
    from bridge.core import envelope
    from bridge.core.crypto.identity import PublicIdentity
    from bridge.daemon.pair import make_pair
    from bridge.engine.exchange import Exchange
    from bridge.home.keystore import KeyStore
    from bridge.store.sqlite.store import Store

    alpha, beta = make_pair(tmp_path)
    clock = [alpha.home.public_identity().created]
    store = Store(beta.home.db_path)
    exchange = Exchange(store=store, identity=beta.home.identity(),
                        peers={"alpha": beta.home.peer_identity("alpha")},
                        config=beta.home.config(), clock=lambda: clock[0],
                        keystore=KeyStore(beta.home))
    calls = [0]
    real = PublicIdentity.from_statement.__func__  # type: ignore[attr-defined]

    def counting(cls: type[PublicIdentity], statement: bytes, signature: bytes
                 ) -> PublicIdentity:
        calls[0] += 1
        return real(cls, statement, signature)  # type: ignore[no-any-return]

    monkeypatch.setattr(PublicIdentity, "from_statement", classmethod(counting))
    key, prev, per_rotation = alpha.home.identity(), bytes(32), []
    for n in range(1, 41):
        clock[0] += 4 * HOUR  # six a day: within the daily bound
        new = PrivateIdentity.generate("alpha", created=clock[0],
                                       random_bytes=lambda k, n=n: bytes([n]) * k,
                                       suite=suites.SUITES[key.public.suite])  # never down
        env = envelope.seal(key, beta.home.public_identity(), message_id=bytes([n]) * 16,
                            seq=n, prev=prev, sent_at=clock[0], kind="key-rotation",
                            payload=keylife.make_rotation(key, new, at=clock[0]))
        before = calls[0]
        answer = exchange.receive_envelope(env.data)
        per_rotation.append(calls[0] - before)
        assert answer.outcome == "accepted", answer
        key, prev = new, env.digest
    assert exchange.peers["alpha"].key_id == key.key_id
    assert per_rotation[-1] == per_rotation[0] <= 2, per_rotation
    store.close()


# ---------------------------------------------------------------- finding 3: files after commit


def test_crash_between_the_commit_and_the_key_files_is_finished_at_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is the record of a peer's key change; the files follow it. A stop right
    after the commit (here: the file write fails) is finished by the next start."""
    from bridge.core import envelope
    from bridge.daemon.pair import make_pair
    from bridge.engine.exchange import Exchange
    from bridge.home.keystore import KeyStore
    from bridge.store.sqlite.store import Store

    alpha, beta = make_pair(tmp_path)
    now = alpha.home.public_identity().created + HOUR
    store = Store(beta.home.db_path)

    def start() -> Exchange:
        return Exchange(store=store, identity=beta.home.identity(),
                        peers={"alpha": beta.home.peer_identity("alpha")},
                        config=beta.home.config(), clock=lambda: now,
                        keystore=KeyStore(beta.home))

    exchange = start()
    key = alpha.home.identity()
    new = PrivateIdentity.generate("alpha", created=now, suite=suites.SUITES[key.public.suite])
    env = envelope.seal(key, beta.home.public_identity(), message_id=bytes(16), seq=1,
                        prev=bytes(32), sent_at=now, kind="key-rotation",
                        payload=keylife.make_rotation(key, new, at=now))

    def crash(*args: object) -> None:
        raise OSError("the power went")

    with monkeypatch.context() as m:
        m.setattr(KeyStore, "rotate_peer", crash)
        with pytest.raises(OSError):
            exchange.receive_envelope(env.data)
    assert beta.home.peer_identity("alpha").key_id == key.key_id  # files: not yet
    start()
    assert beta.home.peer_identity("alpha").key_id == new.key_id
    assert beta.home.config().peers["alpha"].fingerprint == new.public.fingerprint
    [retired] = KeyStore(beta.home).peer_key_history("alpha").statements
    assert keylife.statement_type(retired) == keylife.ROTATION
    store.close()

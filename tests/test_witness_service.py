"""The witness's HTTP service over real HTTP on 127.0.0.1 with its real SQLite file: every answer
of tlog-witness §add-checkpoint with its body and media type, a body over the bound, the state
kept across a reopen, and the log of every refusal with the peer's text kept as data."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bridge.core import audit_tree, logtree
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.merkle import MerkleTree
from bridge.core.notes import note, witness_wire
from bridge.core.notes.cosignature import cosignature_verifier
from bridge.witness.home import WitnessHome, cosigner, key_name
from bridge.witness.service import make_app

ALPHA = PrivateIdentity.generate("alpha", created=1_700_000_000_000)
STRANGER = PrivateIdentity.generate("alpha", created=1_700_000_000_001)


def _tree(n: int, tag: bytes = b"") -> MerkleTree:
    return MerkleTree.from_leaves([tag + bytes([i]) for i in range(n)])


def _body(old: int, n: int, *, tag: bytes = b"", me: PrivateIdentity = ALPHA) -> bytes:
    t = _tree(n, tag)
    proof = logtree.consistency_proof(t.node, old, n) if old else []
    return witness_wire.format_request(old, proof, audit_tree.sign_log_checkpoint(me, n, t.root))


@pytest.fixture
async def witness(tmp_path: Path) -> AsyncIterator[tuple[str, WitnessHome]]:
    home = WitnessHome(tmp_path / "w")
    home.init("mediator")
    with contextlib.closing(home.state()) as s:
        s.add_origin(ALPHA.public, 0)
    state = home.state()
    runner = web.AppRunner(make_app(state, cosigner(home.identity())))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/add-checkpoint", home
    await runner.cleanup()
    state.close()


async def _post(url: str, body: bytes) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as s, s.post(url, data=body) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


async def test_cosigns_then_refuses_a_rollback_with_409_and_its_size(witness) -> None:  # type: ignore[no-untyped-def]
    url, home = witness
    status, ctype, body = await _post(url, _body(0, 5))
    assert status == 200 and ctype.startswith("text/plain")
    wid = home.public_identity()
    _, good = note.open_note(audit_tree.sign_log_checkpoint(ALPHA, 5, _tree(5).root) + body,
                                  [cosignature_verifier(key_name(wid), wid.note_key)])
    assert len(good) == 1
    assert (await _post(url, _body(5, 9)))[0] == 200
    status, ctype, body = await _post(url, _body(0, 3))  # a store restored from a copy
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"9\n")


async def test_every_refusal_has_its_code_and_is_logged(witness) -> None:  # type: ignore[no-untyped-def]
    url, home = witness
    assert (await _post(url, _body(0, 4)))[0] == 200
    assert (await _post(url, _body(4, 8, tag=b"fork")))[0] == 422  # not an extension
    assert (await _post(url, _body(0, 4, me=STRANGER)))[0] == 404  # another key's origin
    forged = _body(0, 4).replace(b"\n4\n", b"\n5\n")
    assert (await _post(url, forged))[0] == 403
    assert (await _post(url, b"old 1\nnot base64!\n\nx"))[0] == 400
    assert (await _post(url, b"old 9\n\n" + _body(0, 4).split(b"\n\n", 1)[1]))[0] == 400
    assert (await _post(url, b"x" * (witness_wire.MAX_BODY + 10)))[0] == 413
    with contextlib.closing(home.state()) as s:
        rows = s.requests()
    assert [r.status for r in rows] == [200, 422, 404, 403, 400, 400]
    assert rows[1].reason == "bad_proof" and rows[2].reason == "unknown_origin"


async def test_state_survives_a_reopen_of_the_file(witness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url, home = witness
    assert (await _post(url, _body(0, 6)))[0] == 200
    with contextlib.closing(home.state()) as s:  # what a restarted witness reads
        assert [(o, sz) for o, _, sz in s.origins()] == [
            (audit_tree.identity_origin(ALPHA.public), 6)]
    assert (await _post(url, _body(0, 6)))[0] == 409


def test_witness_home_refuses_to_be_initialised_twice(tmp_path: Path) -> None:
    from bridge.core.errors import UsageError

    home = WitnessHome(tmp_path / "w")
    home.init("mediator")
    assert (home.key_path("mediator").stat().st_mode & 0o777) == 0o600
    with pytest.raises(UsageError):
        home.init("mediator")

"""The offline carrier between two real daemons that never reach each other: peers pinned
``--via carry`` (no delivery loop), a manifest and a roster and every acknowledgement moved
only by carrier files (export, import, receipts back, import), per-item receipts that verify
with ``bridge verify``; a file imported twice; a damaged file (cut short, one flipped byte in
its middle envelope); a file replayed to the wrong party."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli.main import main
from bridge.core import carry
from bridge.daemon.pair import Node, make_pair
from bridge.home.folder import Home

from .conftest import FAST, db, person, wait_for


@dataclasses.dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def bridge(*args: str | Path) -> Ran:
    """The real command line, in this process (a process start per command would be most of
    these tests' time); it talks to the daemons over their sockets as it always does."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def carried_by_hand(home: Home) -> None:
    """Every peer of ``home`` pinned ``via = "carry"``, with no URL: nothing is sent over the
    network, whatever the pair's helper writes into the URL later."""
    cfg = home.config()
    peers = {n: dataclasses.replace(p, via="carry", url=None, tls_fingerprint=None)
             for n, p in cfg.peers.items()}
    home.write_config(dataclasses.replace(cfg, peers=peers))


@pytest.fixture
def pair(make_nodes: Callable[..., tuple[Node, Node]]) -> tuple[Node, Node]:
    alpha, beta = make_nodes()
    for node in (alpha, beta):
        carried_by_hand(node.home)
        node.start()
    return alpha, beta


def export(node: Node, to: str, path: Path) -> Ran:
    out = bridge("--home", node.home.path, "carry", "export", "--to", to, "-o", path)
    assert out.returncode == 0, out.stderr
    return out


def import_(node: Node, path: Path, receipts: Path | None = None
            ) -> tuple[int, dict[str, object], str]:
    args: list[str | Path] = ["--home", node.home.path, "carry", "import", path, "--json"]
    if receipts is not None:
        args += ["-o", receipts]
    out = bridge(*args)
    return out.returncode, json.loads(out.stdout) if out.stdout else {}, out.stderr


def shuttle(src: Node, dst: Node, folder: Path, name: str) -> dict[str, object]:
    """One round trip by hand: src's envelopes to dst, dst's receipts back to src."""
    envelopes, receipts = folder / f"{name}.carry", folder / f"{name}.receipts"
    export(src, dst.party, envelopes)
    code, report, err = import_(dst, envelopes, receipts)
    assert code == 0, (report, err)
    code, back, err = import_(src, receipts)
    assert code == 0, (back, err)
    assert back["new"] == report["new"]
    return report


def results(report: dict[str, object]) -> list[tuple[object, object, object]]:
    records = report["records"]
    assert isinstance(records, list)
    return [(r["seq"], r["result"], r["reason"]) for r in records]


def test_roster_and_manifest_and_every_acknowledgement_travel_only_by_carrier_file(
        pair: tuple[Node, Node], tmp_path: Path) -> None:
    alpha, beta = pair
    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(1, 6)],
                                 id="M-CARRY-1")
    beta.client.submit_document("roster", "alpha", [person(n) for n in range(10, 14)],
                                id="R-CARRY-1")
    there = shuttle(alpha, beta, tmp_path, "a1")
    for written in ("a1.carry", "a1.receipts"):  # what is carried is private from birth
        assert (tmp_path / written).stat().st_mode & 0o777 == 0o600
    # Accepted, not a duplicate: nothing had reached beta before the file did.
    assert there["new"] == 1 and results(there) == [(1, "accepted", None)]
    back = shuttle(beta, alpha, tmp_path, "b1")
    assert back["new"] == 1
    assert alpha.client.document("M-CARRY-1")["state"] == "delivered"
    assert beta.client.document("R-CARRY-1")["state"] == "delivered"

    beta.client.acknowledge("M-CARRY-1", all="RECEIVED")
    alpha.client.acknowledge("R-CARRY-1", all="RECEIVED")
    shuttle(beta, alpha, tmp_path, "b2")
    shuttle(alpha, beta, tmp_path, "a2")
    for node, doc, n in ((alpha, "M-CARRY-1", 5), (beta, "R-CARRY-1", 4)):
        detail = node.client.document(doc, direction="out")
        assert detail["items"]["acknowledged"] == n, detail
        assert [a["state"] for a in detail["acks"]] == ["received"]
    for node, peer in ((alpha, "beta"), (beta, "alpha")):
        health = node.client.health()["peers"][peer]
        assert health["queued"] == 0  # every answer came back
        assert health["reachable"] is None  # no delivery loop ever tried the peer
        nothing = export(node, peer, tmp_path / f"{node.party}-empty.carry")
        assert "Nothing to carry" in nothing.stdout
        assert not (tmp_path / f"{node.party}-empty.carry").exists()

    keys = [tmp_path / "alpha.pub", tmp_path / "beta.pub"]
    shutil.copy(alpha.home.public_key_path("alpha"), keys[0])
    shutil.copy(beta.home.public_key_path("beta"), keys[1])
    for node, doc, item in ((alpha, "M-CARRY-1", "P-00003"), (beta, "R-CARRY-1", "P-00011")):
        receipt = tmp_path / f"{doc}-{item}.receipt"
        receipt.write_bytes(node.client.receipt(doc, item=item))
        verified = bridge("verify", receipt, "--keys", keys[0], "--keys", keys[1])
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("OK:")


def test_a_file_imported_twice_changes_nothing_and_says_so(
        pair: tuple[Node, Node], tmp_path: Path) -> None:
    alpha, beta = pair
    alpha.client.submit_document("manifest", "beta", [person(n) for n in range(1, 4)],
                                 id="M-TWICE-1")
    envelopes = tmp_path / "a.carry"
    export(alpha, "beta", envelopes)
    code, first, _ = import_(beta, envelopes, tmp_path / "r1")
    assert code == 0 and first["new"] == 1
    with db(beta) as conn:
        before = conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
    again = bridge("--home", beta.home.path, "carry", "import", envelopes, "-o", tmp_path / "r2")
    assert again.returncode == 0, again.stderr
    assert "Nothing changed" in again.stdout and "taken before" in again.stdout
    with db(beta) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == before
    # Either receipts file marks the envelope delivered; the second import of answers is a
    # no-op as well.
    code, back, _ = import_(alpha, tmp_path / "r2")
    assert code == 0 and back["new"] == 1
    code, back, _ = import_(alpha, tmp_path / "r1")
    assert code == 0 and back["new"] == 0 and results(back) == [(1, "already", None)]
    assert alpha.client.document("M-TWICE-1")["state"] == "delivered"


def _three_envelopes(alpha: Node, folder: Path) -> bytes:
    for n in range(3):
        alpha.client.submit_document("manifest", "beta", [person(10 * n + 1)],
                                     id=f"M-DMG-{n}")
    path = folder / "three.carry"
    export(alpha, "beta", path)
    return path.read_bytes()


def _record_offsets(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record's body in the file."""
    header_len = int.from_bytes(data[len(carry.MAGIC) + 2:len(carry.MAGIC) + 4], "big")
    pos = len(carry.MAGIC) + 4 + header_len
    out = []
    while data[pos] == carry.TAG_RECORD:
        length = int.from_bytes(data[pos + 41:pos + 45], "big")
        out.append((pos + 45, pos + 45 + length))
        pos += 45 + length
    return out


def test_a_damaged_file_applies_what_precedes_the_damage_and_a_fresh_export_completes_it(
        pair: tuple[Node, Node], tmp_path: Path) -> None:
    alpha, beta = pair
    data = _three_envelopes(alpha, tmp_path)
    bodies = _record_offsets(data)
    assert len(bodies) == 3
    # One flipped byte in the middle envelope: the first is applied, the second refused as
    # damaged (nothing of it applied), the third waits behind the gap.
    flipped = bytearray(data)
    middle = (bodies[1][0] + bodies[1][1]) // 2
    flipped[middle] ^= 0x01
    (tmp_path / "flipped.carry").write_bytes(bytes(flipped))
    code, report, _ = import_(beta, tmp_path / "flipped.carry", tmp_path / "flipped.receipts")
    assert code == 1
    assert results(report) == [(1, "accepted", None), (2, "not_read", "record_damaged"),
                               (3, "out_of_sequence", "gap")]
    assert report["problem"] == {"reason": "file_digest_mismatch", "detail": report[
        "problem"]["detail"]}  # type: ignore[index]
    assert [d["id"] for d in beta.client.documents(direction="in")] == ["M-DMG-0"]
    with db(beta) as conn:  # the damaged record is among the refusals, as the HTTP layer's are
        kept = conn.execute("SELECT reason, source FROM refusals ORDER BY rowid").fetchall()
    assert ("record_damaged", "carrier file from alpha") in kept
    # Cut short inside the third envelope: the first two taken, the third refused.
    (tmp_path / "cut.carry").write_bytes(data[:bodies[2][0] + 10])
    code, report, _ = import_(beta, tmp_path / "cut.carry", tmp_path / "cut.receipts")
    assert code == 1
    assert results(report) == [(1, "duplicate", None), (2, "accepted", None)]
    assert report["problem"]["reason"] == "truncated"  # type: ignore[index]
    out = bridge("--home", alpha.home.path, "carry", "import", tmp_path / "cut.receipts")
    assert out.returncode == 0, out.stderr
    # What is left is exported again, and that completes the exchange.
    assert alpha.client.health()["peers"]["beta"]["queued"] == 1
    report = shuttle(alpha, beta, tmp_path, "again")
    assert results(report) == [(3, "accepted", None)]
    assert sorted(d["id"] for d in beta.client.documents(direction="in")) == [
        "M-DMG-0", "M-DMG-1", "M-DMG-2"]
    assert all(alpha.client.document(f"M-DMG-{n}")["state"] == "delivered" for n in range(3))


def test_a_file_for_another_party_or_from_an_unpinned_one_is_refused_whole(
        pair: tuple[Node, Node], tmp_path: Path) -> None:
    alpha, beta = pair
    carol, _dave = make_pair(tmp_path / "other", names=("carol", "dave"), delivery=FAST)
    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-WRONG-1")
    envelopes = tmp_path / "for-beta.carry"
    export(alpha, "beta", envelopes)
    # alpha importing its own file: it is not for alpha.
    out = bridge("--home", alpha.home.path, "carry", "import", envelopes, "-o", tmp_path / "r")
    assert out.returncode == 1
    assert "the file is for beta, not for alpha" in out.stderr
    assert not (tmp_path / "r").exists()
    # A party that pins neither: for another party, from a sender it does not know.
    carol.pin(beta)  # carol knows beta; beta does not know carol
    carried_by_hand(carol.home)
    carol.start()
    try:
        code, _, err = import_(carol, envelopes, tmp_path / "r")
        assert code == 1 and "not for carol" in err
        carol.client.submit_document("manifest", "beta", [person(2)], id="M-CAROL-1")
        export(carol, "beta", tmp_path / "from-carol.carry")
    finally:
        carol.stop()
    code, _, err = import_(beta, tmp_path / "from-carol.carry", tmp_path / "r")
    assert code == 1 and "the file is from carol, who is not a pinned peer" in err
    assert not (tmp_path / "r").exists()
    assert beta.client.documents(direction="in") == []


def test_peer_text_in_a_carrier_report_is_escaped(pair: tuple[Node, Node],
                                                  tmp_path: Path) -> None:
    """A file whose header names a party no one pins: the refusal quotes the name, escaped
    (a party name is checked on decoding, so the file is refused before any name is shown
    raw); a file that is no carrier file at all is refused by its first bytes."""
    _alpha, beta = pair
    junk = tmp_path / "junk.carry"
    junk.write_bytes(b"\x1b[31mnot a carrier file\x1b[0m\n")
    out = bridge("--home", beta.home.path, "carry", "import", junk, "-o", tmp_path / "r")
    assert out.returncode == 1
    assert "not a Bridge carrier file" in out.stderr
    assert "\x1b" not in out.stdout + out.stderr


def test_a_peer_switched_to_carry_on_reload_is_no_longer_delivered_to(
        make_nodes: Callable[..., tuple[Node, Node]], tmp_path: Path) -> None:
    alpha, beta = make_nodes()
    alpha.start()
    alpha.client.submit_document("manifest", "beta", [person(1)], id="M-SWITCH-1")
    wait_for(lambda: alpha.client.health()["peers"]["beta"]["reachable"] is False,
             what="alpha: beta unreachable (not running)")
    carried_by_hand(alpha.home)
    alpha.client.reload_peers()
    # The delivery loop is gone (it alone says whether a peer is reachable) ...
    assert alpha.client.health()["peers"]["beta"]["reachable"] is None
    beta.start()
    # ... so the envelope reaches beta only in the file: accepted there, not a duplicate.
    report = shuttle(alpha, beta, tmp_path, "switched")
    assert results(report) == [(1, "accepted", None)]
    assert alpha.client.document("M-SWITCH-1")["state"] == "delivered"

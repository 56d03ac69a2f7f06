"""A receiver whose store is restored from an older copy, and the peer's checkpoints
(PROTOCOL.md §13.7, SECURITY.md "Backups and repair"): the restored side holds an older
checkpoint of the peer's log than the peer believes it accepted. Its next answer is a gap, the
peer resends what the backup lost (the same bytes, checkpoint envelopes among them), and each
resent checkpoint is checked again by its consistency proof from the one before: the restored
side catches up on proofs alone, nothing taken on trust; a peer whose log really forked while
it was away is still refused as a split view, with the alarm."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, open_witnessed_pair, person, wire

from bridge.core import peer_log
from bridge.core.crypto.identity import PrivateIdentity
from bridge.engine.kinds import KIND_CHECKPOINT

T = 1_772_463_700


@pytest.fixture
def h(tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity,
      mediator: PrivateIdentity) -> Iterator[Harness]:
    with open_witnessed_pair(tmp_path, alpha, beta, mediator) as harness:
        yield harness


def _send(h: Harness, doc_id: str) -> None:
    wire.submit(h.alpha.engine, "manifest", "beta", [person(1), person(2)], doc_id=doc_id)
    h.courier.settle()


def _checkpoints(h: Harness) -> list[str]:
    return [s for k, s in wire.outbox_kinds(h.alpha.engine, "beta") if k == KIND_CHECKPOINT]


def _restore_beta(h: Harness, copy: Path, mediator: PrivateIdentity) -> None:
    h.beta.close()
    wire.restore(h.beta.home, copy)
    h.beta.restart()
    wire.pin_witness_key(h.beta.engine, mediator.public)


def _beta_restored_behind_alpha(h: Harness, mediator: PrivateIdentity, tmp_path: Path
                                ) -> tuple[int, int]:
    """Beta backed up holding alpha's checkpoint of size ``first``, then accepting one of
    size ``second``, then restored: it holds ``first`` and alpha believes ``second``. (Beta
    sends nothing after the backup, as ``bridge restore --confirm`` requires.)"""
    _send(h, "M-1")
    first = wire.witness_cosigns(h.alpha.engine, mediator, T)
    h.courier.settle()
    copy = tmp_path / "beta-backup.db"
    wire.backup(h.beta.engine, copy)
    h.clock.advance(seconds=5)
    _send(h, "M-2")
    second = wire.witness_cosigns(h.alpha.engine, mediator, T + 1)
    h.courier.settle()
    assert [n for n, _ in wire.peer_checkpoints(h.beta.engine, "alpha")] == [first, second]
    h.clock.advance(seconds=5)
    _restore_beta(h, copy, mediator)
    assert [n for n, _ in wire.peer_checkpoints(h.beta.engine, "alpha")] == [first]
    return first, second


def test_restored_receiver_catches_up_on_the_resent_proofs_and_later_checkpoints_hold(
        h: Harness, mediator: PrivateIdentity, tmp_path: Path) -> None:
    first, second = _beta_restored_behind_alpha(h, mediator, tmp_path)
    h.clock.advance(seconds=5)
    _send(h, "M-3")  # answered with a gap: alpha resends from what beta lost
    assert [n for n, _ in wire.peer_checkpoints(h.beta.engine, "alpha")] == [first, second]
    third = wire.witness_cosigns(h.alpha.engine, mediator, T + 2)
    h.courier.settle()
    assert [n for n, _ in wire.peer_checkpoints(h.beta.engine, "alpha")] == [
        first, second, third]
    assert _checkpoints(h) == ["delivered"] * 3
    assert [r["reason"] for r in wire.refusals(h.beta.engine)] == []
    assert wire.events(h.beta.engine, "security_alarm") == []
    assert wire.events(h.alpha.engine, "security_alarm") == []


def test_restored_receiver_still_catches_a_log_that_forked_while_it_was_away(
        h: Harness, mediator: PrivateIdentity, tmp_path: Path) -> None:
    _beta_restored_behind_alpha(h, mediator, tmp_path)
    # What beta kept from before the backup now differs from what alpha shows: as if alpha
    # had shown it another log before. The resent proof does not join them.
    wire.alter_kept_peer_root(h.beta.engine, "alpha")
    h.clock.advance(seconds=5)
    _send(h, "M-3")
    assert _checkpoints(h) == ["delivered", "refused"]
    (alarm,) = wire.events(h.beta.engine, "security_alarm")
    assert alarm["reason"] == peer_log.SPLIT_VIEW

"""A quiet log's skew against the witness (PROTOCOL.md §13.9): the log does not grow for more
than the 7 days a clock reading is good for, the same checkpoint is cosigned again, and that
fresh cosignature — verified as any is — gives the reading that judges deadlines, while the
size's first cosignature stays the receipts' evidence. A cosignature that does not verify
refreshes nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conftest import make_identity
from harness import open_pair, wire

from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.notes.checkpoint import witness_key_name
from bridge.core.notes.cosignature import cosign
from bridge.engine.witnessed_time import MAX_AGE_MS, judging_clock
from bridge.engine.witnessing import ALARM, COSIGNED, REFRESH_MS, read_answer

BEHIND = 3600  # the witness's clock is an hour behind ours


def _judge(engine: wire.Engine) -> Any:
    e = SimpleNamespace(now=engine.now, store=engine.store,
                        config=SimpleNamespace(witnesses={"mediator": None}))
    return judging_clock(e)  # type: ignore[arg-type]


def test_same_size_cosigned_again_after_a_quiet_week_refreshes_the_skew(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    mediator = make_identity("mediator")
    with open_pair(tmp_path, alpha, beta) as h:
        engine = h.alpha.engine
        size = wire.witness_cosigns(engine, mediator, h.clock() // 1000 - BEHIND)
        first = engine.store.cosignatures("mediator")
        assert _judge(engine).skew_ms == BEHIND * 1000
        h.clock.advance(ms=MAX_AGE_MS + 86_400_000)  # eight quiet days
        assert _judge(engine).source == "own"  # the reading is too old to say anything
        again = wire.witness_cosigns(engine, mediator, h.clock() // 1000 - BEHIND)
        assert again == size  # the log did not grow
        clock = _judge(engine)
        assert (clock.source, clock.witness, clock.skew_ms) == (
            "witnessed", "mediator", BEHIND * 1000)
        assert engine.witnessing.status(["mediator"])["mediator"]["skew_seconds"] == BEHIND
        # The receipts' bound is the size's first cosignature, the earliest: it stays.
        assert engine.store.cosignatures("mediator") == first


def test_same_size_cosignature_that_does_not_verify_refreshes_nothing(
        tmp_path: Path, alpha: PrivateIdentity, beta: PrivateIdentity) -> None:
    mediator, impostor = make_identity("mediator"), make_identity("impostor")
    with open_pair(tmp_path, alpha, beta) as h:
        engine = h.alpha.engine
        sub = engine.witnessing.prepare(0, 0, force=True)
        assert sub is not None and sub.signed_at == h.clock()
        text = sub.note.split(b"\n\n")[0].decode() + "\n"
        name = witness_key_name(mediator.party, mediator.public.fingerprint)
        for signer, kind in ((impostor, ALARM), (mediator, COSIGNED)):
            line = cosign(text, name=name, public=mediator.public.note_key,
                          timestamp=h.clock() // 1000, sign=signer.sign_note).line.line()
            reading = read_answer(sub, 200, "text/plain", line, mediator.public)
            assert reading.kind == kind
            assert reading.signed_at == (sub.signed_at if kind == COSIGNED else None)


def test_a_quiet_log_is_submitted_again_once_its_cosignature_is_a_day_old() -> None:
    from bridge.witness.submitter import WitnessLoop

    loop = WitnessLoop.__new__(WitnessLoop)
    now = [1_800_000_000_000]
    loop.exchange = SimpleNamespace(now=lambda: now[0])  # type: ignore[assignment]
    loop._read_at = None
    assert not loop._reading_due()  # never cosigned since the start: the start forces one
    loop._read_at = now[0]
    now[0] += REFRESH_MS - 1
    assert not loop._reading_due()
    now[0] += 1
    assert loop._reading_due()
    assert REFRESH_MS < MAX_AGE_MS  # renewed well before a reading stops counting

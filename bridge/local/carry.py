"""The offline carrier through the local API (PROTOCOL.md §12, local-api.yaml "carry").

The daemon holds the store while it runs, so a carrier file goes through it: ``export``
streams our unanswered envelopes to a peer as a carrier file; ``import`` reads a carrier file
streamed to it, record by record (``bridge.core.carry.Reader``), and hands each envelope to
``Exchange.receive_envelope`` and each answer to the engine's delivery path, exactly as the
HTTP endpoint and courier do. What the file holds is outside input: it is bounded by
``CarryLimits`` while it is read, never trusted for more than the bytes it carries.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bridge.core import carry
from bridge.core.carry import CarryHeader, CarryLimits, FileKind, Reader, Writer
from bridge.core.crypto.identity import check_party
from bridge.core.errors import InputError, PeerError
from bridge.engine.carry import ALREADY, AnswerResult
from bridge.engine.exchange import Exchange
from bridge.engine.inbound import decode_envelope
from bridge.engine.metrics import Metrics
from bridge.engine.outcomes import Answer, Outcome
from bridge.engine.ports import RunInDb
from bridge.local.processing import with_processing

# The reasons a carrier file is refused whole, before any of its records is read.
CARRY_FILE_REFUSALS = ("wrong_recipient", "unknown_sender", "unknown_sender_key", "wrong_kind",
                       "bad_magic", "unsupported_version", "bad_header", "truncated",
                       "file_too_large")
EXPORT_PAGE = 16  # rows read from the store per transaction while a file is streamed
NOT_READ = "not_read"  # a record the file holds that was not passed on (its reason says why)
# Taking an envelope or an answer into the store: a file's record decides nothing otherwise.
TAKEN = frozenset({Outcome.ACCEPTED.value, Outcome.REFUSED.value})


@dataclass
class _Import:
    """What one import found, record by record, for its JSON report."""

    kind: FileKind
    header: CarryHeader | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    problem: dict[str, str] | None = None
    complete: bool = False
    new: int = 0
    receipts: Writer | None = None
    receipt_parts: list[bytes] = field(default_factory=list)

    def note(self, seq: int | None, envelope: bytes | None, result: str,
             reason: str | None = None, detail: str = "") -> None:
        self.records.append({"seq": seq, "envelope": envelope.hex() if envelope else None,
                             "result": result, "reason": reason, "detail": detail})

    def report(self) -> dict[str, Any]:
        h = self.header
        out: dict[str, Any] = {
            "kind": self.kind.label, "from": h.sender if h else None,
            "to": h.recipient if h else None, "complete": self.complete,
            "problem": self.problem, "records": self.records, "new": self.new}
        if self.receipts is not None and self.receipts.count:
            data = b"".join([*self.receipt_parts, self.receipts.finish()])
            out["receipts"] = base64.b64encode(data).decode("ascii")
        return out


class CarryApi:
    def __init__(self, *, exchange: Exchange, run: RunInDb, metrics: Metrics,
                 limits: CarryLimits | None = None) -> None:
        self.exchange = exchange
        self.run = run
        self.metrics = metrics
        self.limits = limits or CarryLimits(
            max_record_bytes=exchange.config.max_body_bytes if exchange else 1)

    def add_routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/carry/{peer}/export", self.export)
        router.add_post("/v1/carry/import", self.import_file)

    # ------------------------------------------------------------ export

    async def export(self, request: web.Request) -> web.StreamResponse:
        peer = check_party(request.match_info["peer"], field_name="peer")
        ex = self.exchange
        pending = await self.run(ex.carry.pending_count, peer)
        count = min(pending, self.limits.max_records)
        writer = Writer(CarryHeader(kind=FileKind.ENVELOPES, sender=ex.me.party,
                                    sender_key=ex.me.key_id, recipient=peer,
                                    recipient_key=ex.peers[peer].key_id, created=ex.now()))
        resp = web.StreamResponse(headers={
            "Content-Type": carry.MEDIA_TYPE, "Bridge-Carry-Pending": str(pending)})
        await resp.prepare(request)
        await resp.write(writer.start())
        after = 0
        while writer.count < count:
            rows = await self.run(ex.carry.export_rows, peer, after,
                                  min(EXPORT_PAGE, count - writer.count))
            if not rows:
                break  # answered meanwhile (by another transport): the footer counts what is
            for row in rows:
                await resp.write(writer.record(carry.envelope_record(row.seq, row.envelope)))
                after = row.seq
        await resp.write(writer.finish())
        await resp.write_eof()
        self.metrics.inc("carry_envelopes_exported", writer.count)
        return resp

    # ------------------------------------------------------------ import

    @with_processing
    async def import_file(self, request: web.Request) -> web.Response:
        kinds = {"envelopes": FileKind.ENVELOPES, "answers": FileKind.ANSWERS}
        raw = request.query.get("kind", "envelopes")
        if raw not in kinds:
            raise InputError("must be envelopes or answers", field="kind")
        if request.content_type != carry.MEDIA_TYPE:
            raise InputError(f"send the file with Content-Type: {carry.MEDIA_TYPE}", field="$",
                             code="bad_content_type")
        length = request.content_length
        if length is not None and length > self.limits.max_file_bytes:
            raise InputError(f"a carrier file is at most {self.limits.max_file_bytes} bytes",
                             field="$", code="too_large")
        state = _Import(kind=kinds[raw])
        reader = Reader(self.limits, state.kind)
        loop = asyncio.get_running_loop()
        while n := reader.need():
            data = await _read_up_to(request.content, n)
            # Hashing a large record is the file's work, not the event loop's.
            events = (reader.take(data) if len(data) < 65536 else
                      await loop.run_in_executor(None, reader.take, data))
            for event in events:
                await self._on_event(state, event)
        self.metrics.inc("carry_records_imported", len(state.records), kind=state.kind.label)
        return web.json_response(state.report())

    async def _on_event(self, state: _Import, event: carry.Event) -> None:
        if isinstance(event, carry.HeaderRead):
            await self._header(state, event.header)
        elif isinstance(event, carry.RecordRead):
            assert state.header is not None
            if state.kind is FileKind.ENVELOPES:
                await self._envelope(state, event.record)
            else:
                await self._answer(state, event.record)
        elif isinstance(event, carry.RecordRefused):
            state.note(event.seq, event.envelope, NOT_READ, event.reason, event.detail)
            await self._record_refusal(state, event.reason, event.detail)
        elif isinstance(event, carry.Finished):
            state.complete = True
        else:
            assert isinstance(event, carry.Broken)
            if state.header is None:  # nothing of it could be read: the file is refused whole
                raise InputError(event.detail, field="file", code=event.reason)
            state.problem = {"reason": event.reason, "detail": event.detail}
            await self._record_refusal(state, event.reason, event.detail)

    async def _record_refusal(self, state: _Import, reason: str, detail: str) -> None:
        """A record (or the rest of a file) refused before the engine saw it: kept among the
        refusals as the HTTP layer's are (one write a second per reason; a flood of damaged
        records must not become a flood of transactions). No peer is named: nothing of it
        was authenticated."""
        assert state.header is not None
        source = f"carrier file from {state.header.sender}"
        admitted = self.exchange.refusal_gate.admit(("carry", source, reason))
        if admitted is not None:
            note = f" ({admitted.note})" if admitted.note else ""
            await self.run(self.exchange.record_limit_refusal, reason=reason,
                           detail=f"{detail}{note}", count=admitted.count, source=source)

    async def _header(self, state: _Import, header: CarryHeader) -> None:
        try:
            await self.run(self.exchange.carry.check_header, header, state.kind)
        except PeerError as exc:
            raise InputError(str(exc), field="file", code=exc.reason) from exc
        state.header = header
        if state.kind is FileKind.ENVELOPES:
            me = self.exchange.me
            state.receipts = Writer(CarryHeader(
                kind=FileKind.ANSWERS, sender=me.party, sender_key=me.key_id,
                recipient=header.sender, recipient_key=header.sender_key,
                created=self.exchange.now()))
            state.receipt_parts.append(state.receipts.start())

    async def _envelope(self, state: _Import, record: carry.Record) -> None:
        assert state.header is not None and state.receipts is not None
        parsed = await asyncio.get_running_loop().run_in_executor(None, decode_envelope,
                                                                  record.body)
        if not isinstance(parsed, Exception):
            h = parsed[0]
            other = carry.record_names_other(state.header, record, sender=h.sender,
                                             recipient=h.recipient, seq=h.seq)
            if other is not None:
                state.note(record.seq, record.envelope, NOT_READ, "record_mismatch", other)
                await self._record_refusal(state, "record_mismatch", other)
                return
        answer: Answer = await self.run(self.exchange.receive_envelope, record.body, parsed)
        self.metrics.inc(f"envelopes_{answer.outcome.counted_as}")
        state.note(record.seq, record.envelope, answer.outcome.value, answer.reason)
        if answer.outcome.value in TAKEN:
            state.new += 1
        state.receipt_parts.append(state.receipts.record(
            carry.Record(seq=record.seq, envelope=record.envelope, body=answer.body)))

    async def _answer(self, state: _Import, record: carry.Record) -> None:
        assert state.header is not None
        result: AnswerResult = await self.run(self.exchange.carry.answered,
                                              state.header.sender, record.seq,
                                              record.envelope, record.body)
        if result.changed:
            state.new += 1
        reason = None if result.changed or result.state == ALREADY else result.state
        state.note(record.seq, record.envelope, result.state, reason, result.detail)


async def _read_up_to(content: Any, n: int) -> bytes:
    """``n`` bytes of the request body, or fewer when it ends first."""
    try:
        return bytes(await content.readexactly(n))
    except asyncio.IncompleteReadError as exc:
        return bytes(exc.partial)

"""The engine's health: faults of the store, and the alarm when it is not what was signed.

A store that cannot be written (a full disk) makes the daemon "degraded"; a store found not to
be what was signed (the store check at start, or a read) is worse: it becomes read-only, its
damaged documents are not served, and the security alarm is raised once per fault in health,
/metrics, the log and the event stream (SECURITY.md, "A damaged store").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NoReturn

from bridge.core import documents, times
from bridge.core.crypto.identity import PrivateIdentity
from bridge.core.errors import BridgeError, StoreCorrupt, StoreUnavailable
from bridge.engine.check_mark import CheckMark, sign_mark, verified_mark
from bridge.engine.check_pass import CheckPass, check_since
from bridge.engine.metrics import Metrics
from bridge.engine.ports import Store
from bridge.engine.store_check import MAX_FAULTS, StoreFault
from bridge.home.config import Delivery
from bridge.store.sqlite.store import DocumentRow

log = logging.getLogger("bridge.exchange")

FAULT_STORE = "store_unavailable"


def where(row: DocumentRow) -> str:
    """A stored document, as a fault names it."""
    return f"{row.direction} {row.type} {row.id} ({row.peer})"


class StoreGuard:
    """What is known to be wrong with the store, and the checks made on the way out."""

    def __init__(self, *, store: Store, metrics: Metrics, now: Callable[[], int],
                 notify: Callable[[], None], monotonic: Callable[[], float] = time.monotonic
                 ) -> None:
        self.store = store
        self.metrics = metrics
        self.now = now
        self.notify = notify
        self.monotonic = monotonic
        # What the store check (at start, or a read) found not to be what was signed. While
        # not empty the store is read-only and those documents are not served (SECURITY.md).
        self.faults: list[StoreFault] = []
        self._alarms_due: list[StoreFault] = []
        # Whole documents whose every status was found to hold, by the store's data version
        # then (``Store.data_version``: it changes when anything but this daemon writes the
        # file). ``_all_sound_at``: the version at which the check at start found every one
        # sound.
        self._sound: dict[int, int] = {}
        self._all_sound_at: int | None = None
        # The whole check is still to run beside the work (the one at start read only what
        # changed since the last complete one), and the data version when it began.
        self.pass_due = False
        self._pass_version: int | None = None

    # ------------------------------------------------------------ a store that lies

    def check_store(self, keys: Sequence[PrivateIdentity] = ()) -> list[StoreFault]:
        """The store check at start (``bridge/engine/check_pass.py``): what changed since the
        last complete check, when its mark verifies by one of ``keys`` (the party's own) and
        fits the store, and then the whole check beside the work (``pass_due``); else the
        whole check now, which leaves a mark. What it finds raises the alarm and makes the
        store read-only."""
        started = self.monotonic()
        version = self.store.data_version()
        rows = self.store.check_rows()
        mark = verified_mark(rows.check_mark(), keys)
        faults = None if mark is None else check_since(rows, mark)
        self.pass_due = faults is not None
        if faults is None:  # the whole check now, as the pass beside the work makes it
            work = CheckPass(rows)
            faults = work.run()
            if not faults:
                self._save_mark(keys, work.mark(self.now()))
        self._all_sound_at = None if faults or self.pass_due else version
        self._sound.clear()
        for fault in faults:
            self.store_fault(fault)
        self.metrics.set_gauge("store_corrupt", int(bool(self.faults)))
        log.info("store check%s: %s in %.1f s", " since the last complete one" if self.pass_due
                 else "", f"{len(faults)} faults" if faults else "sound",
                 self.monotonic() - started)
        return faults

    def pass_begun(self) -> None:
        """The whole check beside the work begins (its reads on a connection of its own)."""
        self._pass_version = self.store.data_version()

    def pass_done(self, work: CheckPass, keys: Sequence[PrivateIdentity]) -> None:
        """The whole check beside the work is over: a sound one leaves a new mark, and
        every status is known to hold (unless another hand wrote the file meanwhile)."""
        self.pass_due = False
        if work.faults or self.faults:
            log.error("store check beside the work: %d faults", len(work.faults))
            return
        if self.store.data_version() == self._pass_version:
            self._all_sound_at = self._pass_version
        self._save_mark(keys, work.mark(self.now()))
        log.info("store check beside the work: sound (%d documents)", work.documents)

    def _save_mark(self, keys: Sequence[PrivateIdentity], mark: CheckMark | None) -> None:
        if not keys or mark is None:
            return
        body, sig = sign_mark(keys[0], mark)
        try:
            with self.store.transaction():
                self.store.check_rows().save_check_mark(body, sig)
        except BridgeError as exc:  # a full disk: the next start checks the whole store again
            log.warning("could not keep the mark of the store check: %s", exc)

    def store_fault(self, fault: StoreFault) -> None:
        """Something stored is not what was signed, or cannot be read: the security alarm
        (health, /metrics, the log, the event stream), once per fault."""
        if fault in self.faults:
            return
        if len(self.faults) < MAX_FAULTS:
            self.faults.append(fault)
        self.metrics.inc("store_faults")
        self.metrics.set_gauge("store_corrupt", 1)
        log.error("the store is damaged: %s", fault)
        self._alarms_due.append(fault)
        if not self.store.in_transaction:  # else once the caller's has rolled back
            self.save_alarms()

    def save_alarms(self) -> None:
        """The event of each store fault found, in a transaction of its own."""
        due, self._alarms_due = self._alarms_due, []
        try:
            with self.store.transaction():
                for fault in due:
                    self.store.add_event("security_alarm", {"reason": "store_corrupt",
                                                            "detail": str(fault)}, self.now())
            self.notify()
        except Exception:  # a damaged events table: the log, health and metrics still say it
            log.exception("could not record the store_corrupt alarm in the event log")

    def corrupt(self, fault: StoreFault) -> NoReturn:
        self.store_fault(fault)
        raise StoreCorrupt(str(fault))

    def writable(self) -> None:
        """Refuse a change while the store is known to be damaged."""
        if self.faults:
            raise StoreCorrupt(f"the store is damaged ({self.faults[0]}); it is read-only "
                               "until restored from a backup (see bridge audit verify)")

    def damaged(self, row: DocumentRow) -> None:
        """Refuse to serve a document the store check found damaged."""
        found = [f for f in self.faults if f.doc == row.rowid]
        if found:
            raise StoreCorrupt(str(found[0]))

    def stored_header(self, row: DocumentRow) -> documents.SignedHeader:
        try:
            header = documents.DocumentHeader.from_bytes(row.header)
        except BridgeError as exc:
            self.corrupt(StoreFault(where=where(row), doc=row.rowid,
                                    what=f"the stored header cannot be read: {exc}"))
        return documents.SignedHeader(header=header, data=row.header, signature=row.sig)

    def statuses_hold(self, row: DocumentRow, first: int = 0, last: int = 1 << 62) -> None:
        """Every status reported from the items table is checked against the signed history
        (the one source of truth) on the way out."""
        what = self.store.status_mismatch(row.rowid, first, last)
        if what is not None:
            self.corrupt(StoreFault(where=where(row), what=what, doc=row.rowid))

    def range_statuses_hold(self, row: DocumentRow, first: int, last: int) -> None:
        """``statuses_hold`` for [first, last], unless the whole document was found to hold at
        this data version (``document_statuses_hold``'s reasoning: only this daemon has
        written since, and it checks before it writes). A received acknowledgement checks its
        chunk's range so, instead of reading the signed history of every item again."""
        if self.store.data_version() in (self._all_sound_at, self._sound.get(row.rowid)):
            return
        self.statuses_hold(row, first, last)

    def served_statuses_hold(self, row: DocumentRow, indexes: list[int]) -> None:
        """``statuses_hold`` for exactly the items served (a page of one status is sparse:
        its first and last index may lie a whole document apart)."""
        what = self.store.status_mismatch_at(row.rowid, indexes)
        if what is not None:
            self.corrupt(StoreFault(where=where(row), what=what, doc=row.rowid))

    def document_statuses_hold(self, row: DocumentRow) -> None:
        """``statuses_hold`` for every item of ``row``, read again only when something other
        than this daemon has written the file since they were last found to hold (checking a
        million items takes seconds; counts of them are asked for often). What this daemon
        writes it has checked against the signed history before writing it; an edit behind
        its back through SQLite changes the data version; a flipped bit on the disk is found
        by the item reads, which always check, the next start and ``bridge audit verify``
        (SECURITY.md, "A damaged store")."""
        version = self.store.data_version()
        if version in (self._all_sound_at, self._sound.get(row.rowid)):
            return
        self.statuses_hold(row)
        self._sound[row.rowid] = version

    def every_status_holds(self, rows: Iterable[DocumentRow]) -> None:
        """``document_statuses_hold`` for each of ``rows`` (the reconciliation's)."""
        if self.store.data_version() == self._all_sound_at:
            return
        for row in rows:
            self.document_statuses_hold(row)

    # ------------------------------------------------------------ a store that is full

    def unavailable(self, exc: StoreUnavailable) -> None:
        """The store cannot be written now (a full disk): degraded, and said once."""
        self.metrics.inc("store_unavailable")
        if self.metrics.set_fault(FAULT_STORE, str(exc)):
            log.error("ALARM: %s; envelopes are answered 'unavailable' until it can be "
                      "written again", exc)

    def written(self) -> None:
        """A write committed: the store takes them again."""
        self.metrics.clear_fault(FAULT_STORE)

    # ------------------------------------------------------------ health

    def health(self, *, party: str, fingerprint: str, peers: list[str]) -> dict[str, Any]:
        # A fault (a store that cannot be written, a background task that died) makes the
        # daemon "degraded" and is named, so a monitor sees it without reading the log; a
        # store that is not what was signed is worse, and says so.
        faults = self.metrics.faults()
        status = "store_corrupt" if self.faults else "degraded" if faults else "ok"
        return {"status": status, "faults": faults, "party": party, "fingerprint": fingerprint,
                "store": {"ok": not self.faults, "faults": [str(f) for f in self.faults],
                          "check": "running" if self.pass_due else "complete"},
                "peers": {p: self.queue(p) for p in peers}}

    def queue(self, peer: str) -> dict[str, Any]:
        """What waits for ``peer``: how many envelopes, and since when the oldest has."""
        queued, oldest = self.store.queue_of(peer)
        age = max(0, (self.now() - oldest) // 1000) if oldest is not None else None
        self.metrics.set_gauge("peer_queued", queued, peer=peer)
        self.metrics.set_gauge("peer_oldest_queued_age_seconds", age or 0, peer=peer)
        return {"queued": queued, "oldest_queued": times.format_optional(oldest),
                "oldest_queued_age_seconds": age,
                # Each link's position: what a restored peer's operator asks for.
                "sent_seq": self.store.outbound_state(peer).last_seq,
                "received_seq": self.store.inbound_state(peer).last_seq}


# ---------------------------------------------------------------- the links to the peers
#
# ``status`` says whether this daemon is sound (what restarting it or paging its host's
# operator can help with); a peer that is down is not a fault of this daemon, and a monitor that
# restarted a sound daemon for it would only lose the retries in progress. So the links have
# their own verdict beside it (README, "Seeing trouble"): a link is "stuck" when something has
# waited for the peer, and the peer has decided on nothing we sent (no answer, or only
# refusals), for longer than two full retry rounds; a peer that restarts within that is a blip,
# not an alarm.


def stuck_after(delivery: Delivery) -> float:
    """Seconds without a decision by the peer, while something waits for it, after which its
    link is stuck: two rounds of the longest backoff and a request that timed out."""
    return 2 * (delivery.max_backoff + delivery.request_timeout)


def _ms(text: object) -> int | None:
    return times.from_datetime(datetime.fromisoformat(text)) if isinstance(text, str) else None


def link_stuck(peer: Mapping[str, Any], *, now: int, after: float) -> bool:
    """``peer``: its health entry (queue and link, as ``StoreGuard.queue`` and
    ``LinkStatus.view`` give them). A peer with no delivery loop (carried by hand: its link
    has never been tried, ``reachable`` is None) is never stuck: what waits for it waits for
    its carrier."""
    age = peer.get("oldest_queued_age_seconds")
    if not peer.get("queued") or age is None or age < after:
        return False
    if peer.get("reachable") is None and peer.get("last_error") is None:
        return False
    decided = _ms(peer.get("last_success"))
    return decided is None or (now - decided) / 1000 >= after


def links_verdict(peers: Mapping[str, dict[str, Any]], *, now: int, after: float
                  ) -> dict[str, Any]:
    """Marks each peer's entry ``stuck`` and says the links' verdict: "ok", or "degraded"
    with the stuck peers named."""
    for peer in peers.values():
        peer["stuck"] = link_stuck(peer, now=now, after=after)
    stuck = sorted(name for name, peer in peers.items() if peer["stuck"])
    return {"status": "degraded" if stuck else "ok", "stuck": stuck, "stuck_after_seconds": after}

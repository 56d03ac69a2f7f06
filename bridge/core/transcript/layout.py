"""Where the parts of a transcript file are (PROTOCOL.md §11.4), found in one pass that reads
only headers, and the long arrays read back an element at a time from where they begin.

Map keys are in canonical order (§2.3), so ``documents`` comes first and ``parties`` after the
links; the checks need the parties first, hence a first pass that notes where each part is.
A shape that is not the transcript's (a part that is not a list, a link that is not a map of
``from``, ``to`` and ``envelopes``) is reported as ``None`` or an empty result for the check
to refuse with its own reason, as it would the decoded value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bridge.core.pieces import NIL, SMALL_PIECE, Cursor, Opener, Readable, Run, of_bytes
from bridge.core.transcript.check_state import fail
from bridge.core.transcript.model import LINK_KEYS, MAX_CIPHERTEXT, TRANSCRIPT, TRANSCRIPT_LIMITS

ENVELOPE_PIECE = MAX_CIPHERTEXT + (1 << 20)  # an envelope carries its ciphertext
LONG = frozenset({"documents", "links"})  # parts not decoded whole
WITNESSED = "witnessed"  # the witnessed times (PROTOCOL.md §13.5), checked on their own


@dataclass(frozen=True, kw_only=True)
class Layout:
    keys: frozenset[str]
    small: dict[str, Any]  # the decoded values of the other keys
    at: dict[str, int]  # where each long part begins


@dataclass(frozen=True, kw_only=True)
class DocumentAt:
    doc: Any  # {header, sig}, decoded; its shape is the check's to judge
    entries: Run | None
    keys: frozenset[str]
    entries_are_bins: bool


@dataclass(frozen=True, kw_only=True)
class LinkAt:
    sender: Any
    recipient: Any
    envelopes: Run


def _cursor(f: Readable, pos: int = 0) -> Cursor:
    return Cursor(f, TRANSCRIPT_LIMITS, pos)


def read_layout(open_file: Opener) -> Layout | None:
    """The top-level map's keys, its small values decoded, where its long parts begin; None
    when the file holds a value other than a map."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f)
        n = c.container("map")
        if n is None:
            c.value(c.size)  # whatever it is, the decoder says if it is not canonical
            return None
        keys, small, at = [], {}, {}
        for key in c.keys(n):
            keys.append(key)
            if key in LONG:
                at[key] = c.pos
                c.skip()
            else:
                small[key] = c.value()
        if not c.at_end():
            raise c.fail("trailing", "trailing bytes after the value")
    return Layout(keys=frozenset(keys), small=small, at=at)


def is_transcript_file(open_file: Opener) -> bool:
    """A cheap look at the ``type`` of a top-level map: only a str is ever decoded, everything
    else is skipped past (so a key or value of a million empty arrays costs no memory)."""
    try:
        with contextlib.closing(open_file()) as f:
            c = _cursor(f)
            n = c.container("map")
            for key in c.keys(n or 0):
                if key == "type":
                    return 0xA0 <= c.peek() <= 0xBF and c.value() == TRANSCRIPT
                c.skip()
    except Exception:  # anything malformed is for the full check to name
        return False
    return False


def is_transcript(data: bytes) -> bool:
    """``is_transcript_file`` of bytes in memory (so that ``bridge verify`` can tell a
    transcript from a receipt before decoding either)."""
    return is_transcript_file(of_bytes(bytes(data)))


def witnessed_view(open_file: Opener) -> dict[str, Any]:
    """What a transcript's witnessed times are checked against (``receipts.witnessed``): its
    type, its documents' signed headers (not their entries) and its witnessed records; empty
    when it has none. For a transcript whose own check passed."""
    found = read_layout(open_file)
    run = None if found is None else documents(open_file, found.at["documents"])
    if found is None or run is None or WITNESSED not in found.small:
        return {}
    return {"type": found.small.get("type"), WITNESSED: found.small[WITNESSED],
            "documents": [{"doc": d.doc} for d in each_document(open_file, run)]}


def documents(open_file: Opener, at: int) -> Run | None:
    """Where the elements of the ``documents`` array beginning at ``at`` are (None: it is
    not an array)."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f, at)
        n = c.container("array")
        return None if n is None else Run(at=c.pos, count=n)


def each_document(open_file: Opener, run: Run) -> Iterator[DocumentAt]:
    """Each element of the ``documents`` array, its entries skipped past."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f, run.at)
        for k in range(run.count):
            m = c.container("map")
            if m is None:
                raise fail(f"documents[{k}] is not {{doc: {{header, sig}}, entries}}",
                           "bad_transcript")
            keys, doc, entries, bins = [], None, None, True
            for key in c.keys(m):
                keys.append(key)
                if key == "entries":
                    entries, bins = _entries_run(c)
                else:
                    doc = c.value()
            yield DocumentAt(doc=doc, entries=entries, keys=frozenset(keys),
                             entries_are_bins=bins)


def _entries_run(c: Cursor) -> tuple[Run | None, bool]:
    """Where a document's entries are, skipped past (each a bin, or the second is False)."""
    if c.peek() == NIL:
        c.advance(1)
        return None, True
    n = c.container("array")
    if n is None:
        c.skip()
        return Run(at=c.pos, count=0), False
    run, bins = Run(at=c.pos, count=n), True
    for _ in range(n):
        size = c.bin_size()
        if size is None:
            bins = False
            c.skip(SMALL_PIECE)
        else:
            c.advance(size)
    return run, bins


def entries(open_file: Opener, run: Run) -> Iterator[bytes]:
    """A document's entries in order, each decoded canonically on its own."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f, run.at)
        for n, leaf in enumerate(c.bins(run.count)):
            if not isinstance(leaf, bytes):
                raise fail(f"entry {n} is not bytes", "bad_transcript")
            yield leaf


def links(open_file: Opener, at: int) -> list[LinkAt] | None:
    """The two links' ends and where their envelopes are; None when ``links`` is not a list
    of maps of ``from``, ``to`` and a list of ``envelopes``."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f, at)
        n = c.container("array")
        if n != 2:  # one link each way
            return None
        out = []
        for _ in range(n):
            link = _link(c)
            if link is None:
                return None
            out.append(link)
    return out


def _link(c: Cursor) -> LinkAt | None:
    m = c.container("map")
    if m is None or m != len(LINK_KEYS):
        return None
    ends: dict[str, Any] = {}
    run = None
    for key in c.keys(m):
        if key == "envelopes":
            count = c.container("array")
            if count is None:
                return None
            run = Run(at=c.pos, count=count)
            for _ in range(count):
                c.skip(ENVELOPE_PIECE)
        else:
            ends[key] = c.value()
    if run is None or set(ends) != LINK_KEYS - {"envelopes"}:
        return None
    return LinkAt(sender=ends["from"], recipient=ends["to"], envelopes=run)


def envelopes(open_file: Opener, run: Run) -> Iterator[Any]:
    """A link's envelopes in order, each decoded (its ciphertext included) on its own."""
    with contextlib.closing(open_file()) as f:
        c = _cursor(f, run.at)
        for _ in range(run.count):
            yield c.value(ENVELOPE_PIECE)


__all__ = ["WITNESSED", "DocumentAt", "Layout", "LinkAt", "documents", "each_document",
           "entries", "envelopes", "is_transcript", "is_transcript_file", "links", "read_layout",
           "witnessed_view"]

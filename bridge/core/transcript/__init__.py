"""Transcripts: the whole exchange between two parties, checkable offline by a mediator.

A transcript (PROTOCOL.md §11.4) is one canonical map of type ``bridge.transcript`` holding, in
order, every document and acknowledgement document exchanged between two parties (signed
headers, and normally all their entries), and for each direction every envelope's header, the
sender's signature over it and the ciphertext hash that signature covers (and the ciphertext
itself when the exporter has it), with the **recipient's signed transport receipt** for it, in
sequence order. Anyone holding the two parties' public identity files can check, with no daemon
and no store, that

- every document and acknowledgement is signed by its issuer, and its entries match its root;
- every acknowledgement answers a document earlier in the transcript, binding its entries
  (the checks of a whole-document receipt, PROTOCOL.md §7.4);
- each envelope header is signed by its sender, and where the ciphertext is included its
  envelope hash is recomputed, so that the recipient's receipt binds the header too;
- each direction's envelopes are numbered 1, 2, … with no gap, each naming the previous one's
  hash, and each has a receipt signed by the recipient naming its hash, sequence number and
  message id: proof of delivery;
- every chunk envelope says which document chunk it carried, or the result lists it as not
  accounted for.

``check_transcript`` (bytes in memory) and ``check_transcript_file`` (a file read a piece at a
time, never whole) are one check, and return a ``TranscriptResult``; they never raise for bad
input. ``verify_transcript`` raises ``VerificationError`` naming the first failed step. Steps
are numbered as in PROTOCOL.md §11.5. Pure: no clock; the bytes are read only through the
reader the caller gives.

The modules: ``model`` (the wire constants, limits, the parts of a transcript and the result of
a check), ``build`` (a transcript from its parts; the chunks that are accounted for), ``check``
(steps 1, 2 and 6 and the entry points), ``check_documents`` (step 3), ``check_entries``
(step 4), ``check_links`` (step 5), ``check_state`` (what the steps share as they go), and
``reader`` and ``layout`` (the file read in bounded pieces, and where its parts are).
"""

from bridge.core.pieces import Opener
from bridge.core.transcript.build import (
    StreamedDocument,
    accountable,
    build_transcript,
    stream_transcript,
)
from bridge.core.transcript.check import (
    check_transcript,
    check_transcript_file,
    verify_transcript,
)
from bridge.core.transcript.layout import is_transcript, is_transcript_file, witnessed_view
from bridge.core.transcript.model import (
    TRANSCRIPT,
    TRANSCRIPT_LIMITS,
    TranscriptDocument,
    TranscriptEnvelope,
    TranscriptResult,
    chunk_continues,
)

__all__ = [
    "TRANSCRIPT", "TRANSCRIPT_LIMITS", "Opener", "StreamedDocument", "TranscriptDocument",
    "TranscriptEnvelope", "TranscriptResult", "accountable", "build_transcript", "check_transcript",
    "check_transcript_file", "chunk_continues", "is_transcript", "is_transcript_file",
    "stream_transcript", "verify_transcript", "witnessed_view",
]

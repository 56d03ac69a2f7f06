"""A msgpack stream cut into its values' bytes, none of them decoded (``msgpack_values``
decodes them later, wherever that is done).

msgpack's C ``Unpacker.skip`` passes one whole value and ``tell`` says where it ended, so a
value's bytes are found at C speed and no object is built for it. The bounds are those of
``MsgpackValues``: a value of more than ``max_value`` bytes is refused once that much of it is
buffered. A byte that begins no value, or nesting the C walk cannot follow, is refused with
the very words ``MsgpackValues`` says of it, by decoding the stream from that value on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgpack

from bridge.core.errors import InputError
from bridge.local.msgpack_values import MsgpackValues


class MsgpackFrames:
    """Blocks of a stream in, each whole value's bytes out. ``place(n)`` names value ``n``
    (from 0) as a refusal names it."""

    def __init__(self, max_value: int, place: Callable[[int], str]) -> None:
        self.max_value = max_value
        self.done = 0  # values cut so far
        self._place = place
        self._unpacker = msgpack.Unpacker(max_buffer_size=max_value)
        self._held = bytearray()  # the stream from byte ``_start`` on
        self._start = 0  # where the value being read begins, in the stream

    def feed(self, block: bytes) -> Iterator[bytes]:
        """The bytes of each value ``block`` completes."""
        try:
            self._unpacker.feed(block)
        except msgpack.BufferFull:
            raise InputError(f"a value of the stream is over {self.max_value} bytes",
                             field="$", code="too_large") from None
        self._held += block
        at = 0  # in ``_held``
        while True:
            try:
                self._unpacker.skip()
            except msgpack.OutOfData:
                break
            except (msgpack.FormatError, msgpack.StackError, ValueError):
                raise self._refusal(bytes(self._held[at:])) from None
            end = self._unpacker.tell() - self._start
            yield bytes(self._held[at:end])
            at = end
            self.done += 1
        del self._held[:at]
        self._start += at

    def _refusal(self, rest: bytes) -> InputError:
        """What ``MsgpackValues`` says of the value beginning ``rest`` (the C walk refused it)."""
        values = MsgpackValues(max(self.max_value, len(rest)),
                               lambda n: self._place(self.done + n))
        try:
            for _ in values.feed(rest):
                break  # it decodes, and only the walk refused it: said as the walk's
        except InputError as err:
            return err
        return InputError("not a valid msgpack value here: nested too deep to walk",
                          field=self._place(self.done), code="bad_msgpack")

    def finish(self) -> None:
        """The body ended: a value cut short is refused."""
        if self._held:
            raise InputError("the stream ends inside a value", field=self._place(self.done),
                             code="bad_msgpack")


def decode_values(packed: bytes, place: Callable[[int], str]) -> list[object]:
    """The values of ``packed`` (whole values, one after another: ``MsgpackFrames`` cut them),
    each decoded and checked as ``MsgpackValues`` checks a streamed value."""
    values = MsgpackValues(max(1, len(packed)), place)
    out = list(values.feed(packed))
    values.finish()
    return out


__all__ = ["MsgpackFrames", "decode_values"]

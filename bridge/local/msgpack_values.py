"""A streamed document as msgpack (``application/vnd.msgpack``): the header, then each item, one
msgpack value after another (schemas/local-api.yaml, ``DocumentStream``).

Decoded by msgpack's C ``Unpacker`` (a JSON parse a line costs several times as much), held to
the rules of a JSON line (``bridge.local.json_text``): a value is only what a JSON text could
be -- maps with text keys, none twice; arrays; UTF-8 text; whole numbers; true, false, null;
finite numbers -- and nested no deeper than ``MAX_JSON_DEPTH``. No binary, no extension type
(a timestamp is one), no key that is not text. Each value is at most ``max_value`` bytes: a
longer one is refused once that much of it is buffered, never built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import msgpack

from bridge.core.errors import InputError
from bridge.local.json_text import MAX_JSON_DEPTH, check_json_value, unique_names

MSGPACK = "application/vnd.msgpack"
_PLAIN = frozenset({str, int, bool, type(None), dict, list})


class _NotJsonValue(ValueError):
    """A value no JSON text could be; raised through the unpacker's hooks."""


def _plain(values: Any) -> None:
    """Each of ``values`` is a value a JSON text could hold (containers are checked by their
    own hook as they are built, inner first)."""
    for v in values:
        if v.__class__ not in _PLAIN and not (v.__class__ is float and math.isfinite(v)):
            raise _NotJsonValue(f"a {type(v).__name__} is no JSON value")


def _no_extension(code: int, data: bytes) -> Any:
    raise _NotJsonValue(f"an extension type ({code}) is no JSON value")


def _refused(why: str, field: str) -> InputError:
    return InputError(f"not a valid msgpack value here: {why}", field=field, code="bad_msgpack")


class MsgpackValues:
    """Blocks of a stream in, whole values out, each checked. ``containers`` counts the maps
    and arrays built since the last value: a value of at most ``MAX_JSON_DEPTH`` of them can be
    no deeper than that, so only a value with more is walked for its depth (as ``parse_json``
    walks only a line with more brackets)."""

    def __init__(self, max_value: int, place: Callable[[int], str]) -> None:
        self.containers = 0
        self.done = 0  # values yielded so far; ``place(done)`` names the one being read
        self._place = place
        self._unpacker = msgpack.Unpacker(
            raw=False, strict_map_key=True, use_list=True, max_buffer_size=max_value,
            object_pairs_hook=self._map, list_hook=self._array, ext_hook=_no_extension,
            # A timestamp is an extension type the unpacker would decode itself: refused too.
            timestamp=0, max_ext_len=0, max_bin_len=0)
        self.max_value = max_value

    def _map(self, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
        self.containers += 1
        out: dict[Any, Any] = unique_names(pairs)  # keys checked just below
        # strict_map_key lets text and binary keys through, and max_bin_len=0 binary of no
        # bytes only: b"" is the one key that is not text, found by one lookup (b"" and ""
        # hash alike but are never equal), not a loop over the keys.
        if b"" in out:
            raise _NotJsonValue("a map key that is not text")
        _plain(out.values())
        return out

    def _array(self, items: list[Any]) -> list[Any]:
        self.containers += 1
        _plain(items)
        return items

    def _field(self) -> str:
        return self._place(self.done)

    def feed(self, block: bytes) -> Iterator[Any]:
        """The values completed by ``block``."""
        try:
            self._unpacker.feed(block)
        except msgpack.BufferFull:
            raise InputError(f"a value of the stream is over {self.max_value} bytes",
                             field="$", code="too_large") from None
        while True:
            try:
                value = next(self._unpacker)
                _plain((value,))  # a scalar at the top (a container was checked by its hook)
            except StopIteration:
                return
            except msgpack.StackError:
                raise _refused(f"nested deeper than {MAX_JSON_DEPTH}", self._field()) from None
            except msgpack.FormatError:
                raise _refused("a byte that begins no msgpack value", self._field()) from None
            except ValueError as exc:  # the hooks', msgpack's own, UnicodeDecodeError
                raise _refused(str(exc), self._field()) from None
            # Counted over every block the value came in: reset once it is whole.
            built, self.containers = self.containers, 0
            if built > MAX_JSON_DEPTH:
                try:
                    check_json_value(value, self._field())
                except InputError as err:
                    raise _refused(err.detail.removeprefix("not valid JSON here: "),
                                   self._field()) from None
            self.done += 1
            yield value

    def finish(self) -> None:
        """The body ended: a value cut short is refused."""
        try:
            half_read = bool(self._unpacker.read_bytes(1))
        except ValueError:  # what it says while a value is half read
            half_read = True
        if half_read:
            raise InputError("the stream ends inside a value", field=self._field(),
                             code="bad_msgpack")


__all__ = ["MSGPACK", "MsgpackValues"]

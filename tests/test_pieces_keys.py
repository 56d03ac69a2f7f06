"""The keys of a map read a piece at a time (``pieces.Cursor.keys``): each checked as the
canonical decoder checks a map's keys, and the work linear in the keys, whatever a file's one
map holds."""

from __future__ import annotations

import io

import msgpack
import pytest

from bridge.core import codec, pieces
from bridge.core.errors import DecodeError

LIMITS = codec.DEFAULT_LIMITS


def _map(keys: list[object]) -> bytes:
    """A map of ``keys`` in the order given, each value nil (packed by hand: msgpack would
    sort nothing, and refuses no duplicate)."""
    return msgpack.Packer().pack_map_header(len(keys)) + b"".join(
        msgpack.packb(k) + b"\xc0" for k in keys)


def _keys(data: bytes) -> list[str]:
    c = pieces.Cursor(io.BytesIO(data), LIMITS)
    n = c.container("map")
    out = []
    for key in c.keys(n or 0):
        out.append(key)
        c.skip()
    return out


def _canonical_keys(n: int) -> list[str]:
    return sorted((f"k{i}" for i in range(n)), key=str.encode)


def test_a_file_of_one_map_of_many_keys_costs_work_linear_in_its_size(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The attack: a transcript or receipt whose one map holds tens of thousands of keys, to
    # make the verifier decode the keys so far again at every key (their square).
    decoded = 0
    real = codec.decode

    def counting(data: bytes, limits: codec.Limits = LIMITS) -> object:
        nonlocal decoded
        decoded += len(data)
        return real(data, limits)

    monkeypatch.setattr(codec, "decode", counting)
    data = _map(list(_canonical_keys(20_000)))
    assert len(_keys(data)) == 20_000
    assert decoded <= 2 * len(data)  # each key once, with a header byte and a nil beside it


@pytest.mark.parametrize(("keys", "reason"), [
    (["b", "a"], "not_canonical"),       # out of order
    (["a", "a"], "not_canonical"),       # the same key twice
    (["aa", "a"], "not_canonical"),      # a key before its own prefix (§2.3: a prefix first)
    (["a", 7], "map_key"),               # a key that is no str
])
def test_keys_out_of_canonical_order_or_not_str_are_refused(keys: list[object],
                                                            reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        _keys(_map(keys))
    assert err.value.code == reason
    assert "a map key" in str(err.value)
    with pytest.raises(DecodeError) as whole:  # the decoder of a whole map agrees
        codec.decode(_map(keys))
    assert whole.value.code == reason


def test_keys_in_canonical_order_are_read_as_the_decoder_reads_them() -> None:
    keys = ["a", "b", "aa", "é", "zz"]
    ordered = sorted(keys, key=str.encode)
    assert _keys(_map(list(ordered))) == list(codec.decode(_map(list(ordered))))

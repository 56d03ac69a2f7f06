"""User nkeys made with no network (bridge/transports/relay/nkeys.py), checked against the
``nkeys`` package that nats-py signs with."""

from __future__ import annotations

import nkeys
import pytest
from conftest import fixed_random

from bridge.core.errors import UsageError
from bridge.transports.relay import nkeys as ours


def test_generated_user_key_decodes_in_the_nkeys_package_to_the_same_public_key() -> None:
    for n in range(20):
        key = ours.UserKey.generate(fixed_random(f"nkey-{n}"))
        assert key.seed.startswith("SU") and key.public.startswith("U")
        pair = nkeys.from_seed(bytearray(key.seed.encode()))
        assert pair.public_key.decode() == key.public
        sig = pair.sign(b"nonce")
        assert pair.verify(b"nonce", sig)


def test_the_nkeys_package_seed_reads_back_here() -> None:
    raw = fixed_random("their-seed")(32)
    theirs = nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER).decode()
    assert ours.encode_seed(raw) == theirs
    assert ours.UserKey.of_seed(theirs).public == nkeys.from_seed(
        bytearray(theirs.encode())).public_key.decode()


def test_crc16_is_xmodem_as_the_nkeys_package_computes_it() -> None:
    for data in (b"", b"123456789", bytes(range(256))):
        assert ours.crc16(data) == nkeys.crc16(data)
    assert ours.crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value


def test_a_seed_block_parses_back_and_its_repr_hides_the_seed() -> None:
    key = ours.UserKey.generate()
    text = key.seed_block()
    assert text.splitlines() == [ours.SEED_BEGIN, key.seed, ours.SEED_END]
    assert ours.parse_seed_file(text) == key
    assert ours.parse_seed_file(f"\n  {key.seed}  \n") == key
    assert key.seed not in repr(key)


def test_a_seed_with_one_character_changed_fails_its_checksum() -> None:
    key = ours.UserKey.generate(fixed_random("flip"))
    flipped = key.seed[:10] + ("A" if key.seed[10] != "A" else "B") + key.seed[11:]
    with pytest.raises(UsageError):
        ours.decode_seed(flipped)
    with pytest.raises(UsageError):
        ours.check_public(key.public[:-1] + ("A" if key.public[-1] != "A" else "B"))


@pytest.mark.parametrize("text", ["", "hello", f"{ours.SEED_BEGIN}\n", "SA" + "A" * 56,
                                  f"{ours.SEED_BEGIN}\nSU{'A' * 56}\n"])
def test_a_file_that_holds_no_user_seed_is_refused(text: str) -> None:
    with pytest.raises(UsageError):
        ours.parse_seed_file(text)


def test_an_account_or_operator_seed_is_not_taken_for_a_user_seed() -> None:
    raw = fixed_random("account")(32)
    account = nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_ACCOUNT).decode()
    with pytest.raises(UsageError):
        ours.decode_seed(account)


def test_mismatched_seed_and_public_key_are_refused() -> None:
    a, b = ours.UserKey.generate(), ours.UserKey.generate()
    with pytest.raises(UsageError):
        ours.UserKey(seed=a.seed, public=b.public)


def test_read_seed_names_the_file_but_never_quotes_it(tmp_path) -> None:
    path = tmp_path / "x.creds"
    path.write_text("secret-ish text\n")
    with pytest.raises(UsageError) as err:
        ours.read_seed(path)
    assert str(path) in str(err.value) and "secret-ish" not in str(err.value)
    key = ours.UserKey.generate()
    path.write_text(key.seed_block())
    assert ours.read_seed(path) == key.seed

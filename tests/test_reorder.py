"""The peer endpoint's short wait for an envelope that overtook an earlier one of its link
(bridge/transports/http/reorder.py, PROTOCOL.md §8.7): it goes once the earlier one has been
handed on, never waits past its bound (a lost envelope, a forged seq), and holds no more bytes
than its bound. The daemon-level test is tests/daemon/test_window.py."""

from __future__ import annotations

import asyncio

from bridge.transports.http.reorder import Reorder


def test_an_overtaking_envelope_goes_right_after_the_one_it_overtook() -> None:
    async def scenario() -> list[int]:
        order: list[int] = []
        held: list[int] = []
        reorder = Reorder(wait=30.0, on_hold=lambda: held.append(1))
        await reorder.handed("alpha", 1)  # 2 is due

        async def arrive(seq: int) -> None:
            await reorder.turn("alpha", seq, 100)
            order.append(seq)
            await reorder.handed("alpha", seq)

        third = asyncio.ensure_future(arrive(3))
        await asyncio.sleep(0)
        assert held == [1] and not third.done()  # 3 came first: it waits
        await arrive(2)
        await third
        return order

    assert asyncio.run(scenario()) == [2, 3]


def test_a_first_envelope_and_one_in_turn_never_wait() -> None:
    async def scenario() -> int:
        reorder = Reorder(wait=30.0)
        await reorder.turn("alpha", 7, 10)  # nothing known of alpha yet: at once
        await reorder.handed("alpha", 7)
        await reorder.turn("alpha", 8, 10)  # the one due
        await reorder.turn("alpha", 3, 10)  # an old one (a duplicate): at once
        return reorder.held

    assert asyncio.run(scenario()) == 0


def test_a_lost_or_forged_predecessor_costs_one_bounded_wait_then_the_usual_decision() -> None:
    async def scenario() -> tuple[int, int]:
        reorder = Reorder(wait=0.05)
        await reorder.handed("alpha", 1)
        await reorder.turn("alpha", 10**9, 10)  # returns when the wait runs out
        await reorder.handed("alpha", 10**9)  # out of turn: what is due stays due
        return reorder.held, reorder._due["alpha"]

    assert asyncio.run(scenario()) == (0, 2)


def test_held_bodies_are_bounded_in_bytes() -> None:
    async def scenario() -> bool:
        reorder = Reorder(wait=30.0, max_bytes=1000)
        await reorder.handed("alpha", 1)
        waiting = asyncio.ensure_future(reorder.turn("alpha", 3, 900))
        await asyncio.sleep(0)
        # A second body over the bound is not held: decided at once.
        await asyncio.wait_for(reorder.turn("alpha", 4, 200), timeout=10)
        assert reorder.held == 900
        await reorder.handed("alpha", 2)
        await reorder.handed("alpha", 3)
        await asyncio.wait_for(waiting, timeout=10)
        return reorder.held == 0

    assert asyncio.run(scenario())


def test_a_store_that_moved_on_by_another_way_costs_one_wait_not_one_per_envelope() -> None:
    # Envelopes 2..9 were taken from a carrier file, not through this endpoint: it still
    # expects 2. The first HTTP envelope after waits its bound once; once the engine has
    # decided on it, the next ones go at once.
    async def scenario() -> int:
        holds: list[int] = []
        reorder = Reorder(wait=0.05, on_hold=lambda: holds.append(1))
        await reorder.handed("alpha", 1)
        await reorder.turn("alpha", 10, 10)
        await reorder.handed("alpha", 10)  # out of turn: nothing learnt from that alone
        await reorder.decided("alpha", 10)  # the engine took it: 11 is due
        for seq in (11, 12, 13):
            await reorder.turn("alpha", seq, 10)
            await reorder.handed("alpha", seq)
        return len(holds)

    assert asyncio.run(scenario()) == 1


def test_envelopes_waiting_for_one_refused_over_the_rate_limit_go_at_once() -> None:
    # 2 was refused (429) before its turn: it is not coming in this try, and the sender sends
    # it again only once it has every answer of its window. 3 and 4, waiting for it, go now
    # (a gap each) instead of holding that window for the whole wait; 5 is refused too.
    async def scenario() -> tuple[bool, bool, int]:
        reorder = Reorder(wait=3600.0)  # the bound is never what lets them go here
        await reorder.handed("alpha", 1)  # 2 is due
        waiting = [asyncio.ensure_future(reorder.turn("alpha", seq, 10)) for seq in (3, 4)]
        await asyncio.sleep(0)
        before = any(w.done() for w in waiting)
        await reorder.refused("alpha", 5)  # refused after them: no news of 2
        await asyncio.sleep(0)
        after_5 = any(w.done() for w in waiting)
        await reorder.refused("alpha", 2)
        await asyncio.wait_for(asyncio.gather(*waiting), timeout=60)
        assert not before
        return after_5, reorder._due["alpha"] == 2, reorder.held

    assert asyncio.run(scenario()) == (False, True, 0)


def test_a_refusal_lets_go_only_the_waiters_after_it() -> None:
    # 3 waits for 2; 4 is refused: 3 still waits for 2, and goes when 2 is handed on. A
    # refusal of another sender's envelope lets go none of alpha's.
    async def scenario() -> list[int]:
        order: list[int] = []
        reorder = Reorder(wait=3600.0)
        await reorder.handed("alpha", 1)

        async def arrive(seq: int) -> None:
            await reorder.turn("alpha", seq, 10)
            order.append(seq)

        third = asyncio.ensure_future(arrive(3))
        await asyncio.sleep(0)
        await reorder.refused("alpha", 4)
        await reorder.refused("gamma", 1)
        await asyncio.sleep(0)
        order.append(0)  # nothing went before this
        await reorder.handed("alpha", 2)
        await asyncio.wait_for(third, timeout=60)
        return order

    assert asyncio.run(scenario()) == [0, 3]


def test_an_envelope_arriving_after_its_predecessor_was_refused_does_not_wait_for_it() -> None:
    # The usual order when a burst runs out: 2 is refused (429), then 3 arrives with a token
    # saved since. It goes at once; once 2 comes again and is handed on, 4 waits for 3 again.
    async def scenario() -> tuple[int, bool]:
        holds: list[int] = []
        reorder = Reorder(wait=3600.0, on_hold=lambda: holds.append(1))
        await reorder.handed("alpha", 1)
        await reorder.refused("alpha", 2)
        await asyncio.wait_for(reorder.turn("alpha", 3, 10), timeout=60)  # no hold
        await reorder.handed("alpha", 3)  # out of turn: 2 is still due, still refused
        await asyncio.wait_for(reorder.turn("alpha", 4, 10), timeout=60)  # no hold
        await reorder.handed("alpha", 2)  # 2 came again
        fourth = asyncio.ensure_future(reorder.turn("alpha", 5, 10))
        await asyncio.sleep(0)
        waits = not fourth.done()
        await reorder.handed("alpha", 3)
        await reorder.handed("alpha", 4)
        await asyncio.wait_for(fourth, timeout=60)
        return len(holds), waits

    assert asyncio.run(scenario()) == (1, True)

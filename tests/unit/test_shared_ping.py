"""/health's database check shared by the probes that ask together (core/services/node_status.py):
one ping serves many probes, none takes the outcome of a ping sent before it asked, and a hung ping
neither blocks the probes' deadline nor starts a ping per probe."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.errors import StoreError
from core.services import node_status
from core.services.node_status import SharedPing


class GatedDatabase:
    """A ping that answers only when the test opens its gate (it runs in a thread, as the store's)."""

    def __init__(self) -> None:
        self.gates: list[threading.Event] = []
        self.down = False

    def ping(self) -> None:
        gate = threading.Event()
        self.gates.append(gate)
        failing = self.down  # the database as it was when the ping was sent
        gate.wait(10)
        if failing:
            raise StoreError("database down")


async def until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_probes_that_ask_together_share_one_ping() -> None:
    database = GatedDatabase()
    shared = SharedPing(database.ping)
    probes = [asyncio.create_task(shared.check()) for _ in range(8)]
    await until(lambda: len(database.gates) == 1, "one ping sent")
    database.gates[0].set()
    await asyncio.gather(*probes)
    assert shared.pings == 1


async def test_a_probe_never_takes_a_ping_sent_before_it_asked() -> None:
    database = GatedDatabase()
    shared = SharedPing(database.ping)
    first = asyncio.create_task(shared.check())
    await until(lambda: len(database.gates) == 1, "first ping sent")
    database.down = True  # the database fails after the first ping was sent
    later = [asyncio.create_task(shared.check()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert len(database.gates) == 1  # the later probes wait for the next ping, not this one
    database.gates[0].set()
    await first
    await until(lambda: len(database.gates) == 2, "second ping sent")
    database.gates[1].set()
    results = await asyncio.gather(*later, return_exceptions=True)
    assert all(isinstance(r, StoreError) for r in results)
    assert shared.pings == 2


async def test_a_hung_ping_holds_back_the_next_at_most_the_check_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_status, "DATABASE_CHECK_SECONDS", 0.1)
    database = GatedDatabase()
    shared = SharedPing(database.ping)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await shared.check()  # its ping hangs
    probes = [asyncio.create_task(shared.check()) for _ in range(5)]
    await until(lambda: len(database.gates) == 2, "the next ping sent despite the hung one")
    assert len(database.gates) == 2  # one for all five probes
    for gate in database.gates:
        gate.set()
    await asyncio.gather(*probes)

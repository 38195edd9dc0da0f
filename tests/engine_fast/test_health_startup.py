"""Start-up probing: a new replica is probed at once, then after 20, 40, 80 ms and every 100 ms until it
first passes, so a process that listens a few tens of ms after its start is routed then, not a whole
100 ms poll later; while its port refuses connections in its first half second, every 5 ms; once ready
it is probed at the spec's period."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from core.health import READY, HealthChecker, ProbeResult, ProbeTarget
from core.spec import HealthCheck
from tests.support.clock import FakeClock

CHECK = HealthCheck(periodSeconds=1.0)


class Replica:
    """Answers its probes once ``listening_after`` seconds of fake time have passed since the start."""

    def __init__(self, clock: FakeClock, listening_after: float, refuses: bool = False) -> None:
        """``refuses``: before it listens its port refuses connections (a process not bound yet), else
        the probe fails some other way (an app answering 503 while it warms up)."""
        self.clock = clock
        self.refuses = refuses
        self.started = clock.monotonic()
        self.listening_after = listening_after
        self.probed_at: list[float] = []  # seconds after the start, rounded to the millisecond

    async def probe(
        self, host: str, port: int, check: HealthCheck | None, container_port: int | None
    ) -> ProbeResult:
        elapsed = self.clock.monotonic() - self.started
        self.probed_at.append(round(elapsed, 3))
        if elapsed >= self.listening_after:
            return ProbeResult(True, "200")
        if self.refuses:
            return ProbeResult(False, "connection refused", refused=True)
        return ProbeResult(False, "GET /health → 503")


async def run(listening_after: float, seconds: float, refuses: bool = False) -> tuple[Replica, list[float]]:
    clock = FakeClock()
    replica = Replica(clock, listening_after, refuses)
    ready_at: list[float] = []

    async def on_transition(target: ProbeTarget, transition: str, detail: str) -> None:
        if transition == READY:
            ready_at.append(round(clock.monotonic() - replica.started, 3))

    checker = HealthChecker(on_transition, probe=replica.probe, clock=clock)
    checker.track(
        ProbeTarget(app="web", slot=1, container_id="c1", host="127.0.0.1", port=20001, check=CHECK)
    )
    try:
        for _ in range(5):  # the probe loop's task starts and probes at once, before time moves
            await asyncio.sleep(0)
        for _ in range(round(seconds / 0.005)):
            await clock.advance(0.005)
            await asyncio.sleep(0)
    finally:
        await checker.close()
    return replica, ready_at


async def test_a_replica_listening_30_ms_after_its_start_is_ready_at_the_third_probe() -> None:
    replica, ready_at = await run(listening_after=0.03, seconds=0.2)
    assert replica.probed_at[:3] == [0.0, 0.02, 0.06]
    assert ready_at == [0.06]  # a flat 100 ms start-up poll would have said so at 0.1


async def test_start_up_probes_back_off_to_every_100_ms_then_the_period_once_ready() -> None:
    replica, ready_at = await run(listening_after=0.5, seconds=2.0)
    assert replica.probed_at[:8] == [0.0, 0.02, 0.06, 0.14, 0.24, 0.34, 0.44, 0.54]
    assert ready_at == [0.54]
    assert replica.probed_at[8:] == [1.54]  # then every periodSeconds


async def test_a_replica_whose_port_refuses_until_28_ms_is_ready_within_5_ms_of_listening() -> None:
    replica, ready_at = await run(listening_after=0.028, seconds=0.2, refuses=True)
    assert replica.probed_at[:7] == [0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03]
    assert ready_at == [0.03]  # the back-off's third probe would have said so at 0.06


def gaps(times: list[float]) -> list[float]:
    return [round(later - earlier, 3) for earlier, later in itertools.pairwise(times)]


async def test_refused_probes_go_back_to_the_back_off_after_half_a_second() -> None:
    replica, ready_at = await run(listening_after=1.0, seconds=1.5, refuses=True)
    fast = [at for at in replica.probed_at if at < 0.5]
    assert len(fast) == 100 and set(gaps(fast)) == {0.005}  # every 5 ms in the first half second
    late = [at for at in replica.probed_at if at > 0.5]
    assert gaps(late[:5]) == [0.02, 0.04, 0.08, 0.1]  # then the back-off, as for any failure
    assert ready_at and 1.0 <= ready_at[0] <= 1.1


async def test_a_closed_port_is_reported_refused() -> None:
    """What sets the fast pace: a real probe of a loopback port nothing listens on says it was refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    checker = HealthChecker(lambda *_: asyncio.sleep(0))
    try:
        http = await checker.probe("127.0.0.1", port, CHECK)
        tcp = await checker.probe("127.0.0.1", port, None)
    finally:
        await checker.close()
    assert (http.ok, http.refused) == (False, True)
    assert (tcp.ok, tcp.refused) == (False, True)


class SlackRecordingClock(FakeClock):
    """A FakeClock that records the slack of each sleep, by the probe it follows."""

    def __init__(self) -> None:
        super().__init__()
        self.slacks: list[float] = []

    async def sleep(self, seconds: float, slack: float = 0.0) -> None:
        self.slacks.append(slack)
        await super().sleep(seconds, slack)


async def test_only_a_ready_replicas_probes_may_come_a_little_late_to_share_a_wakeup() -> None:
    """Start-up probes keep their exact pace (they decide how soon a new replica is routed); once ready, a
    probe may come up to 5 % of the period late, at most 0.25 s, so a fleet's probes share the event
    loop's wakeups."""
    for period, slack in ((1.0, 0.05), (10.0, 0.25), (0.1, 0.005)):
        clock = SlackRecordingClock()
        replica = Replica(clock, listening_after=0.05)
        checker = HealthChecker(lambda *_: asyncio.sleep(0), probe=replica.probe, clock=clock)
        check = HealthCheck(periodSeconds=period)
        checker.track(
            ProbeTarget(app="web", slot=1, container_id="c1", host="127.0.0.1", port=20001, check=check)
        )
        try:
            for _ in range(5):
                await asyncio.sleep(0)
            for _ in range(round((0.2 + 2 * period) / 0.005)):
                await clock.advance(0.005)
                await asyncio.sleep(0)
        finally:
            await checker.close()
        starting = [at for at in replica.probed_at if at < 0.06]
        assert clock.slacks[: len(starting)] == [0.0] * len(starting)  # the pauses after failing probes
        ready = clock.slacks[len(starting) :]
        assert ready and ready == pytest.approx([slack] * len(ready))
        assert len(replica.probed_at) > len(starting) + 1

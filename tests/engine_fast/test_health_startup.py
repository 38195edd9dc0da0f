"""Start-up probing: a new replica is probed at once, then after 20, 40, 80 ms and every 100 ms until it
first passes, so a process that listens a few tens of ms after its start is routed then, not a whole
100 ms poll later; once ready it is probed at the spec's period."""

from __future__ import annotations

import asyncio

from core.health import READY, HealthChecker, ProbeResult, ProbeTarget
from core.spec import HealthCheck
from tests.support.clock import FakeClock

CHECK = HealthCheck(periodSeconds=1.0)


class Replica:
    """Answers its probes once ``listening_after`` seconds of fake time have passed since the start."""

    def __init__(self, clock: FakeClock, listening_after: float) -> None:
        self.clock = clock
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
        return ProbeResult(False, "connection refused")


async def run(listening_after: float, seconds: float) -> tuple[Replica, list[float]]:
    clock = FakeClock()
    replica = Replica(clock, listening_after)
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

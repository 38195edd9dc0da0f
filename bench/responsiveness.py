"""Speed claims the tests used to assert with wall-clock thresholds, printed as figures instead.

The tests keep the behaviour (health answers while Docker is gone, a stalled subscriber never blocks
publishing, SIGTERM reaches httpd, the bearer token goes through compare_digest); this script says
how fast, on this machine, right now:

* ``Engine.health()`` and ``Engine.get_app()`` while the Docker engine does not answer, the engine's
  CPU share over that outage and the worst event-loop lag (tests/chaos/test_dockerd_restart.py and
  tests/integration/test_engine_resilience.py used to assert < 0.5 s, < 25 % of a core, < 1 s);
* publishing 10 000 events to a subscriber that never reads (tests/unit/test_events.py: < 2 s);
* stopping a demo replica with ``init=True`` (tests/integration/test_demo_image.py: < 1 s);
* the bearer-token compare for a far and a near miss (tests/api/test_auth.py: a median difference).

    .venv/bin/python bench/responsiveness.py [--outage-seconds 5]

Needs Docker and the demo image for the stop figure.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.api.auth import token_matches  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.events import EventBus  # noqa: E402
from core.models import Event  # noqa: E402
from core.runtime.docker import DockerRuntime  # noqa: E402
from testkit.harness import DEMO_IMAGE, engine_settings  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


async def timed(awaitable: object) -> float:
    started = time.perf_counter()
    await awaitable  # type: ignore[misc]
    return time.perf_counter() - started


async def docker_outage(seconds: float) -> None:
    runtime = DockerRuntime("unix:///tmp/orchestry-bench-no-docker.sock")
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(engine_settings(Path(tmp) / "state"), runtime=runtime)
        await engine.start()
        worst_lag = 0.0

        async def watch_lag() -> None:
            nonlocal worst_lag
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.05)
                worst_lag = max(worst_lag, time.perf_counter() - before - 0.05)

        watcher = asyncio.create_task(watch_lag())
        try:
            cpu_before, wall_before = time.process_time(), time.monotonic()
            health, listing = [], []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                health.append(await timed(engine.health()))
                listing.append(await timed(engine.list_apps()))
                await asyncio.sleep(0.2)
            cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        finally:
            watcher.cancel()
            await engine.stop()
    print(f"Docker unreachable for {seconds:g} s (engine in this process, sampling every 0.2 s):")
    print(f"  health()     median {ms(statistics.median(health))}   max {ms(max(health))}")
    print(f"  list_apps()  median {ms(statistics.median(listing))}   max {ms(max(listing))}")
    print(f"  CPU {cpu_share:.1%} of a core (includes this script's polling); worst loop lag {ms(worst_lag)}")


async def stalled_subscriber() -> None:
    bus = EventBus()
    stalled = bus.subscribe(maxsize=100)
    started = time.perf_counter()
    for n in range(10_000):
        bus.publish(Event(id=n, app="web", category="lifecycle", kind="k", message="m", details={},
                          timestamp=float(n)))  # fmt: skip
    took = time.perf_counter() - started
    stalled.close()
    print(f"10 000 events published past a stalled subscriber: {ms(took)} ({stalled.dropped} dropped)")


def demo_stop() -> None:
    import docker

    client = docker.from_env()
    try:
        container = client.containers.run(
            DEMO_IMAGE, ["/bin/serve"], name=f"bench-stop-{uuid.uuid4().hex[:6]}", detach=True, init=True,
            network_mode="host", environment={"PORT": "0", "BIND_HOST": "127.0.0.1"},
        )  # fmt: skip
    except docker.errors.DockerException as exc:
        print(f"demo replica stop: skipped ({exc})")
        return
    try:
        time.sleep(0.5)
        started = time.perf_counter()
        container.stop(timeout=10)
        print(f"demo replica stop with init=True: {ms(time.perf_counter() - started)}")
    finally:
        container.remove(force=True)
        client.close()


def token_compare() -> None:
    token = uuid.uuid4().hex * 2

    def median(candidate: str) -> float:
        header = f"Bearer {candidate}"
        samples = []
        for _ in range(2000):
            started = time.perf_counter_ns()
            token_matches(header, token)
            samples.append(time.perf_counter_ns() - started)
        return statistics.median(samples)

    far, near = median("x" * len(token)), median(token[:-1] + "x")
    print(f"token compare: far miss {far:.0f} ns, near miss {near:.0f} ns (ratio {near / far:.2f})")


async def main(outage_seconds: float) -> None:
    await docker_outage(outage_seconds)
    await stalled_subscriber()
    await asyncio.to_thread(demo_stop)
    token_compare()


if __name__ == "__main__":
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--outage-seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args().outage_seconds))

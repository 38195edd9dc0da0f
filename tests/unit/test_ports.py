"""PortAllocator hands out ports that a replica can really bind on 127.0.0.1."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from core.runtime.memory import MemoryPorts
from core.runtime.ports import PortAllocator, PortsExhausted, port_is_free


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a kernel-chosen 127.0.0.1 port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_allocated_port_is_in_range_and_bindable() -> None:
    allocator = PortAllocator()
    port = allocator.allocate(set())
    assert 20000 <= port <= 29999
    assert bindable(port)


# The fixed ranges below lie outside the engines' replica range (20000-29999: replicas of other tests,
# or of another test run on this machine, bind there at any moment) and above the kernel's usual
# ephemeral range (32768-60999: outgoing connections and kernel-chosen ports), so nothing else takes
# one of their ports between the test's look and its claim.
OCCUPIED_RANGE = (64100, 64119)
EXCLUDED_RANGE = (64200, 64209)
RECENT_RANGE = (64300, 64309)


def occupy_all_but_one(low: int, high: int) -> tuple[list[socket.socket], int]:
    """Listen on every free port of [low, high] except one; returns the listeners and that port."""
    free = [p for p in range(low, high + 1) if port_is_free(p)]
    assert free, f"test needs a free port in {low}-{high}"
    keep = free[len(free) // 2]
    listeners = []
    for port in free:
        if port != keep:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # another process took it since the look: it is just as busy
                sock.close()
                continue
            sock.listen()
            listeners.append(sock)
    return listeners, keep


def test_ports_in_use_are_never_returned(listener: socket.socket) -> None:
    assert not port_is_free(listener.getsockname()[1])
    listeners, only_free = occupy_all_but_one(*OCCUPIED_RANGE)
    try:
        allocator = PortAllocator(*OCCUPIED_RANGE)
        assert {allocator.allocate(set()) for _ in range(5)} == {only_free}
    finally:
        for sock in listeners:
            sock.close()


def test_excluded_ports_are_skipped() -> None:
    low, high = EXCLUDED_RANGE
    allocator = PortAllocator(low, high, rng=random.Random(1))
    free = [p for p in range(low, high + 1) if port_is_free(p)]
    assert len(free) >= 2, f"test needs two free ports in {low}-{high}"
    wanted = free[-1]
    port = allocator.allocate(set(range(low, high + 1)) - {wanted})
    assert port == wanted


def test_successive_allocations_differ_without_exclude() -> None:
    allocator = PortAllocator()
    ports = {allocator.allocate(set()) for _ in range(20)}
    assert len(ports) == 20


def test_start_is_randomised_so_parallel_engines_spread_out() -> None:
    firsts = {PortAllocator().allocate(set()) for _ in range(10)}
    assert len(firsts) > 1


def test_exhausted_range_raises_a_message_naming_the_range_and_fix(listener: socket.socket) -> None:
    busy = listener.getsockname()[1]
    allocator = PortAllocator(busy, busy)
    with pytest.raises(PortsExhausted) as caught:
        allocator.allocate(set())
    assert f"{busy}-{busy}" in str(caught.value)
    assert "widen the port range" in str(caught.value)


def test_all_excluded_raises() -> None:
    allocator = PortAllocator(22000, 22002)
    with pytest.raises(PortsExhausted):
        allocator.allocate({22000, 22001, 22002})


def test_recent_port_is_reused_only_when_nothing_else_is_free() -> None:
    listeners, only_free = occupy_all_but_one(*RECENT_RANGE)
    try:
        allocator = PortAllocator(*RECENT_RANGE)
        assert allocator.allocate(set()) == only_free
        # Its replica never bound it and nothing else is free: handing it out again beats failing.
        assert allocator.allocate(set()) == only_free
        allocator.release(only_free)
        assert allocator.allocate(set()) == only_free
    finally:
        for sock in listeners:
            sock.close()


def test_held_ports_are_those_handed_out_and_not_released() -> None:
    allocator = PortAllocator()
    first, second = allocator.allocate(), allocator.allocate()
    assert allocator.held() == {first, second}
    allocator.release(first)
    assert allocator.held() == {second}


def test_memory_ports_keep_the_same_record() -> None:
    """The in-memory runtime's ports show a port the engine forgot to release, as the real ones do."""
    allocator = MemoryPorts(10000, 10009)
    first = allocator.allocate()
    assert allocator.held() == {first}
    allocator.release(first)
    assert allocator.held() == frozenset()


@pytest.mark.parametrize(("low", "high"), [(0, 10), (100, 99), (65535, 65536)])
def test_invalid_range_is_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="invalid"):
        PortAllocator(low, high)

"""Free 127.0.0.1 ports for replicas in host networking mode.

The engine assigns each replica a port and passes it as ``PORT``; the replica binds it itself, so the
allocator can only check that nothing listens there *now*.  ``exclude`` covers ports already handed to
replicas that may not have bound yet.  A randomised starting point keeps parallel engines (and parallel
test runs) on one host from all picking the same first port.
"""

from __future__ import annotations

import errno
import itertools
import random
import socket
import threading
from collections import deque
from collections.abc import Container

from core.errors import OrchestryError

DEFAULT_LOW = 20000
DEFAULT_HIGH = 29999


class PortsExhausted(OrchestryError):
    """Every port of the range is taken or excluded."""

    http_status = 503


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound right now.

    SO_REUSEADDR stays off on purpose: with it, a port in TIME_WAIT would look free although a server
    binding it without SO_REUSEADDR could still fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


class PortAllocator:
    """Hands out 127.0.0.1 ports from ``[low, high]`` that are neither bound nor excluded."""

    # How many recent hand-outs to steer clear of: two callers racing before either replica binds
    # must still get different ports, but the engine's ``exclude`` set is the real record.
    RECENT_LIMIT = 64

    def __init__(
        self, low: int = DEFAULT_LOW, high: int = DEFAULT_HIGH, rng: random.Random | None = None
    ) -> None:
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"port range {low}-{high} is invalid: need 1 <= low <= high <= 65535")
        self.low = low
        self.high = high
        self._rng = rng or random.Random()
        self._recent: deque[int] = deque(maxlen=self.RECENT_LIMIT)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self.high - self.low + 1

    def allocate(self, exclude: Container[int] = frozenset()) -> int:
        """A free port not in ``exclude``; raises PortsExhausted when the whole range is taken.

        Ports this allocator returned recently are avoided while others are free, and used only when
        nothing else is left (their replica may have gone without ``release``).
        """
        with self._lock:
            start = self._rng.randrange(self.size)
            recent = set(self._recent)
            # Walked lazily: a hand-out usually stops at its first candidate, and building the whole
            # range as lists cost ~10 ms of event loop per replica (a scale by ten: 0.1 s before the
            # last create even reached Docker).
            candidates = (self.low + (start + offset) % self.size for offset in range(self.size))
            fresh = (p for p in candidates if p not in recent)
            for port in itertools.chain(
                fresh, sorted(recent, key=lambda p: (p - self.low - start) % self.size)
            ):
                if port not in exclude and port_is_free(port):
                    self._recent.append(port)
                    return port
        raise PortsExhausted(
            f"no free 127.0.0.1 port in {self.low}-{self.high}: stop unused apps or widen the port range"
        )

    def release(self, port: int) -> None:
        """Forget a port handed out earlier (its replica is gone)."""
        with self._lock:
            if port in self._recent:
                self._recent.remove(port)

    def held(self) -> frozenset[int]:
        """Ports handed out recently and not released since: steered clear of while others are free.
        A port its holder gave up without ``release`` stays here until newer hand-outs push it out."""
        with self._lock:
            return frozenset(self._recent)

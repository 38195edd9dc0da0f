"""When the console's process collects its garbage: where no key waits for it.

A full (generation 2) collection walks every object the collector tracks, with the event loop stopped.
At 1,000 replicas that is about 240,000 objects (half of them the program itself: functions, classes,
modules; then the engine's replicas, health tasks, metric windows and store, then the console's widgets
and render caches), 0.15-0.4 s a collection, and the keys pressed meanwhile waited that long.  Python
starts one whenever enough objects have lived long enough, and each refresh's views live two seconds:
long enough.

So, while the console runs:

- what is alive once the first frame is shown, and then at most every ``REFREEZE_SECONDS`` when no
  input came for a while, is collected once and then frozen (``gc.freeze``): later collections walk only
  what was made since, a few milliseconds instead of hundreds.  A frozen object is still freed when its
  last reference goes; only one that ends in a reference cycle waits for the next refreeze, which
  collects everything, so memory stays bounded.
- Python's automatic full collections come only as a backstop (``BACKSTOP_COLLECTIONS``, 10× its own
  threshold); the console's one-second clock runs one instead when the default threshold is reached
  and no key or mouse input came for ``QUIET_SECONDS``.

Freezing alone (tried before) made pauses more frequent: Python also waits until the survivors of
younger collections reach a quarter of what its oldest generation holds, and with that generation
frozen nearly empty every 11th collection of generation 1 qualified (under keys at 1,000 replicas, 7
full collections in 10 s instead of 4).  Here the console picks the moments, so that rule no longer
paces them.  On exit Python's own thresholds come back and what was frozen is unfrozen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Protocol

# No key or mouse input for this long: a collection now delays no press a person is making.
QUIET_SECONDS = 2.0
# Python's default: a full collection is due after 10 collections of generation 1.
DUE_COLLECTIONS = 10
# Without a quiet moment (keys held down, a script typing): Python's own collection after this many.
BACKSTOP_COLLECTIONS = 100
# The deep collection (everything, frozen objects too) at most this often; each costs what a full
# collection cost before freezing (0.15-0.4 s at 1,000 replicas), only when input is quiet.
REFREEZE_SECONDS = 300.0


class Collector(Protocol):
    """The parts of the ``gc`` module used here (tests pass a recorder)."""

    def get_threshold(self) -> tuple[int, int, int]: ...
    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ..., /) -> None: ...
    def get_count(self) -> tuple[int, int, int]: ...
    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...


class CollectionPacer:
    """The console calls ``start`` when mounted, ``input_seen`` on each key or mouse event, ``tick`` once
    a second after its first data frame, and ``stop`` when it exits."""

    def __init__(self, collector: Collector = gc, clock: Callable[[], float] = time.monotonic) -> None:
        self._gc = collector
        self._clock = clock
        self._thresholds: tuple[int, int, int] | None = None  # Python's own, while the console runs
        self._frozen_at: float | None = None
        self._last_input = float("-inf")
        self.collections = 0  # full collections run here (deep ones included)
        self.deep_collections = 0
        self.pause_seconds = 0.0  # the loop stopped for them, in all

    def start(self) -> None:
        if self._thresholds is not None:
            return
        self._thresholds = self._gc.get_threshold()
        young, middle, _full = self._thresholds
        self._gc.set_threshold(young, middle, BACKSTOP_COLLECTIONS)

    def input_seen(self) -> None:
        self._last_input = self._clock()

    def tick(self) -> str | None:
        """Collect when it is due and input is quiet: "deep" (collected everything and froze what is
        left), "full" (what was made since), or None."""
        if self._thresholds is None:
            return None
        now = self._clock()
        if now - self._last_input < QUIET_SECONDS:
            return None
        started = time.perf_counter()
        if self._frozen_at is None or now - self._frozen_at >= REFREEZE_SECONDS:
            self._gc.unfreeze()
            self._gc.collect()
            self._gc.freeze()
            self._frozen_at = now
            self.deep_collections += 1
            done = "deep"
        elif self._gc.get_count()[2] >= DUE_COLLECTIONS:
            self._gc.collect()
            done = "full"
        else:
            return None
        self.collections += 1
        self.pause_seconds += time.perf_counter() - started
        return done

    def stop(self) -> None:
        """Python's own thresholds back and nothing left frozen: a process that goes on (tests, benches)
        collects as before."""
        if self._frozen_at is not None:
            self._gc.unfreeze()
            self._frozen_at = None
        if self._thresholds is not None:
            self._gc.set_threshold(*self._thresholds)
            self._thresholds = None

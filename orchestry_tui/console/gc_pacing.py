"""When the console's process collects its garbage: never a walk of everything while keys come.

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
  last reference goes; only one that ends in a reference cycle waits for the next deep collection, which
  collects everything, so memory stays bounded.
- the console's one-second clock runs a full collection when one is due (``DUE_COLLECTIONS``), keys or
  no keys, and freezes what survives it: the next one walks only what was made since this one (10-30
  ms of CPU at 1,000 replicas, where one waiting for quiet input walked everything made since the deep
  collection, and under nonstop keys never came: Python's backstop did, 0.2-0.5 s).  Without the
  refreeze each walked more than the last (30 → 70 ms in 40 s).  Python's automatic full collections
  are left only as that backstop (``BACKSTOP_COLLECTIONS``), which the clock now keeps ahead of.  The
  price: what froze and later ends in a cycle (a Textual strip that caches itself, evicted from a
  render cache) waits for the deep collection, about 600 objects a second at 1,000 replicas.
- the deep collection (0.15-0.4 s) is the only one that waits for ``QUIET_SECONDS`` without input;
  under input that never pauses it comes anyway after ``OVERDUE_SECONDS``.  Until the first one, a due
  collection under keys only freezes (it would walk everything): what was garbage then waits for it.

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

# No key or mouse input for this long: a deep collection now delays no press a person is making.
QUIET_SECONDS = 2.0
# A full collection is due after this many collections of generation 1 (Python's default is 10): each
# one then frees and walks a third as much, 10-30 ms of CPU at 1,000 replicas on a loaded host instead
# of 50-75 ms (most of it freeing cycles: Textual strips that cache themselves, cancelled waits).
DUE_COLLECTIONS = 3
# Should the clock fall behind (a loop stopped for seconds): Python's own collection after this many.
BACKSTOP_COLLECTIONS = 100
# The deep collection (everything, frozen objects too) at most this often; each costs what a full
# collection cost before freezing (0.15-0.4 s at 1,000 replicas), only when input is quiet.
REFREEZE_SECONDS = 300.0
# Input that never pauses for QUIET_SECONDS (a script typing, a key held down): the deep collection
# anyway after this long, so what froze and then ended in a reference cycle is freed all the same.
OVERDUE_SECONDS = 600.0


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
        self._frozen = False
        self._deep_at: float | None = None  # the last deep collection
        self._started_at = 0.0
        self._last_input = float("-inf")
        self.collections = 0  # full collections run here (deep ones included)
        self.deep_collections = 0
        self.pause_seconds = 0.0  # the loop stopped for them, in all

    def start(self) -> None:
        if self._thresholds is not None:
            return
        self._thresholds = self._gc.get_threshold()
        self._started_at = self._clock()
        young, middle, _full = self._thresholds
        self._gc.set_threshold(young, middle, BACKSTOP_COLLECTIONS)

    def input_seen(self) -> None:
        self._last_input = self._clock()

    def tick(self) -> str | None:
        """Collect when it is due: "deep" (everything, frozen objects too, then froze what is left: only
        when input is quiet or the last one is overdue), "full" (what was made since the last freeze,
        then froze what is left), "freeze" (due under keys before any deep collection: froze only), or
        None."""
        if self._thresholds is None:
            return None
        now = self._clock()
        quiet = now - self._last_input >= QUIET_SECONDS
        deep_due = self._deep_at is None or now - self._deep_at >= REFREEZE_SECONDS
        overdue = now - (self._started_at if self._deep_at is None else self._deep_at) >= OVERDUE_SECONDS
        started = time.perf_counter()
        if deep_due and (quiet or overdue):
            self._gc.unfreeze()
            self._gc.collect()
            self._deep_at = now
            self.deep_collections += 1
            done = "deep"
        elif self._gc.get_count()[2] < DUE_COLLECTIONS:
            return None
        elif not self._frozen:
            # Keys since the first frame: a collection now would walk everything (0.15-0.4 s), a
            # freeze is a pointer swap.  The deep collection at the first quiet moment frees what
            # was garbage here.
            self._gc.freeze()
            self._frozen = True
            return "freeze"
        else:
            self._gc.collect()
            done = "full"
        # What survived goes where no later collection but the deep one walks it; freeze empties the
        # young generations too, so Python's count starts again from nothing.
        self._gc.freeze()
        self._frozen = True
        self.collections += 1
        self.pause_seconds += time.perf_counter() - started
        return done

    def stop(self) -> None:
        """Python's own thresholds back and nothing left frozen: a process that goes on (tests, benches)
        collects as before."""
        if self._frozen:
            self._gc.unfreeze()
            self._frozen = False
            self._deep_at = None
        if self._thresholds is not None:
            self._gc.set_threshold(*self._thresholds)
            self._thresholds = None

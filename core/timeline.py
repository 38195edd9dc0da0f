"""Where a replica's start-up time goes: one timestamp per stage per replica, for benches and diagnosis.

Off unless someone hands a ``ReplicaTimeline`` to the reconciler (``Reconciler.record_timeline``); then
the reconciler, the health checker and the runtime each mark the stages they see.  Marks come from the
event loop and from the Docker pool's threads, so a mark is one list append (atomic under the GIL) and
costs nothing when no timeline is set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The stages of one replica's start, in the order they happen.
PLANNED = "planned"  # a reconcile pass decided to create it
CREATED = "created"  # Docker created the container
STARTED = "started"  # Docker started it
FIRST_PROBE = "first_probe"  # its first health probe answered (pass or fail)
PASSED = "passed"  # its first passing probe (it turns ready)
ROUTED = "routed"  # nginx serves a configuration that includes it (the reload is done)
STAGES = (PLANNED, CREATED, STARTED, FIRST_PROBE, PASSED, ROUTED)


@dataclass
class ReplicaTimeline:
    """``(replica name, stage) → time.perf_counter()`` of the first such mark since the last ``clear``."""

    marks: list[tuple[str, str, float]] = field(default_factory=list)

    def mark(self, replica: str, stage: str) -> None:
        self.marks.append((replica, stage, time.perf_counter()))

    def clear(self) -> None:
        self.marks = []

    def by_replica(self) -> dict[str, dict[str, float]]:
        """Each replica's stages → the time of its first mark of that stage."""
        out: dict[str, dict[str, float]] = {}
        for replica, stage, at in list(self.marks):
            out.setdefault(replica, {}).setdefault(stage, at)
        return out

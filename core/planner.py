"""Pure planning: desired replica count + what runs now → which slots to create and which to remove.

Slots are stable identities (container ``<app>-<slot>``) but need not be contiguous: a rolling
replacement surges into the lowest free slot, waits until that replica is ready, then drains an
outdated one, so ready capacity never drops below the desired count and no slot is ever served by two
containers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SlotState:
    slot: int
    container_id: str
    ready: bool
    outdated: bool  # runs an older spec, or a restart was requested
    # Its node is being drained: every such replica is replaced at once (each keeps serving until
    # its replacement is ready), where an update or restart rolls one replica at a time.
    moving: bool = False


@dataclass(frozen=True)
class Plan:
    create: list[int] = field(default_factory=list)  # slots to start
    remove: list[str] = field(default_factory=list)  # container ids to drain and stop
    waiting: str = ""  # why nothing more can happen now (for status lines and tests)

    @property
    def empty(self) -> bool:
        return not self.create and not self.remove


def _free_slots(used: set[int], count: int) -> list[int]:
    slots: list[int] = []
    candidate = 1
    while len(slots) < count:
        if candidate not in used:
            slots.append(candidate)
        candidate += 1
    return slots


def plan(
    desired: int,
    live: list[SlotState],
    occupied_slots: set[int],
    backoff_slots: set[int],
    can_create: bool = True,
) -> Plan:
    """Decide the next actions.

    ``live``: running replicas that are not draining.  ``occupied_slots``: every slot that still has a
    container (live, draining or dead but not yet removed).  ``backoff_slots``: slots waiting out a
    crash back-off; they count as pending replicas so a crash loop is never bypassed by using another
    slot.  ``can_create`` is False while the app is blocked (missing image, missing secret).
    """
    excess = len(live) - desired
    outdated = [r for r in live if r.outdated]
    rolling = bool(outdated) and desired > 0

    if excess > 0:
        ready_count = sum(1 for r in live if r.ready)

        # Removal order: not-ready outdated, not-ready current (kept while rolling: it is the surge),
        # ready outdated, ready current from the highest slot down.
        def order(r: SlotState) -> tuple[int, int]:
            if not r.ready:
                return (0 if r.outdated else 1, -r.slot)
            return (2 if r.outdated else 3, -r.slot)

        candidates = sorted((r for r in live if not (rolling and not r.ready and not r.outdated)), key=order)
        remove: list[str] = []
        for r in candidates:
            if len(remove) == excess:
                break
            if r.ready:
                if ready_count - 1 < desired:
                    continue  # would drop ready capacity below the desired count
                ready_count -= 1
            remove.append(r.container_id)
        waiting = "" if remove else "waiting for the new replica to become ready"
        return Plan(remove=remove, waiting=waiting)

    if not can_create:
        return Plan(waiting="app is blocked")

    missing = desired - len(live) - len(backoff_slots)
    if missing > 0:
        return Plan(create=_free_slots(occupied_slots | backoff_slots, missing))

    if rolling and not backoff_slots:
        starting = sum(1 for r in live if not r.outdated and not r.ready)
        surge = max(1, sum(1 for r in outdated if r.moving))
        if starting >= surge:
            return Plan(waiting="waiting for the new replica to become ready")
        return Plan(create=_free_slots(occupied_slots, surge - starting))

    if backoff_slots and len(live) < desired:
        return Plan(waiting="waiting out crash back-off")
    return Plan()

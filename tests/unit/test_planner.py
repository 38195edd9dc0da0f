from core.planner import SlotState, plan


def replicas(*specs: tuple[int, bool, bool]) -> list[SlotState]:
    return [SlotState(slot=s, container_id=f"c{s}", ready=r, outdated=o) for s, r, o in specs]


def test_scale_out_fills_lowest_free_slots() -> None:
    live = replicas((1, True, False), (3, True, False))
    p = plan(4, live, occupied_slots={1, 3}, backoff_slots=set())
    assert p.create == [2, 4]
    assert p.remove == []


def test_scale_in_removes_highest_ready_slots_and_keeps_desired() -> None:
    live = replicas(*[(s, True, False) for s in range(1, 6)])
    p = plan(1, live, occupied_slots={1, 2, 3, 4, 5}, backoff_slots=set())
    assert sorted(p.remove) == ["c2", "c3", "c4", "c5"]


def test_scale_in_prefers_not_ready_replicas() -> None:
    live = replicas((1, True, False), (2, False, False), (3, True, False))
    p = plan(2, live, occupied_slots={1, 2, 3}, backoff_slots=set())
    assert p.remove == ["c2"]


def test_down_removes_everything() -> None:
    live = replicas((1, True, False), (2, False, True))
    p = plan(0, live, occupied_slots={1, 2}, backoff_slots=set())
    assert sorted(p.remove) == ["c1", "c2"]


def test_rolling_surges_one_then_waits_for_it() -> None:
    live = replicas((1, True, True), (2, True, True))
    first = plan(2, live, occupied_slots={1, 2}, backoff_slots=set())
    assert first.create == [3] and first.remove == []
    surging = live + replicas((3, False, False))
    second = plan(2, surging, occupied_slots={1, 2, 3}, backoff_slots=set())
    assert second.empty and "ready" in second.waiting
    ready = live + replicas((3, True, False))
    third = plan(2, ready, occupied_slots={1, 2, 3}, backoff_slots=set())
    assert len(third.remove) == 1 and third.remove[0] in {"c1", "c2"}


def test_rolling_never_drops_ready_capacity_below_desired() -> None:
    live = replicas((1, True, True), (2, True, True), (3, False, False))
    p = plan(2, live, occupied_slots={1, 2, 3}, backoff_slots=set())
    assert p.remove == []


def test_crash_backoff_slot_is_not_bypassed_by_another_slot() -> None:
    live = replicas((2, True, False))
    p = plan(2, live, occupied_slots={2}, backoff_slots={1})
    assert p.create == [] and "back-off" in p.waiting


def test_blocked_app_creates_nothing() -> None:
    p = plan(3, [], occupied_slots=set(), backoff_slots=set(), can_create=False)
    assert p.empty and p.waiting == "app is blocked"


def test_slot_of_dead_container_is_not_reused_until_removed() -> None:
    p = plan(2, replicas((1, True, False)), occupied_slots={1, 2}, backoff_slots=set())
    assert p.create == [3]


def test_replicas_of_a_draining_node_are_replaced_together_and_removed_as_replacements_get_ready() -> None:
    staying = [SlotState(slot=s, container_id=f"c{s}", ready=True, outdated=False) for s in (1, 2)]
    moving = [SlotState(slot=s, container_id=f"c{s}", ready=True, outdated=True, moving=True) for s in (3, 4)]
    first = plan(4, staying + moving, occupied_slots={1, 2, 3, 4}, backoff_slots=set())
    assert first.create == [5, 6] and first.remove == []
    one_ready = [*staying, *moving, *replicas((5, True, False), (6, False, False))]
    second = plan(4, one_ready, occupied_slots={1, 2, 3, 4, 5, 6}, backoff_slots=set())
    assert second.create == [] and len(second.remove) == 1 and second.remove[0] in {"c3", "c4"}
    both_starting = [*staying, *moving, *replicas((5, False, False), (6, False, False))]
    assert plan(4, both_starting, occupied_slots={1, 2, 3, 4, 5, 6}, backoff_slots=set()).empty

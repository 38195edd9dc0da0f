"""When the console collects garbage: due full collections on its clock, keys or not, each freezing what
survives it so the next walks only what is new; the deep one (everything) waits for quiet input; Python
gets its own collector back when the console exits."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from textual import events

from orchestry_tui.console import gc_pacing
from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.fixed_backend import sample_backend
from orchestry_tui.console.gc_pacing import CollectionPacer
from tests.tui.conftest import until


class Recorder:
    """The gc module's calls, recorded; ``count`` is what get_count reports."""

    def __init__(self) -> None:
        self.threshold = (700, 10, 10)
        self.count = (0, 0, 0)
        self.calls: list[str] = []

    def get_threshold(self) -> tuple[int, int, int]:
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int = 10, threshold2: int = 10, /) -> None:
        self.threshold = (threshold0, threshold1, threshold2)

    def get_count(self) -> tuple[int, int, int]:
        return self.count

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect")
        self.count = (0, 0, 0)
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_deep_collections_wait_for_quiet_input_and_python_gets_its_thresholds_back() -> None:
    collector, clock = Recorder(), Clock()
    pacer = CollectionPacer(collector, clock)
    pacer.start()
    assert collector.threshold == (700, 10, gc_pacing.BACKSTOP_COLLECTIONS)  # Python's only as a backstop

    pacer.input_seen()
    clock.now += gc_pacing.QUIET_SECONDS / 2
    assert pacer.tick() is None and collector.calls == []  # a person is at the keys, nothing due

    clock.now += gc_pacing.QUIET_SECONDS
    assert pacer.tick() == "deep"  # the first quiet second: collect everything, freeze what is left
    assert collector.calls == ["unfreeze", "collect", "freeze"]

    collector.calls.clear()
    collector.count = (0, 0, gc_pacing.DUE_COLLECTIONS - 1)
    clock.now += 1
    assert pacer.tick() is None  # not due yet
    collector.count = (0, 0, gc_pacing.DUE_COLLECTIONS)
    assert pacer.tick() == "full" and collector.calls == ["collect", "freeze"]

    collector.calls.clear()
    clock.now += gc_pacing.REFREEZE_SECONDS
    pacer.input_seen()
    assert pacer.tick() is None  # the deep one is due, but a key came
    clock.now += gc_pacing.QUIET_SECONDS
    assert pacer.tick() == "deep"  # what was frozen and since ended in a cycle is collected too
    assert collector.calls == ["unfreeze", "collect", "freeze"]
    assert pacer.collections == 3 and pacer.deep_collections == 2

    collector.calls.clear()
    pacer.stop()
    assert collector.threshold == (700, 10, 10) and collector.calls == ["unfreeze"]
    assert pacer.tick() is None  # stopped: nothing more


def test_under_nonstop_keys_a_due_collection_runs_on_the_clock_and_walks_only_what_is_new() -> None:
    """Keys that never pause for QUIET_SECONDS: the due collection comes on the clock anyway and freezes
    its survivors (waiting for quiet left it to Python's backstop, 0.2 s at 1,000 replicas); the deep
    one waits, up to OVERDUE_SECONDS."""
    collector, clock = Recorder(), Clock()
    pacer = CollectionPacer(collector, clock)
    pacer.start()
    assert pacer.tick() == "deep"
    collector.calls.clear()
    deep_at = clock.now

    def pressing_for(seconds: float) -> list[str | None]:
        done = []
        for _ in range(int(seconds)):
            clock.now += 1
            pacer.input_seen()
            collector.count = (0, 0, gc_pacing.DUE_COLLECTIONS)
            done.append(pacer.tick())
        return done

    assert pressing_for(gc_pacing.REFREEZE_SECONDS) == ["full"] * int(gc_pacing.REFREEZE_SECONDS)
    assert collector.calls == ["collect", "freeze"] * int(gc_pacing.REFREEZE_SECONDS)
    assert pacer.deep_collections == 1  # due since deep_at + REFREEZE_SECONDS, but keys keep coming

    collector.calls.clear()
    clock.now = deep_at + gc_pacing.OVERDUE_SECONDS - 1
    pacer.input_seen()
    collector.count = (0, 0, gc_pacing.DUE_COLLECTIONS)
    assert pacer.tick() == "full"
    clock.now += 1
    pacer.input_seen()
    assert pacer.tick() == "deep"  # overdue: memory stays bounded under input that never pauses
    assert collector.calls == ["collect", "freeze", "unfreeze", "collect", "freeze"]


def test_keys_from_the_first_frame_freeze_before_any_collection_walks_everything() -> None:
    collector, clock = Recorder(), Clock()
    pacer = CollectionPacer(collector, clock)
    pacer.start()
    pacer.input_seen()
    assert pacer.tick() is None
    collector.count = (0, 0, gc_pacing.DUE_COLLECTIONS)
    assert pacer.tick() == "freeze" and collector.calls == ["freeze"]  # no walk of everything
    assert pacer.collections == 0
    collector.calls.clear()
    clock.now += gc_pacing.QUIET_SECONDS
    assert pacer.tick() == "deep"  # the first quiet moment frees what was garbage at the freeze
    assert collector.calls == ["unfreeze", "collect", "freeze"]


def test_a_cycle_made_after_the_freeze_is_still_freed() -> None:
    """With the real collector: the freeze keeps what lived at the first frame out of the walks, not
    the garbage made later."""

    class Node:
        pass

    before = gc.get_threshold()
    clock = Clock()
    pacer = CollectionPacer(clock=clock)
    pacer.start()
    try:
        assert pacer.tick() == "deep"
        assert gc.get_freeze_count() > 0
        node = Node()
        node.self = node  # type: ignore[attr-defined]  # a cycle: reference counting never frees it
        gone = weakref.ref(node)
        for _ in range(gc_pacing.DUE_COLLECTIONS):
            gc.collect(1)  # it lives through younger collections: into the oldest generation
        del node
        gc.collect(1)
        assert gone() is not None  # only a full collection frees it now
        later = Node()
        later.self = later  # type: ignore[attr-defined]
        later_gone = weakref.ref(later)
        clock.now += 1
        assert pacer.tick() == "full"
        assert gone() is None
        del later  # it lived through that collection, so it was frozen: only the deep one frees it now
        clock.now += 1
        for _ in range(gc_pacing.DUE_COLLECTIONS):
            gc.collect(1)
        assert pacer.tick() == "full" and later_gone() is not None
        clock.now += gc_pacing.REFREEZE_SECONDS
        assert pacer.tick() == "deep"
        assert later_gone() is None
    finally:
        pacer.stop()
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


async def test_console_collects_when_quiet_holds_back_for_keys_and_restores_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = gc.get_threshold()
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        assert gc.get_threshold()[2] == gc_pacing.BACKSTOP_COLLECTIONS
        # The clock's first quiet tick after the first frame: everything collected, the rest frozen.
        await until(lambda: app._collections.deep_collections == 1, what="the first deep collection")
        assert gc.get_freeze_count() > 0
        await pilot.press("down")
        monkeypatch.setattr(gc_pacing, "REFREEZE_SECONDS", 0.0)  # a deep collection is due now
        assert app._collections.tick() != "deep"  # but a key was just pressed: it waits
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


async def test_a_collection_due_on_the_clock_waits_for_the_paint_of_a_key_being_answered() -> None:
    """The clock's collection (10-35 ms with the loop stopped at 1,000 replicas) runs after the screen's
    next paint, not between a key that came and the paint that shows its effect."""
    app = OrchestryConsole(sample_backend(), poll_seconds=3600)
    async with app.run_test(size=(160, 45)) as pilot:
        await until(lambda: app.frames_applied >= 1, what="first frame")
        await pilot.pause()
        happened: list[str] = []
        display, tick = app._display, app._collections.tick

        def painted(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None:
                happened.append("paint")

        def ticked() -> str | None:
            happened.append("collection")
            return tick()

        app._display = painted  # type: ignore[method-assign]
        app._collections.tick = ticked  # type: ignore[method-assign]
        key = events.Key("down", None)
        key.set_sender(app)
        await app.on_event(key)  # a key came, and the clock ticks before the paint that answers it
        app._on_clock()
        assert happened == []
        await until(lambda: "collection" in happened, what="the clock's collection")
        assert happened[0] == "paint", happened

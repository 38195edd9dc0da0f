"""A scale is one transaction: the desired count and its history row change together, and a decision
made on a state that changed meanwhile writes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from core.errors import NotFound
from core.store import AppRecord, Store
from tests.conftest import unique_name


def registered(store: Store, desired: int = 2) -> str:
    name = unique_name("scale")
    store.apps.create(AppRecord(name=name, spec={}, raw={}, spec_hash="h", desired_replicas=desired))
    return name


def test_a_scale_sets_the_count_and_records_it_together(store: Store) -> None:
    name = registered(store, desired=2)
    changed = store.apps.scale(name, 5, "manual scale to 5", {"why": "test"})
    assert changed is not None
    replaced, when = changed
    app = store.apps.get(name)
    assert app is not None and replaced == 2
    assert (app.desired_replicas, app.last_scaled_at) == (5, when)
    [history] = store.scaling.list(name)
    assert (history.from_replicas, history.to_replicas, history.reason) == (2, 5, "manual scale to 5")
    assert history.timestamp == when and history.metrics == {"why": "test"}


def test_a_decision_on_a_state_that_moved_on_writes_nothing(store: Store) -> None:
    name = registered(store, desired=2)
    seen = store.apps.get(name)
    assert seen is not None
    assert store.apps.scale(name, 4, "operator") is not None  # lands between the decision and its act
    stale = store.apps.scale(name, 3, "auto", expect=(seen.desired_replicas, seen.last_scaled_at))
    assert stale is None
    app = store.apps.get(name)
    assert app is not None and app.desired_replicas == 4
    assert [h.to_replicas for h in store.scaling.list(name)] == [4]


def test_a_decision_on_the_current_state_acts(store: Store) -> None:
    name = registered(store, desired=2)
    store.apps.scale(name, 4, "operator")
    seen = store.apps.get(name)
    assert seen is not None
    acted = store.apps.scale(name, 6, "auto", expect=(seen.desired_replicas, seen.last_scaled_at))
    assert acted is not None and acted[0] == 4
    assert [h.to_replicas for h in store.scaling.list(name)] == [6, 4]


def test_scaling_an_unknown_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.apps.scale(unique_name("ghost"), 3, "manual")

"""What the Reconciler's mixins (health reactions, replica starts, replica stops) may rely on.

One declaration of the Reconciler's shared state, so the mixins agree on it with each other and with
the Reconciler that sets it in ``__init__``."""

from __future__ import annotations

from typing import Any

from core.clock import Clock
from core.health import HealthChecker
from core.replicas import AppState
from core.runtime.base import Runtime
from core.runtime.ports import PortAllocator
from core.spec import AppSpec
from core.timeline import ReplicaTimeline


class ReconcilerParts:
    # Provided by the Reconciler these are mixed into.
    runtime: Runtime
    store: Any
    emit: Any
    clock: Clock
    ports: PortAllocator
    health: HealthChecker
    apps: dict[str, AppState]
    timeline: ReplicaTimeline | None
    records: Any  # the leader's kept app records (core/services/app_records.py), or None: the store
    _specs: dict[str, tuple[str, AppSpec, str]]  # name → (spec hash, spec, container hash), per record

    async def _record_of(self, name: str) -> Any:
        """``name``'s record: the leader's kept one when there are kept records (a scale-out's ready
        replicas each read it, and in a thread that read queued behind the store writes of the others),
        else from the store."""
        if self.records is not None:
            return await self.records.get(name)
        return await self.store.read(self.store.apps.get, name)

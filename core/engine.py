"""Engine: the one facade every front end (console, API, CLI) drives.  (SKELETON: being filled in.)

Front ends never touch Docker, nginx or the database; they call these methods and subscribe to the
event bus.  Every method that changes state raises ``NotLeader`` on a node that does not hold the lease.
Errors are the typed ones of ``core.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.models import AppView, Event, ScaleResult, ScalingRecord, UpResult
from core.runtime.base import LogLine


class Engine:
    # --- lifecycle of the engine itself -------------------------------------------------------
    async def start(self) -> None:
        """Upgrade the store, start nginx, the runtime watcher, reconciler, health, metrics, scaler."""
        raise NotImplementedError

    async def stop(self, stop_apps: bool = False) -> None:
        """Stop background tasks; containers keep running and nginx keeps serving unless told."""
        raise NotImplementedError

    # --- apps ---------------------------------------------------------------------------------
    async def register(self, document: dict[str, Any] | str, replace: bool = True) -> tuple[AppView, bool]:
        """Validate then store atomically.  Returns (view, created).  SpecError on a bad spec,
        Conflict when the name exists and ``replace`` is False.  A running app rolls to the new spec."""
        raise NotImplementedError

    async def up(self, name: str) -> UpResult:
        raise NotImplementedError

    async def down(self, name: str, force: bool = False) -> int:
        """Returns the number of containers stopped."""
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        raise NotImplementedError

    async def scale(self, name: str, replicas: int) -> ScaleResult:
        raise NotImplementedError

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        """Rolling restart of every slot (or one).  Returns the slots restarted."""
        raise NotImplementedError

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge scaling keys (camelCase as in API.md, ``mode`` included), validate, persist.
        Returns the whole effective policy (camelCase)."""
        raise NotImplementedError

    async def clear_instances(self, name: str) -> None:
        raise NotImplementedError

    async def get_app(self, name: str) -> AppView:
        """Status + describe: spec/raw redacted, replicas with live cpu/memory.  NotFound if unknown."""
        raise NotImplementedError

    async def list_apps(self) -> list[AppView]:
        raise NotImplementedError

    # --- observation --------------------------------------------------------------------------
    async def events(
        self, app: str | None = None, category: str | None = None, since: float | None = None, limit: int = 100
    ) -> list[Event]:
        """Newest first."""
        raise NotImplementedError

    def subscribe(self) -> AsyncIterator[Event]:
        raise NotImplementedError

    async def logs(
        self, name: str, tail: int | None = 100, since: float | None = None, until: float | None = None
    ) -> list[LogLine]:
        """Merged across replicas, oldest first."""
        raise NotImplementedError

    def follow_logs(self, name: str, tail: int | None = 10) -> AsyncIterator[LogLine]:
        raise NotImplementedError

    async def app_metrics(self, name: str) -> dict[str, Any]:
        """``{"current": {...}, "window": {...}, "policy": {...}, "last_decision": {...}|None,
        "scale_factors": {...}}``: current keys rps, p95_latency_ms, active_connections, cpu_percent,
        memory_percent, healthy_replicas, total_replicas."""
        raise NotImplementedError

    async def scaling_history(self, name: str, limit: int = 50) -> list[ScalingRecord]:
        raise NotImplementedError

    async def simulate_metrics(self, name: str, sample: dict[str, Any], evaluate: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    async def cluster_metrics(self) -> dict[str, Any]:
        raise NotImplementedError

    # --- cluster / node -----------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """Fast: never waits on Docker.  ``{"database": {"status": "ok"|"error", "detail"?}}``."""
        raise NotImplementedError

    async def cluster_status(self) -> dict[str, Any]:
        raise NotImplementedError

    async def release_leadership(self) -> None:
        raise NotImplementedError

    # --- secrets ------------------------------------------------------------------------------
    async def set_secret(self, name: str, fields: dict[str, str]) -> list[str]:
        raise NotImplementedError

    async def secret_fields(self, name: str) -> list[str]:
        raise NotImplementedError

    async def list_secrets(self) -> dict[str, list[str]]:
        raise NotImplementedError

    async def delete_secret(self, name: str) -> None:
        raise NotImplementedError

    # --- diagnostics --------------------------------------------------------------------------
    async def diagnostic_snapshot(self) -> bytes:
        """A .tar.gz of settings (secrets redacted), apps, events, nginx config, versions."""
        raise NotImplementedError

"""Commands that change an app's desired state: register, up, down, delete, scale, restart, policy.

Each command checks leadership once, reads and writes the store, says what it did as an event and wakes
the app's reconcile worker; the worker does the work.  Intent such as a forced stop travels as an
argument of the pass request, never as a flag on shared state.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from core.collaborators import Emit, Leadership, require_leader
from core.documents import read_document
from core.errors import AppBlocked, BadRequest, Conflict, SpecError, app_not_registered
from core.metrics import instruments
from core.models import APP_RUNNING, APP_STOPPED, MissingSecret, RegisterPreview, ScaleResult, UpResult
from core.replicas import ForceHold
from core.secrets import SecretStore
from core.services.app_records import KeptAppRecords
from core.spec import AppSpec, parse_app_spec, refuse_redacted_values, validate_policy_update
from core.store import AppRecord, Store

MAX_REPLICAS = 100
# A stop waits for the drain and the grace period; beyond this it gives up waiting (the worker goes on).
STOP_WAIT_MARGIN_SECONDS = 120.0


def load_document(document: dict[str, Any] | str | bytes) -> dict[str, Any]:
    """YAML or JSON text (through the guarded door of core.documents) or a dict → dict; SpecError else."""
    if isinstance(document, dict):
        return document
    loaded = read_document(document, "the app spec")
    if not isinstance(loaded, dict):
        raise SpecError("the app spec must be a mapping with metadata and spec: see examples/web.yml")
    return loaded


class Workers(Protocol):
    """The per-app reconcile workers, as far as commands drive them (core.reconciler.Reconciler)."""

    def spec_of(self, record: AppRecord) -> AppSpec: ...

    def ensure_worker(self, name: str) -> None: ...

    def wake(self, name: str) -> None: ...

    def unblock(self, name: str) -> None: ...

    def blocked_reason(self, name: str) -> str: ...

    def request_restart(self, name: str, slot: int | None = None) -> list[int]: ...

    def knows_replicas(self, name: str) -> bool: ...

    def tally(self, name: str) -> Counter[str]: ...

    async def reconcile_now(
        self,
        name: str,
        timeout: float = 120.0,
        *,
        force: bool = False,
        clear: bool = False,
        since: Counter[str] | None = None,
    ) -> dict[str, int]: ...

    async def teardown_now(self, name: str) -> int: ...

    def forcing(self, name: str) -> AbstractContextManager[ForceHold]: ...


def clamp_to_policy(replicas: int, spec: AppSpec) -> int:
    """An auto-mode app's desired count always lies within its min/max."""
    return min(max(replicas, spec.scaling.min_replicas), spec.scaling.max_replicas)


class DesiredState:
    def __init__(
        self,
        store: Store,
        workers: Workers,
        secrets: SecretStore,
        emit: Emit,
        leadership: Leadership,
        drain_timeout: float,
        placement_supported: bool = False,
    ) -> None:
        """``placement_supported``: the runtime has nodes to place on (Swarm); otherwise a spec with
        spec.placement is refused rather than silently run without it."""
        self._placement_supported = placement_supported
        self._store = store
        self._workers = workers
        self._secrets = secrets
        self._emit = emit
        self._leadership = leadership
        self._stop_wait = drain_timeout + STOP_WAIT_MARGIN_SECONDS
        # Called with an app's name when its runtime history ends (deleted, or its instances cleared).
        self.on_forget: list[Callable[[str], None]] = []
        # The leader's kept app records (core/services/app_records.py), set by the wiring; None: the store.
        self.records: KeptAppRecords | None = None

    async def app_record(self, name: str) -> AppRecord:
        record = await self._store.read(self._store.apps.get, name)
        if record is None:
            raise app_not_registered(name, [r.name for r in await self._store.read(self._store.apps.list)])
        return record

    async def _kept_record(self, name: str) -> AppRecord:
        """``app_record`` from the leader's kept records while they are current (else the store)."""
        if self.records is None:
            return await self.app_record(name)
        record = await self.records.get(name)
        if record is None:
            raise app_not_registered(name, [r.name for r in await self._store.read(self._store.apps.list)])
        return record

    def _forget(self, name: str) -> None:
        for forget in self.on_forget:
            forget(name)

    # --- register -----------------------------------------------------------------------------
    def _check_placement(self, spec: AppSpec) -> None:
        if spec.container.placement is not None and not self._placement_supported:
            raise SpecError(
                "spec.placement only applies when Orchestry runs on a Docker Swarm (ORCHESTRY_RUNTIME=swarm, "
                "or orchestry daemon --runtime swarm): remove spec.placement, or run on a Swarm",
                field="spec.placement",
            )

    async def register(self, document: dict[str, Any] | str | bytes, update: bool = True) -> tuple[str, bool]:
        """Validate then store atomically.  Returns (name, created).  A running app rolls to the new spec.

        ``update=False`` refuses an existing app (Conflict) instead of updating it."""
        raw = load_document(document)
        spec = parse_app_spec(raw)
        refuse_redacted_values(spec)
        self._check_placement(spec)
        require_leader(self._leadership)
        doc = spec.to_document()
        existing = await self._store.read(self._store.apps.get, spec.name)
        if existing is not None and not update:
            raise Conflict(
                f"app '{spec.name}' already exists: use ?replace=true (or `orchestry register`) to update it"
            )
        policy = doc.get("scaling", {})
        if existing is None:
            record = AppRecord(
                name=spec.name,
                spec=doc,
                raw=raw,
                spec_hash=spec.spec_hash(),
                status=APP_STOPPED,
                mode=spec.scaling.mode,
                desired_replicas=clamp_to_policy(1, spec),
                policy=policy,
            )
            try:
                await self._store.write(self._store.apps.create, record)
            except Conflict:
                if not update:
                    raise
                existing = await self._store.read(self._store.apps.get, spec.name)
        if existing is not None:
            desired = existing.desired_replicas
            if spec.scaling.mode == "auto":
                desired = clamp_to_policy(desired, spec)
            record = dataclasses.replace(
                existing,
                spec=doc,
                raw=raw,
                spec_hash=spec.spec_hash(),
                mode=spec.scaling.mode,
                desired_replicas=desired,
                policy=policy,
            )
            await self._store.write(self._store.apps.save, record)
        created = existing is None
        rolling = not created and existing is not None and existing.spec.get("spec") != doc.get("spec")
        await self._emit(
            "lifecycle",
            "app_registered" if created else "app_updated",
            f"registered {spec.name}"
            if created
            else f"updated {spec.name}"
            + (
                " (replicas roll to the new spec)"
                if rolling and existing and existing.status != APP_STOPPED
                else ""
            ),
            app=spec.name,
            details={"spec_hash": spec.spec_hash()[:12]},
        )
        self._workers.unblock(spec.name)
        self._workers.ensure_worker(spec.name)
        self._workers.wake(spec.name)
        return spec.name, created

    async def preview_register(self, document: dict[str, Any] | str | bytes) -> RegisterPreview:
        """What ``register`` then ``up`` would meet, changing nothing: the same validation and errors,
        whether the app would be created, updated or left unchanged, and the secrets ``up`` would miss."""
        spec = parse_app_spec(load_document(document))
        refuse_redacted_values(spec)
        self._check_placement(spec)
        existing = await self._store.read(self._store.apps.get, spec.name)
        if existing is None:
            change = "created"
        else:
            change = "unchanged" if existing.spec_hash == spec.spec_hash() else "updated"
        missing = [
            MissingSecret(var.name, var.key or "", var.field or "")
            for var in spec.container.environment
            if var.source == "secret"
            and not await self._store.read(self._secrets.exists, var.key or "", var.field or "")
        ]
        return RegisterPreview(
            app=spec.name,
            change=change,
            spec_hash=spec.spec_hash(),
            missing_secrets=missing,
            image=spec.container.image,
        )

    # --- lifecycle ----------------------------------------------------------------------------
    async def up(self, name: str) -> UpResult:
        require_leader(self._leadership)
        record = await self.app_record(name)
        spec = self._workers.spec_of(record)
        for var in spec.container.environment:
            if var.source == "secret":
                await self._store.read(self._secrets.resolve, var.key or "", var.field or "")
        desired = record.desired_replicas
        if spec.scaling.mode == "auto":
            desired = clamp_to_policy(desired, spec)
        self._workers.unblock(name)
        since = self._workers.tally(name)
        await self._store.write(
            self._store.apps.update,
            name,
            status=APP_RUNNING,
            status_reason="starting",
            desired_replicas=desired,
        )
        if record.status == APP_STOPPED:
            await self._emit("lifecycle", "app_up", f"{name} is starting with {desired} replica(s)", app=name)
        result = await self._workers.reconcile_now(name, since=since)
        blocked = self._workers.blocked_reason(name)
        if blocked:
            raise AppBlocked(blocked)
        return UpResult(
            app=name, replicas=desired, adopted=result.get("adopted", 0), started=result.get("started", 0)
        )

    async def down(self, name: str, force: bool = False) -> int:
        """Stop the app's replicas: drained first, then stopped with the spec's grace period, or with
        ``force`` at once with a short grace period.  Returns the number of containers stopped."""
        require_leader(self._leadership)
        # Held from the moment the request arrives, before any store call: a plain down whose store
        # calls end sooner (a loaded host's threads finish in any order) would otherwise mark the app
        # stopped and its pass stop the replicas with the spec's grace period before this said forced.
        hold: AbstractContextManager[ForceHold | None] = (
            self._workers.forcing(name) if force else contextlib.nullcontext()
        )
        # Taken before the hold: stops the hold cuts short end in a pass after it, so are counted.
        since = self._workers.tally(name)
        with hold as forced:
            record = await self.app_record(name)
            await self._store.write(
                self._store.apps.update, name, status=APP_STOPPED, status_reason="stopped by the operator"
            )
            if record.status != APP_STOPPED:
                await self._emit(
                    "lifecycle", "app_down", f"{name} is stopping" + (" (forced)" if force else ""), app=name
                )
            result = await self._workers.reconcile_now(
                name, timeout=self._stop_wait, force=force, since=since
            )
        # Replicas a plain down was stopping when this forced one came (counted in ``result`` already).
        cut_short = forced.cut_short if forced is not None else 0
        if cut_short:
            # The app was already stopping, so no app_down says "(forced)": this does, for the record.
            await self._emit(
                "lifecycle",
                "stop_forced",
                f"{cut_short} replica(s) that were stopping with the spec's grace period "
                "stopped at once (forced)",
                app=name,
                details={"replicas": cut_short},
            )
        return result.get("stopped", 0)

    async def delete(self, name: str) -> None:
        """Forget the app; its containers stop at once (nothing routes to a deleted app)."""
        require_leader(self._leadership)
        await self.app_record(name)
        await self._store.write(self._store.apps.delete, name)
        await self._workers.reconcile_now(name, timeout=self._stop_wait)
        self._forget(name)
        instruments.forget_app(name)
        await self._emit("lifecycle", "app_deleted", f"deleted {name}", app=name)

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        """Rolling restart of every slot (or one).  Returns the slots restarted."""
        require_leader(self._leadership)
        record = await self.app_record(name)
        if record.status == APP_STOPPED:
            raise Conflict(
                f"app '{name}' is stopped: start it with `orchestry up {name}` instead of restarting"
            )
        if not self._workers.knows_replicas(name):
            # A controller that has just started or taken over learns the running replicas in its first
            # pass of the term (adoption): marked before it, none was found, and the restart answered
            # that it restarted nothing while every replica kept running.
            await self._workers.reconcile_now(name)
        slots = self._workers.request_restart(name, slot)
        await self._emit(
            "lifecycle",
            "restart_requested",
            f"rolling restart of {name}" + (f" slot {slot}" if slot is not None else ""),
            app=name,
        )
        self._workers.wake(name)
        return slots

    async def clear_instances(self, name: str) -> None:
        require_leader(self._leadership)
        await self.app_record(name)
        await self._workers.teardown_now(name)
        await self._store.write(self._store.instances.delete_app, name)
        await self._store.write(self._store.scaling.clear, name)
        self._forget(name)
        self._workers.unblock(name)
        await self._emit(
            "lifecycle",
            "instances_cleared",
            f"runtime state of {name} cleared; replicas are recreated from the spec",
            app=name,
        )
        self._workers.wake(name)

    # --- scaling ------------------------------------------------------------------------------
    async def scale(self, name: str, replicas: int, reason: str = "") -> ScaleResult:
        require_leader(self._leadership)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
            raise BadRequest(f"replicas must be an integer from 0 to {MAX_REPLICAS} (got {replicas!r})")
        # The kept record, not a store read: the scale's first Docker call waits for everything before
        # it, and a read in a thread queues behind the store work of the moment (metrics, events); the
        # count itself is still written to the store before any worker acts on it.
        record = await self._kept_record(name)
        target, clamped, message = replicas, False, ""
        if record.mode == "auto":
            spec = self._workers.spec_of(record)
            target = clamp_to_policy(replicas, spec)
            if target != replicas:
                clamped = True
                low, high = spec.scaling.min_replicas, spec.scaling.max_replicas
                message = (
                    f"{name} is in auto mode with minReplicas {low} and maxReplicas {high}: "
                    f"scaled to {target} instead of {replicas}; switch to manual mode "
                    f"(orchestry mode {name} manual) to go outside"
                )
        if record.status == "stopped":
            # The count is kept for the next `up`; nothing starts now, which "scaled" alone hid.
            stopped = f"{name} is stopped: it runs {target} replica(s) once started (orchestry up {name})"
            message = f"{message}; {stopped}" if message else stopped
        if target == record.desired_replicas:
            return ScaleResult(
                app=name,
                status="no_change",
                replicas=target,
                requested=replicas,
                clamped=clamped,
                message=message or f"{name} already has {target} desired replica(s)",
            )
        await self.apply_scale(name, target, reason or f"manual scale to {target}")
        return ScaleResult(
            app=name, status="scaled", replicas=target, requested=replicas, clamped=clamped, message=message
        )

    async def apply_scale(
        self,
        name: str,
        target: int,
        reason: str,
        metrics: dict[str, Any] | None = None,
        auto: bool = False,
        expect: tuple[int, float | None] | None = None,
    ) -> int | None:
        """Persist a new desired count with its history (one transaction), say so, wake the worker.

        ``expect``: (desired replicas, last scaled at) the decision was made on; when another scale
        changed them meanwhile nothing happens and None is returned.  Otherwise the count replaced."""
        changed = await self._store.write(self._store.apps.scale, name, target, reason, metrics, expect)
        if changed is None:
            return None
        current, _when = changed
        instruments.SCALING_DECISIONS.inc(
            app=name,
            direction="up" if target > current else "down",
            metric=((metrics or {}).get("deciding_metric") or "unknown") if auto else "manual",
        )
        # Woken before the event is saved: the pass needs the new count, not the event, and its first
        # Docker call need not wait out one more store write in a thread (its own events come after a
        # Docker round trip, so the scale's is still saved first).
        self._workers.wake(name)
        await self._emit(
            "scaling",
            "scaled_auto" if auto else "scaled",
            # No "NAME: " lead: the event carries the app, and every surface that shows it (events
            # pane, `orchestry events`' APP column) prints the name already.
            f"{current} → {target} replicas ({reason})",
            app=name,
            details={"from": current, "to": target, "reason": reason, "auto": auto},
        )
        return current

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge scaling keys (camelCase as in API.md, ``mode`` included), validate, persist."""
        require_leader(self._leadership)
        if not isinstance(changes, dict):
            raise BadRequest('the policy must be a JSON object of scaling keys, e.g. {"maxReplicas": 8}')
        record = await self.app_record(name)
        spec = self._workers.spec_of(record)
        policy = validate_policy_update(spec.scaling, changes)
        new_spec = parse_app_spec({**record.spec, "scaling": policy.to_document()})
        new_doc = new_spec.to_document()
        desired = record.desired_replicas
        if policy.mode == "auto":
            desired = clamp_to_policy(desired, new_spec)
        await self._store.write(
            self._store.apps.update,
            name,
            spec=new_doc,
            spec_hash=new_spec.spec_hash(),
            policy=new_doc["scaling"],
            mode=policy.mode,
            desired_replicas=desired,
        )
        await self._emit(
            "scaling",
            "policy_updated",
            f"scaling policy of {name} updated: " + ", ".join(f"{k}={v}" for k, v in changes.items()),
            app=name,
            details={"changes": changes},
        )
        self._workers.wake(name)
        return new_doc["scaling"]

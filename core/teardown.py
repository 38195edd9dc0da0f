"""``orchestry stop`` and ``orchestry down --all``: stop this state dir's apps and nginx with no daemon.

Like ``docker compose down``: it works on the state dir and Docker directly. It takes the leader lease
for the time it acts (so no console or daemon can start acting on the same apps meanwhile) and refuses,
naming the process, when a live console or daemon runs on the state dir or holds the lease: stopping
containers behind a leader's back would only make it recreate them. Only containers labelled with this
store's cluster id are touched; other installations on the same Docker engine are left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import Conflict, OrchestryError
from core.lb.nginx_procs import retire_orphans, running_master
from core.presence import live_controllers
from core.runtime.base import LABEL_CLUSTER

if TYPE_CHECKING:
    from core.settings import Settings
    from core.store import Store

LEASE_SECONDS = 120.0  # longer than any teardown; released at the end either way
DEFAULT_GRACE_SECONDS = 10.0
NGINX_EXIT_SECONDS = 35.0
# A dead controller's lease runs out after the lease TTL (30 s by default): waited for, up to this.
DEAD_LEASE_WAIT_SECONDS = 70.0  # the generated config's worker_shutdown_timeout is 30 s


@dataclass
class TeardownReport:
    state_dir: Path
    containers_removed: list[str] = field(default_factory=list)
    apps_stopped: list[str] = field(default_factory=list)  # marked stopped in the store (down --all)
    nginx_pid: int | None = None  # the nginx master that was stopped
    nginx_orphans: list[int] = field(default_factory=list)  # workers a killed master left, ended
    nothing_there: bool = False  # no store in the state dir


class ControllerRunning(Conflict):
    """A live console or daemon acts on this state dir: it must be stopped (or asked) first."""


def _refuse_live_controllers(state_dir: Path) -> None:
    others = [c for c in live_controllers(state_dir) if c.pid != os.getpid()]
    if others:
        who = "; ".join(c.describe() for c in others)
        how = " and ".join(c.how_to_quit() for c in others)
        raise ControllerRunning(
            f"{who} runs on the state dir {state_dir} and would recreate what this stops: {how}, "
            "then run this again"
        )


def _sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


@dataclass(frozen=True)
class _Holder:
    leader_id: str
    hostname: str
    api_url: str
    remaining: float  # seconds until the lease expires


def _try_lease(store: Store, node_id: str) -> int | _Holder:
    """Our term, or who holds the lease instead."""
    lease = store.leases.try_acquire(node_id, socket.gethostname(), "", LEASE_SECONDS)
    if lease is not None:
        return lease.term
    holder = store.leases.current()
    if holder is None:  # a peer won the race for the same term just now
        return _Holder("another controller", socket.gethostname(), "", 1.0)
    remaining = max(0.0, holder.expires_at - store.now())
    return _Holder(holder.leader_id, holder.hostname, holder.api_url, remaining)


def _answers(api_url: str) -> bool:
    import urllib.error
    import urllib.request

    if not api_url:
        return False
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if only to refuse
    except (OSError, ValueError):
        return False


async def _take_lease(store: Store, node_id: str, state_dir: Path, on_wait: Callable[[str], None]) -> int:
    """Our term. A lease left by a controller of this host that died without releasing it (kill -9)
    is waited out; any other holder is named in a refusal."""
    deadline = time.monotonic() + DEAD_LEASE_WAIT_SECONDS
    said = False
    while True:
        found = await asyncio.to_thread(_try_lease, store, node_id)
        if isinstance(found, int):
            return found
        alive = (
            found.hostname != socket.gethostname()
            or any(c.node_id == found.leader_id for c in live_controllers(state_dir))
            or await asyncio.to_thread(_answers, found.api_url)
        )
        if alive or time.monotonic() + found.remaining > deadline:
            api = f", API {found.api_url}" if found.api_url else ""
            raise ControllerRunning(
                f"node {found.leader_id} on {found.hostname}{api} holds the leader lease of this store for "
                f"another {found.remaining:.0f} s: stop it first (or, if it died, run this again once the "
                "lease expires)"
            )
        if not said:
            on_wait(
                f"waiting {found.remaining:.0f} s for the lease of node {found.leader_id} to expire "
                "(its process is gone without releasing it)"
            )
            said = True
        await asyncio.sleep(min(1.0, found.remaining + 0.1))


async def _stop_nginx(prefix: Path, report: TeardownReport) -> None:
    pid = await asyncio.to_thread(running_master, prefix)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)  # graceful: in-flight requests finish
        deadline = time.monotonic() + NGINX_EXIT_SECONDS
        # nginx is not our child: there is nothing to wait on but its pid file and /proc.
        while time.monotonic() < deadline and await asyncio.to_thread(running_master, prefix) == pid:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        report.nginx_pid = pid
    # A master killed by hand or by the OOM killer left its workers holding the load-balancer port and
    # serving the old routes, with no master to signal: ended as the engine's own stop ends them.
    report.nginx_orphans = await asyncio.to_thread(retire_orphans, prefix)


async def _remove_containers(settings: Settings, store: Store, cluster_id: str) -> list[str]:
    from core.wiring import build_runtime

    grace = {
        record.name: float(
            (record.spec.get("spec") or {}).get("terminationGracePeriodSeconds") or DEFAULT_GRACE_SECONDS
        )
        for record in await asyncio.to_thread(store.apps.list)
    }
    runtime = build_runtime(settings)
    runtime.cluster_id = cluster_id
    try:
        mine = [c for c in await runtime.list_managed() if c.labels.get(LABEL_CLUSTER) == cluster_id]

        async def remove(container_id: str, app: str) -> None:
            await runtime.stop(container_id, grace.get(app, DEFAULT_GRACE_SECONDS))
            await runtime.remove(container_id, force=True)

        await asyncio.gather(*(remove(c.id, c.app) for c in mine))
        # Warm-pool members (core/warm_pool.py) are no replicas and not listed above: never started,
        # they only need removing.
        list_warm = getattr(runtime, "list_warm", None)
        warm = (
            [c for c in await list_warm() if c.labels.get(LABEL_CLUSTER) == cluster_id] if list_warm else []
        )
        await asyncio.gather(*(runtime.remove(c.id, force=True) for c in warm))
        for app in {c.app for c in mine}:
            await asyncio.to_thread(store.instances.delete_app, app)
        return [c.name for c in mine]
    finally:
        await runtime.close()


async def teardown(
    settings: Settings, mark_apps_stopped: bool, on_wait: Callable[[str], None] | None = None
) -> TeardownReport:
    """Remove this state dir's replicas and stop its nginx; ``mark_apps_stopped`` also sets every app's
    desired state to stopped (``down --all``: the next start starts nothing; ``stop`` resumes them)."""
    from core.models import APP_STOPPED
    from core.store import Store

    state_dir = settings.state_dir
    report = TeardownReport(state_dir)
    _refuse_live_controllers(state_dir)
    sqlite = _sqlite_path(settings.database_url)
    if sqlite is not None and not sqlite.exists():
        report.nothing_there = True
        await _stop_nginx(state_dir / "nginx", report)
        return report
    store = await asyncio.to_thread(Store.open, settings.database_url)
    node_id = f"teardown-{socket.gethostname()}-{os.getpid()}"
    try:
        term = await _take_lease(store, node_id, state_dir, on_wait or (lambda _message: None))
        try:
            cluster_id = await asyncio.to_thread(store.identity.cluster_id)
            report.containers_removed = await _remove_containers(settings, store, cluster_id)
            if mark_apps_stopped:
                for record in await asyncio.to_thread(store.apps.list):
                    if record.status != APP_STOPPED:
                        await asyncio.to_thread(
                            store.apps.update,
                            record.name,
                            status=APP_STOPPED,
                            status_reason="stopped by `orchestry down --all`",
                        )
                        report.apps_stopped.append(record.name)
            if settings.nginx_conf_dir is None:  # an operator's own nginx is theirs to stop
                await _stop_nginx(state_dir / "nginx", report)
        finally:
            with contextlib.suppress(OrchestryError):
                await asyncio.to_thread(store.leases.release, term, node_id)
    finally:
        await asyncio.to_thread(store.close)
    return report

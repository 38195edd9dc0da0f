"""What the Swarm runtime knows of its tasks between two listings, and how it learns of changes.

Docker 20.10 emits no task events, only service and node ones: the runtime lists its tasks (a
``Snapshot``) on a short period and whenever the manager reports a service or node change, and
``task_changes`` turns the difference between two listings into RuntimeEvents.  Task logs are read
through the manager too (``GET /tasks/{id}/logs``), whichever node runs the task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docker import APIClient
from docker.types.daemon import CancellableStream

from core.runtime.base import EVENT_CHANGED, LABEL_APP, LABEL_SLOT, ContainerInfo, LogLine, RuntimeEvent
from core.runtime.docker_calls import _root_cause
from core.runtime.docker_streams import back_off
from core.runtime.docker_wire import split_log_line
from core.runtime.streams import _close_quietly, _lines, _StreamBridge
from core.runtime.swarm_spec import SwarmNode, replica_info, task_state, unplaceable_reason, wants_running

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """One listing of this installation's services, their tasks and the nodes."""

    services: list[dict[str, Any]]
    tasks: dict[str, list[dict[str, Any]]]  # by service id
    nodes: dict[str, SwarmNode]
    taken_at: float = field(default_factory=time.time)

    def replicas(self) -> list[ContainerInfo]:
        return [replica_info(s, self.tasks.get(s["ID"], []), self.nodes) for s in self.services]


@dataclass(frozen=True)
class TaskView:
    app: str
    slot: int | None
    live: bool  # Swarm wants it running and it runs
    state: str
    desired: str
    exit_code: int | None
    unplaceable: bool = False  # pending because no node fits: nothing will change soon


def task_views(snapshot: Snapshot) -> dict[str, TaskView]:
    views: dict[str, TaskView] = {}
    for service in snapshot.services:
        labels = (service.get("Spec") or {}).get("Labels") or {}
        slot = labels.get(LABEL_SLOT, "")
        for task in snapshot.tasks.get(service["ID"], []):
            exit_code = ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ExitCode")
            views[task["ID"]] = TaskView(
                app=labels.get(LABEL_APP, ""),
                slot=int(slot) if slot.isdigit() else None,
                live=wants_running(task) and task_state(task) == "running",
                state=task_state(task),
                desired=str(task.get("DesiredState", "")),
                exit_code=exit_code if isinstance(exit_code, int) else None,
                unplaceable=unplaceable_reason(task) is not None,
            )
    return views


def task_changes(
    previous: dict[str, TaskView], current: dict[str, TaskView], now: float
) -> list[RuntimeEvent]:
    """``die`` for each task that was a live replica and no longer is; one ``changed`` per app whose
    other tasks changed (a new task, or one that started or ended)."""
    events: list[RuntimeEvent] = []
    changed_apps: dict[str, int | None] = {}
    for task_id, before in previous.items():
        after = current.get(task_id)
        if before.live and (after is None or not after.live):
            events.append(
                RuntimeEvent(
                    "die",
                    container_id=task_id,
                    app=before.app,
                    slot=before.slot,
                    time=now,
                    exit_code=after.exit_code if after is not None else None,
                )
            )
        elif after is None or (after.state, after.desired) != (before.state, before.desired):
            changed_apps.setdefault(before.app, before.slot)
    for task_id, after in current.items():
        if task_id not in previous:
            changed_apps.setdefault(after.app, after.slot)
    for app, slot in changed_apps.items():
        events.append(RuntimeEvent(EVENT_CHANGED, container_id="", app=app, slot=slot, time=now))
    return events


# ---------------------------------------------------------------------------------------------------
# readers (blocking: each runs in its own thread, feeding the consumer through a stream bridge)
# ---------------------------------------------------------------------------------------------------


def manager_events_reader(
    new_client: Callable[[], APIClient], docker_url: str, bridge: _StreamBridge, wake: Callable[[], None]
) -> None:
    """Calls ``wake`` on every service or node event the manager emits (and after each reconnect, as
    events may have been missed); reconnects with backoff until the bridge stops."""
    filters = {"type": ["service", "node"]}
    failures = 0
    while not bridge.stopped.is_set():
        client: APIClient | None = None
        try:
            client = new_client()
            stream = client.events(filters=filters, decode=True)
            bridge.track(stream)
            failures = 0
            wake()
            try:
                for _raw in stream:
                    wake()
            finally:
                bridge.untrack(stream)
        except Exception as exc:
            if not bridge.stopped.is_set() and failures == 0:
                log.warning(
                    "Swarm manager events at %s broke: %s; reconnecting", docker_url, _root_cause(exc)
                )
        finally:
            if client is not None:
                _close_quietly(client)
        failures = back_off(bridge, failures)


def follow_task_logs(
    new_client: Callable[[], APIClient], bridge: _StreamBridge, task_id: str, name: str, since: float | None
) -> None:
    """Follows one task's stdout and stderr through the manager until the bridge stops."""
    client: APIClient | None = None
    try:
        client = new_client()
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 1, "tail": 0}
        if since:
            params.update(since=int(since), tail="all")
        response = client._get(client._url("/tasks/{0}/logs", task_id), params=params, stream=True)
        client._raise_for_status(response)
        # Cancellable: closing it from the consumer's side shuts the socket, waking a blocked read.
        stream = CancellableStream(client._multiplexed_response_stream_helper(response), response)
        bridge.track(stream)
        try:
            for text in _lines(stream):
                stamp, message = split_log_line(text)
                if not bridge.put(LogLine(stamp, task_id, name, message)):
                    return
        finally:
            bridge.untrack(stream)
    except Exception:
        if not bridge.stopped.is_set():
            log.warning("following logs of %s broke off", name, exc_info=True)
    finally:
        if client is not None:
            _close_quietly(client)
        bridge.reader_done()

"""Docker's log and event streams, read in their own threads on private clients (a stream holds its
connection for as long as it runs and must not starve the runtime's pool)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors
from docker import APIClient

from core.runtime.base import LABEL_MANAGED, ContainerInfo, LogLine, RuntimeEvent
from core.runtime.docker_calls import _root_cause
from core.runtime.docker_wire import WATCHED_EVENTS, runtime_event_from_docker, split_log_line
from core.runtime.streams import _END, _close_quietly, _lines, _StreamBridge

log = logging.getLogger(__name__)

EVENTS_RECONNECTED = "reconnected"
# Backoff between attempts to reopen a broken events stream; the last value repeats.  An attempt on an
# engine that is down costs one failed connect, and the first one that succeeds is what tells the
# engine Docker is back: keep the cap short.
RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0)


def back_off(bridge: _StreamBridge, failures: int) -> int:
    """Waits before reconnect attempt ``failures + 1`` (at once when the bridge stops); the new count."""
    bridge.stopped.wait(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)])
    return failures + 1


def follow_reader(
    new_client: Callable[[], APIClient],
    bridge: _StreamBridge,
    info: ContainerInfo,
    stream_name: str,
    since: float | None,
) -> None:
    """One thread's follow of one output stream of a container, until it ends or the consumer leaves."""
    client: APIClient | None = None
    try:
        client = new_client()
        options: dict[str, Any] = {"stdout": stream_name == "stdout", "stderr": stream_name == "stderr"}
        if since:
            options["since"] = float(since)
        stream = client.logs(info.id, stream=True, follow=True, timestamps=True, **options)
        bridge.track(stream)
        try:
            for text in _lines(stream):
                stamp, message = split_log_line(text)
                line = LogLine(stamp, info.id, info.name, message, stream_name)
                if not bridge.put(line):
                    return
        finally:
            bridge.untrack(stream)
    except docker.errors.NotFound:
        pass  # the container went away: the stream simply ends
    except Exception:
        if not bridge.stopped.is_set():
            log.warning("following logs of %s (%s) broke off", info.name, stream_name, exc_info=True)
    finally:
        if client is not None:
            _close_quietly(client)
        bridge.reader_done()


def events_reader(new_client: Callable[[], APIClient], docker_url: str, bridge: _StreamBridge) -> None:
    """Reads the events stream and reopens it with backoff whenever it breaks.

    Docker replays at most its last 1000 events, so after a gap the consumer must relist: the
    synthetic ``reconnected`` event tells it when.
    """
    filters = {"type": ["container"], "label": [f"{LABEL_MANAGED}=true"], "event": list(WATCHED_EVENTS)}
    connected_before = False
    failures = 0
    broken_since: float | None = None  # said once per outage, however many attempts it takes
    try:
        while not bridge.stopped.is_set():
            client: APIClient | None = None
            try:
                client = new_client()
                stream = client.events(filters=filters, decode=True)
                bridge.track(stream)
                if broken_since is not None:
                    log.info(
                        "Docker events stream at %s is back after %.1f s",
                        docker_url,
                        time.monotonic() - broken_since,
                    )
                # Also after a first connect that needed retries: the consumer must relist.
                resumed = connected_before or failures > 0
                failures, broken_since, connected_before = 0, None, True
                if resumed and not bridge.put(
                    RuntimeEvent(EVENTS_RECONNECTED, container_id="", app="", slot=None, time=time.time())
                ):
                    return
                try:
                    for raw in stream:
                        event = runtime_event_from_docker(raw)
                        if event is not None and not bridge.put(event):
                            return
                finally:
                    bridge.untrack(stream)
            except Exception as exc:
                if not bridge.stopped.is_set() and broken_since is None:
                    broken_since = time.monotonic()
                    log.warning(
                        "Docker events stream at %s broke: %s; reconnecting until it answers",
                        docker_url,
                        _root_cause(exc),
                    )
            finally:
                if client is not None:
                    _close_quietly(client)
            failures = back_off(bridge, failures)
    finally:
        bridge.put(_END)

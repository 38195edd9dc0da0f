"""The console attached to a daemon (``orchestry --connect URL``): every view and change goes through the
daemon's REST API, so the daemon's store is the one shown and the daemon is the one that acts.

A daemon that stops answering is a state, not a crash: calls raise ``BackendUnreachable`` (the console
shows "disconnected from URL: reason, retrying"), the event and log streams wait and resume.  A
follower's 503 becomes ``NotLeader`` naming the leader and, when known, its URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from core.api import wire
from core.errors import BadRequest, Conflict, NotFound, NotLeader, OrchestryError, SpecError
from core.models import AppView, Event, ScaleResult
from core.runtime.base import LogLine, NodeInfo
from orchestry_tui.client.async_http import AsyncApiClient
from orchestry_tui.client.http import ApiError, DaemonUnreachable, leader_url, path_part
from orchestry_tui.console.backend import BackendUnreachable
from orchestry_tui.console.frame import AppFigures, ClusterView, Frame, Leadership, chart_data, cluster_view

CHART_SECONDS = 300
# Events are polled, not streamed: see README "Console attached to a daemon" for why.
EVENTS_POLL_SECONDS = 1.0
# Each poll asks again for this many seconds before the newest event seen: an event written by a peer
# whose clock is a little behind, or committed just after the last poll, is still found (ids dedupe).
EVENTS_OVERLAP_SECONDS = 5.0
EVENTS_PER_POLL = 1000
LOG_TAIL = 200
RETRY_SECONDS = 1.0
STATUS_PATH = "/api/v1/cluster/status"
# How long "quit and stop" asks again a daemon that has no leader (a lone one back in ~2 s after a
# step-down; a failover within the lease TTL) before it quits saying the apps were not stopped.
NO_LEADER_WAIT_SECONDS = 10.0
ERROR_TYPES: dict[int, type[OrchestryError]] = {400: BadRequest, 404: NotFound, 409: Conflict, 422: SpecError}

T = TypeVar("T")
W = TypeVar("W", bound=wire.Wire)


class ConnectFailed(OrchestryError):
    """The console cannot attach (wrong URL, not a daemon, bad token): the message names the flag to fix."""


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a daemon URL, or None."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https") or not rest.strip("/"):
        return (
            f"--connect {url!r} is not an http:// or https:// URL: use e.g. --connect http://127.0.0.1:8000"
        )
    return None


def parse(model: type[W], data: Any) -> W:
    """An answer read with the wire model the daemon wrote it with (core/api/wire.py); keys a newer
    daemon may add are ignored.  An answer of another shape is an OrchestryError naming the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise OrchestryError(
            f"the daemon's answer does not read as {model.__name__} ({where}: {first['msg']}): "
            "is the daemon an older or newer Orchestry than this console?"
        ) from None


def app_view(data: dict[str, Any]) -> AppView:
    return parse(wire.App, data).view()


def leadership(status: dict[str, Any]) -> Leadership:
    cluster = parse(wire.ClusterStatus, status)
    lease = cluster.lease or {}
    return Leadership(
        node_id=cluster.node_id or "?",
        state=cluster.state,
        term=cluster.term,
        leader_id=cluster.leader_id,
        lease_expires_at=lease.get("expires_at"),
        leader_api_url=(leader_url(status, cluster.leader_id) or None) if cluster.leader_id else None,
    )


class HttpBackend:
    """Implements ``ConsoleBackend`` against a daemon at ``url``."""

    def __init__(self, url: str, token: str | None, state_dir: Path) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.api_address = self.url
        self.quit_note = f"console closed: the daemon at {self.url} keeps running the apps"
        self.lb_address = "?"  # the daemon says where its load balancer listens in every overview
        self.runtime = "docker"
        self.state_dir = state_dir  # local: snapshots are written where the operator sits
        self._client = AsyncApiClient(self.url, token)
        self._cluster: dict[str, Any] | None = None
        self._events_cursor: float | None = None
        self._seen_events: dict[int, float] = {}

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> list[str]:
        status = await self.attach()
        self._cluster = status
        role = "leads" if status.get("is_leader") else f"follows {status.get('leader_id') or 'nobody yet'}"
        return [f"attached to the daemon at {self.url}: node {status.get('node_id')} {role}"]

    async def attach(self) -> dict[str, Any]:
        """The daemon's cluster status, or ConnectFailed saying which flag to fix."""
        problem = url_problem(self.url)
        if problem:
            raise ConnectFailed(problem)
        try:
            status = await self._client.get(STATUS_PATH)
        except DaemonUnreachable as exc:
            raise ConnectFailed(
                f"cannot reach an Orchestry daemon at {self.url} ({exc.reason}): check the URL given to "
                "--connect (or ORCHESTRY_URL) and that `orchestry daemon` runs there"
            ) from None
        except ApiError as exc:
            if exc.status == 401:
                sent = "the token sent was refused" if self.token else "no token was sent"
                raise ConnectFailed(
                    f"the daemon at {self.url} requires its API token and {sent}: pass --token TOKEN "
                    "or set ORCHESTRY_API_TOKEN to the daemon's ORCHESTRY_API_TOKEN"
                ) from None
            raise ConnectFailed(
                f"{self.url} answered {exc.status} to {STATUS_PATH} ({exc.detail}): it is not an Orchestry "
                "daemon (or an older one); check the URL given to --connect"
            ) from None
        except ValueError:
            status = None  # a 200 that is not JSON: some other web server
        if not isinstance(status, dict) or "node_id" not in status:
            raise ConnectFailed(
                f"{self.url} answered {STATUS_PATH} but not as an Orchestry daemon does: "
                "check the URL given to --connect"
            )
        return status

    async def stop(self, stop_apps: bool = False) -> None:
        """``stop_apps``: every app is taken down on the daemon (it keeps running, and so does its nginx,
        which is the daemon's to stop)."""
        try:
            if stop_apps:
                await self._down_every_app()
        finally:
            await self._client.close()

    async def _down_every_app(self) -> None:
        """A daemon with no leader right now refuses every down: one that stepped down a moment ago sits
        out ~2 s and then, alone, takes the lease back, so it is asked again for a while. A refusal that
        names a leader is raised as is: the apps are that leader's to run."""
        deadline = time.monotonic() + NO_LEADER_WAIT_SECONDS
        while True:
            try:
                listed = parse(wire.AppList, await self._get("/api/v1/apps"))
                downs = (self._post(self._app_path(a.name, "/down")) for a in listed.apps)
                # Every down has answered before a retry or a raise: none is left in flight.
                answers = await asyncio.gather(*downs, return_exceptions=True)
                refused = [a for a in answers if isinstance(a, BaseException)]
                if refused:
                    raise refused[0]
                return
            except NotLeader as exc:
                if exc.leader_id is not None or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(RETRY_SECONDS / 2)

    # --- requests -----------------------------------------------------------------------------
    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        try:
            return await request()
        except DaemonUnreachable as exc:
            raise BackendUnreachable(self.url, exc.reason) from None
        except ApiError as exc:
            raise self._error(exc) from None
        except ValueError:  # a 200 whose body is not JSON: a proxy's page, not the daemon
            raise OrchestryError(f"{self.url} answered with something that is not the API's JSON") from None

    def _error(self, exc: ApiError) -> OrchestryError:
        if exc.status == 503 and exc.leader:
            url = leader_url(self._cluster, exc.leader)
            return NotLeader(f"{exc.leader} at {url}" if url else exc.leader)
        if exc.status == 503 and exc.detail.startswith("No leader"):
            return NotLeader(None)
        if exc.status == 401:
            return ConnectFailed(
                f"the daemon at {self.url} refused the token ({exc.detail}): restart the console with "
                "--token TOKEN or ORCHESTRY_API_TOKEN set to the daemon's token"
            )
        return ERROR_TYPES.get(exc.status, OrchestryError)(exc.detail)

    async def _get(self, path: str, **query: Any) -> Any:
        return await self._call(lambda: self._client.get(path, **query))

    async def _post(self, path: str, body: Any = None, **query: Any) -> Any:
        return await self._call(lambda: self._client.post(path, body, **query))

    @staticmethod
    def _app_path(name: str, suffix: str = "") -> str:
        return f"/api/v1/apps/{path_part(name)}{suffix}"

    # --- observation --------------------------------------------------------------------------
    def app_now(self, name: str) -> AppView | None:
        return None  # every frame carries every app's replicas: nothing is ever read on its own

    async def frame(self, selected: str | None, charts: bool = True) -> Frame:
        series_request = self._series(selected) if selected and charts else _nothing()
        status, overview, series = await asyncio.gather(
            self._get(STATUS_PATH), self._get("/api/v1/overview"), series_request
        )
        self._cluster = status
        described = parse(wire.Overview, overview)
        self.lb_address = described.lb_listen or "?"
        self.runtime = described.runtime
        apps = [a.view() for a in described.apps]
        figures = {a.name: AppFigures(**a.figures.model_dump()) for a in described.apps}
        chosen = next((a for a in apps if a.name == selected), None)
        return Frame(
            # The daemon's clock: charts and the lease countdown are relative to the data's own time.
            now=float(described.timestamp or time.time()),
            leadership=leadership(status),
            apps=apps,
            figures=figures,
            charts=chart_data(chosen, series) if chosen and series is not None else None,
        )

    async def _series(self, name: str) -> dict[str, list[tuple[float, float]]] | None:
        try:
            answer = await self._get(self._app_path(name, "/series"), seconds=CHART_SECONDS)
        except NotFound:
            return None  # deleted since the last frame: the next frame no longer lists it
        return parse(wire.Series, answer).points()

    async def cluster(self) -> ClusterView:
        answer = await self._get("/api/v1/cluster/overview")
        return cluster_view(parse(wire.ClusterOverview, answer).model_dump())

    async def step_down(self) -> str:
        """Through a controller LB the DELETE reaches the leader (followers answer 503, the LB retries)."""
        answer = await self._call(lambda: self._client.delete("/api/v1/cluster/leadership"))
        who = parse(wire.LeadershipReleased, answer).node_id or "the leader"
        return f"{who} released its lease: a peer takes over"

    async def recent_events(self, limit: int) -> list[Event]:
        events = await self._events(limit, since=None)
        self._remember(events)
        return events

    async def _events(self, limit: int, since: float | None) -> list[Event]:
        query: dict[str, Any] = {"limit": limit}
        if since is not None:
            query["since"] = f"{since:.6f}"
        answer = await self._get("/api/v1/events", **query)
        return [e.event() for e in parse(wire.Events, answer).events]

    def _remember(self, events: list[Event]) -> list[Event]:
        """The events not seen before, oldest first; moves the cursor and forgets ids it can't meet again."""
        fresh = [e for e in events if e.id not in self._seen_events]
        fresh.sort(key=lambda e: (e.timestamp, e.id))
        for event in fresh:
            self._seen_events[event.id] = event.timestamp
        if events:
            self._events_cursor = max([self._events_cursor or 0.0, *(e.timestamp for e in events)])
        if self._events_cursor is not None:
            horizon = self._events_cursor - 2 * EVENTS_OVERLAP_SECONDS
            self._seen_events = {i: t for i, t in self._seen_events.items() if t >= horizon}
        return fresh

    async def live_events(self) -> AsyncIterator[Event]:
        """New events, polled once a second; across a disconnect nothing is lost or repeated."""
        while True:
            cursor = self._events_cursor
            try:
                if cursor is None:  # the history could not be read: the first answer is the history
                    found = await self._events(50, since=None)
                else:
                    found = await self._events(EVENTS_PER_POLL, since=cursor - EVENTS_OVERLAP_SECONDS)
            except OrchestryError:
                found = []  # the refresh loop shows why (disconnected, refused); the next poll retries
            for event in self._remember(found):
                yield event
            await asyncio.sleep(EVENTS_POLL_SECONDS)

    async def get_app(self, name: str) -> AppView:
        return app_view(await self._get(self._app_path(name)))

    async def nodes(self) -> list[NodeInfo]:
        answer = await self._get("/api/v1/nodes")
        return [n.info() for n in parse(wire.NodeList, answer).nodes]

    async def drain_node(self, node_id: str) -> int:
        answer = await self._post(f"/api/v1/nodes/{path_part(node_id)}/drain")
        return parse(wire.NodeDrain, answer).moving

    async def activate_node(self, node_id: str) -> None:
        await self._post(f"/api/v1/nodes/{path_part(node_id)}/activate")

    async def logs(self, name: str, tail: int) -> list[LogLine]:
        answer = await self._get(self._app_path(name, "/logs"), tail=tail)
        return [line.line() for line in parse(wire.Logs, answer).lines]

    async def follow_logs(self, name: str) -> AsyncIterator[LogLine]:
        """The daemon's NDJSON follow stream; a cut stream is resumed without repeating lines."""
        newest: float | None = None
        while True:
            replaying = newest is not None
            stream = self._client.stream_lines(self._app_path(name, "/logs"), follow="true", tail=LOG_TAIL)
            try:
                async with contextlib.aclosing(stream):  # a closed screen releases the connection now
                    async for raw in stream:
                        line = parse(wire.LogLineAnswer, raw).line()
                        # After a reconnect the daemon first replays its tail (oldest first): skip what
                        # was shown already.
                        if replaying and newest is not None and line.timestamp <= newest:
                            continue
                        replaying = False
                        newest = line.timestamp if newest is None else max(newest, line.timestamp)
                        yield line
                return  # the daemon ended the stream: the app was deleted
            except DaemonUnreachable:
                await asyncio.sleep(RETRY_SECONDS)
            except ApiError as exc:
                raise self._error(exc) from None

    async def diagnostic_snapshot(self) -> bytes:
        return await self._call(lambda: self._client.call("POST", "/api/v1/diagnostics", timeout=120.0))

    # --- changes ------------------------------------------------------------------------------
    async def scale(self, name: str, replicas: int) -> ScaleResult:
        answer = await self._post(self._app_path(name, "/scale"), {"replicas": replicas})
        return parse(wire.ScaleAnswer, answer).result()

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        body = {"replica": slot} if slot is not None else None
        answer = await self._post(self._app_path(name, "/restart"), body)
        return parse(wire.RestartAnswer, answer).restarted

    async def set_mode(self, name: str, mode: str) -> None:
        await self._call(lambda: self._client.put(self._app_path(name, "/scaling"), {"mode": mode}))

    async def up(self, name: str) -> None:
        await self._post(self._app_path(name, "/up"))

    async def backtest(
        self, name: str, changes: dict[str, Any] | None, since: float | None, trace: str | None
    ) -> dict[str, Any]:
        body = {k: v for k, v in (("policy", changes), ("since", since), ("trace", trace)) if v is not None}
        answer: dict[str, Any] = await self._post(self._app_path(name, "/backtest"), body)
        parse(wire.Backtest, answer)  # the chart draws the JSON itself; it must have the documented shape
        return answer

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        answer = await self._call(lambda: self._client.put(self._app_path(name, "/scaling"), changes))
        return parse(wire.ScalingAnswer, answer).policy

    async def down(self, name: str) -> None:
        await self._post(self._app_path(name, "/down"))


async def _nothing() -> None:
    return None


async def check_connection(url: str, token: str | None) -> str | None:
    """Before the screen opens: None when a daemon answers at ``url`` with this token, else why not."""
    backend = HttpBackend(url, token, Path("."))
    try:
        await backend.attach()
    except ConnectFailed as exc:
        return exc.message
    finally:
        await backend.stop()
    return None

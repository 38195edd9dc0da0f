"""The live backend: an Engine embedded in the console process, plus the REST API beside it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import NotLeader, OrchestryError, SettingsError
from core.models import AppSummary, AppView, Event, ScaleResult
from core.runtime.base import LogLine, NodeInfo
from orchestry_tui.console.api_server import ConsoleApiServer
from orchestry_tui.console.frame import (
    AppFigures,
    ClusterView,
    Frame,
    Leadership,
    chart_data,
    cluster_view,
)

if TYPE_CHECKING:
    from core.engine import Engine
    from core.services.app_views import AppListing
    from core.settings import Settings

CHART_SECONDS = 300
# Apps a frame takes per step of the loop (see EngineBackend._listed): ~1-2 ms of work each.
FRAME_SLICE = 20
LEADER_POLL_SECONDS = 0.5

log = logging.getLogger(__name__)


def _figures(window: Any) -> AppFigures:
    return AppFigures(
        rps=window.rps,
        p95_latency_ms=window.p95_latency_ms,
        cpu_percent=window.cpu_percent,
        memory_percent=window.memory_percent,
    )


class EngineBackend:
    """Drives a real Engine.  Give ``engine`` to attach to one already started (tests do)."""

    def __init__(
        self,
        settings: Settings,
        apply_files: list[Path] | None = None,
        engine: Engine | None = None,
        serve_api: bool = True,
    ) -> None:
        self.settings = settings
        self.apply_files = list(apply_files or [])
        self.engine = engine
        self._owns_engine = engine is None
        self._serve_api = serve_api
        self._api: ConsoleApiServer | None = None
        self._apply_later: asyncio.Task[None] | None = None
        self.api_address = ""
        self.lb_address = settings.lb_listen
        self.runtime = settings.runtime
        self.state_dir = settings.state_dir
        self.stop_note = ""  # why a stop with stop_apps left the apps running (a peer leads them)
        self._summaries: dict[str, tuple[Hashable, AppSummary]] = {}  # by app: listing key, summary

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> list[str]:
        notices: list[str] = []
        if self.engine is None:
            from core.engine import Engine  # docker and sqlalchemy load only once the screen is up

            engine = Engine(self.settings)
            await engine.start()
            self.engine = engine
        if self.engine.runtime_error:
            notices.append(f"Docker is unreachable: {self.engine.runtime_error}")
        if self._serve_api:
            self._api = ConsoleApiServer(self.engine, self.settings)
            notice = await self._api.start()
            if notice:
                notices.append(notice)
            self.api_address = self._api.address
        problems = await self._check_apply_files()
        if problems:
            # As `orchestry apply`: one bad file means none is applied (not the good ones before it),
            # and the console still comes up, since the engine itself started fine.
            notices += problems
            notices.append(
                f"nothing from --apply was applied: fix the {len(problems)} problem(s) and start again"
            )
            return notices
        waiting: list[Path] = []
        for path in self.apply_files:
            try:
                notices.append(await self._apply(path))
            except NotLeader as exc:
                waiting.append(path)
                notices.append(
                    f"--apply {path.name} waits: {exc}. It is applied once this console takes the lease "
                    "(at the latest when the leader's lease expires)"
                )
        if waiting:
            self._apply_later = asyncio.create_task(self._apply_when_leader(waiting), name="apply-later")
        return notices

    async def _apply_when_leader(self, paths: list[Path]) -> None:
        """Apply what a follower could not, once this node leads (a dead console's lease expired)."""
        engine = self._engine
        # Leadership is a local check of the lease's expiry: polling it is free, and no event is missed.
        while not engine.is_leader():  # noqa: ASYNC110
            await asyncio.sleep(LEADER_POLL_SECONDS)
        for path in paths:
            try:
                await self._apply(path)
            except OrchestryError as exc:
                await engine.emit("error", "apply_failed", f"--apply {path.name}: {exc}")
            except Exception as exc:  # nobody awaits this task: an error raised out of it was lost
                log.exception("--apply %s failed", path.name)
                message = f"--apply {path.name}: {type(exc).__name__}: {exc}"
                await engine.emit("error", "apply_failed", message)

    async def _check_apply_files(self) -> list[str]:
        """Every ``--apply`` file through register's own checks (the dry run: nothing changes)."""
        problems: list[str] = []
        for path in self.apply_files:
            try:
                await self._engine.preview_register(await self._read(path))
            except OrchestryError as exc:
                problems.append(f"--apply {path.name}: {exc}")
        return problems

    async def _read(self, path: Path) -> str:
        try:
            return await asyncio.to_thread(path.read_text)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise SettingsError(f"cannot read {path} ({reason}): check the path") from None

    async def _apply(self, path: Path) -> str:
        view, _created = await self._engine.register(await self._read(path))
        result = await self._engine.up(view.name)
        return f"applied {path.name}: {view.name} up with {result.replicas} replica(s)"

    async def stop(self, stop_apps: bool = False) -> None:
        if self._apply_later is not None:
            self._apply_later.cancel()
        if self._api is not None:
            await self._api.stop()
        if self.engine is not None and (self._owns_engine or stop_apps):
            self.stop_note = await self.engine.stop(stop_apps=stop_apps)

    @property
    def _engine(self) -> Engine:
        assert self.engine is not None, "EngineBackend.start() was not called"
        return self.engine

    # --- observation --------------------------------------------------------------------------
    async def frame(self, selected: str | None, charts: bool = True) -> Frame:
        engine = self._engine
        listing = await engine.listed_apps()
        if listing is None:  # a follower, or apps whose replicas only the store knows
            apps, figures, now = await self._overview(selected)
        else:
            apps, figures, now = await self._listed(listing, selected)
        chosen = next((a for a in apps if a.name == selected), None)
        chart = None
        if chosen is not None and charts:
            chart = chart_data(chosen, (await engine.series(chosen.name, CHART_SECONDS)).series)
        return Frame(
            now=now,
            leadership=self._leadership(),
            apps=apps,
            figures=figures,
            charts=chart,
            summarised=frozenset(a.name for a in apps if isinstance(a, AppSummary)),
        )

    async def _overview(self, selected: str | None) -> tuple[list[AppView], dict[str, AppFigures], float]:
        # Replica views (and their CPU and memory) only of the app the replicas pane shows: the others
        # come as summaries, so a refresh costs what the screen shows, not the fleet's replica count.
        overview = await self._engine.overview(detail=(selected,) if selected else ())
        figures = {name: _figures(f) for name, f in overview.figures.items()}
        return overview.apps, figures, overview.timestamp

    async def _listed(
        self, listing: AppListing, selected: str | None
    ) -> tuple[list[AppView], dict[str, AppFigures], float]:
        """What ``Engine.overview(detail=[selected])`` answers, in steps of FRAME_SLICE apps (the whole
        of it held the loop ~10 ms at 100 apps, and a key pressed meanwhile waited), each app's summary
        kept while its listing key holds (what the apps table shows of it did not change)."""
        from core.services.app_views import FIGURES_SECONDS  # with the store: loaded once the screen is up

        now = time.time()
        metrics = self._engine.metrics
        kept, self._summaries = self._summaries, {}
        apps: list[AppView] = []
        figures: dict[str, AppFigures] = {}
        for index, (name, key) in enumerate(zip(listing.names, listing.keys, strict=True)):
            if name == selected:
                apps.append(listing.view(index))
            else:
                summary = kept.get(name)
                if summary is None or summary[0] != key:
                    summary = (key, listing.summary(index))
                self._summaries[name] = summary
                apps.append(summary[1])
            figures[name] = _figures(metrics.window(name, FIGURES_SECONDS))
            if index % FRAME_SLICE == FRAME_SLICE - 1:
                await asyncio.sleep(0)  # what came meanwhile (a key) goes first
        return apps, figures, now

    def _leadership(self) -> Leadership:
        seen = self._engine.leadership()
        return Leadership(
            node_id=seen.node_id,
            state=seen.state,
            term=seen.term,
            leader_id=seen.leader_id,
            lease_expires_at=seen.lease.expires_at if seen.lease else None,
            leader_api_url=(seen.lease.api_url or None) if seen.lease else None,
        )

    async def cluster(self) -> ClusterView:
        return cluster_view(await self._engine.cluster_overview())

    async def step_down(self) -> str:
        """The leader releases its lease: this node if it leads, else the leader asked over its API."""
        engine = self._engine
        seen = engine.leadership()
        if seen.leading:
            await engine.release_leadership()
            return f"{engine.node_id} released the lease of term {seen.term}: a peer takes over"
        lease = seen.lease
        leader = seen.leader_id
        if leader is None or lease is None or not lease.api_url:
            raise NotLeader(None)
        return await release_remote(lease.api_url, self.settings, leader)

    async def recent_events(self, limit: int) -> list[Event]:
        return await self._engine.events(limit=limit)

    async def live_events(self) -> AsyncIterator[Event]:
        subscription = self._engine.subscribe()
        try:
            async for event in subscription:
                yield event
        finally:
            subscription.close()

    def app_now(self, name: str) -> AppView | None:
        return self._engine.live_app(name)

    async def get_app(self, name: str) -> AppView:
        return await self._engine.get_app(name)

    async def nodes(self) -> list[NodeInfo]:
        return await self._engine.nodes()

    async def drain_node(self, node_id: str) -> int:
        return (await self._engine.drain_node(node_id)).moving

    async def activate_node(self, node_id: str) -> None:
        await self._engine.activate_node(node_id)

    async def logs(self, name: str, tail: int) -> list[LogLine]:
        return await self._engine.logs(name, tail=tail)

    async def follow_logs(self, name: str) -> AsyncIterator[LogLine]:
        async for line in self._engine.follow_logs(name, tail=200):
            yield line

    async def diagnostic_snapshot(self) -> bytes:
        return await self._engine.diagnostic_snapshot()

    # --- changes ------------------------------------------------------------------------------
    async def scale(self, name: str, replicas: int) -> ScaleResult:
        return await self._engine.scale(name, replicas)

    async def restart(self, name: str, slot: int | None = None) -> list[int]:
        return await self._engine.restart(name, slot)

    async def set_mode(self, name: str, mode: str) -> None:
        await self._engine.set_policy(name, {"mode": mode})

    async def up(self, name: str) -> None:
        await self._engine.up(name)

    async def backtest(
        self, name: str, changes: dict[str, Any] | None, since: float | None, trace: str | None
    ) -> dict[str, Any]:
        from core.api.wire import Backtest

        return Backtest.of(await self._engine.backtest(name, changes, since=since, trace=trace)).dump()

    async def set_policy(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        return await self._engine.set_policy(name, changes)

    async def down(self, name: str) -> None:
        await self._engine.down(name)


async def release_remote(api_url: str, settings: Settings, leader: str) -> str:
    """DELETE /api/v1/cluster/leadership on the leader's API (a follower console steering its cluster)."""
    from orchestry_tui.client.async_http import AsyncApiClient
    from orchestry_tui.client.http import ApiError, DaemonUnreachable

    token = settings.api_token.get_secret_value() if settings.api_token else None
    client = AsyncApiClient(api_url, token)
    try:
        await client.delete("/api/v1/cluster/leadership")
    except DaemonUnreachable as exc:
        raise OrchestryError(f"the leader {leader} at {api_url} did not answer: {exc.reason}") from None
    except ApiError as exc:
        raise OrchestryError(f"the leader {leader} at {api_url} refused to step down: {exc.detail}") from None
    finally:
        await client.close()
    return f"{leader} released its lease: a peer takes over"

"""Pure text for the console's cells: numbers with units, statuses with colour, ages."""

from __future__ import annotations

import re
import time

from rich.text import Text

from core.models import APP_SCALED_TO_ZERO, AppView, Event, ReplicaView, status_word
from orchestry_tui.console.frame import AppFigures, Leadership

# Theme-independent semantic styles: Rich style names the terminal maps itself.
STATUS_STYLES = {
    "running": "bold green",
    "ready": "green",
    "degraded": "bold yellow",
    "starting": "cyan",
    "draining": "magenta",
    "stopped": "dim",
    APP_SCALED_TO_ZERO: "dim",
    "unhealthy": "bold red",
    "error": "bold red",
    "failed": "bold red",
    "CrashLoopBackOff": "bold red",
}
CATEGORY_STYLES = {
    "lifecycle": "cyan",
    "scaling": "magenta",
    "health": "yellow",
    "error": "bold red",
    "cluster": "blue",
}
MISSING = "–"


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def number(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def percent(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}%"


def app_row(app: AppView, figures: AppFigures | None) -> tuple[object, ...]:
    """Cells of the apps table, in APP_COLUMNS order."""
    stopped = app.status == "stopped"
    # A stopped app's windows still hold its last minute of samples: shown, they read as live load.
    figures = AppFigures() if stopped or figures is None else figures
    desired = 0 if stopped else app.desired_replicas
    return (
        app.name,
        status_text(status_word(app.status, desired)),
        f"{app.ready_replicas}/{desired}",
        app.mode,
        number(figures.rps),
        number(figures.p95_latency_ms, 0),
        percent(figures.cpu_percent),
        percent(figures.memory_percent),
    )


APP_COLUMNS = (
    ("name", "NAME"),
    ("status", "STATUS"),
    ("ready", "READY"),
    ("mode", "MODE"),
    ("rps", "RPS"),
    ("p95", "P95 ms"),
    ("cpu", "CPU"),
    ("mem", "MEM"),
)

REPLICA_COLUMNS = (
    ("slot", "SLOT"),
    ("name", "NAME"),
    ("container", "CONTAINER"),
    ("port", "PORT"),
    ("node", "NODE"),
    ("state", "STATE"),
    ("ready", "READY"),
    ("restarts", "RESTARTS"),
    ("cpu", "CPU"),
    ("mem", "MEM"),
    ("reason", "REASON"),
)


def replica_row(replica: ReplicaView) -> tuple[object, ...]:
    return (
        str(replica.slot),
        replica.name,
        replica.container_id[:12] or MISSING,
        str(replica.port) if replica.port else MISSING,
        replica.node or MISSING,
        status_text(replica.state),
        Text("yes", style="green") if replica.ready else Text("no", style="red"),
        str(replica.restarts),
        percent(replica.cpu_percent),
        percent(replica.memory_percent),
        replica.reason,
    )


def seconds_left(until: float | None, now: float) -> str:
    if until is None:
        return MISSING
    left = until - now
    return f"{left:.0f}s" if left > 0 else "expired"


def leadership_text(leadership: Leadership, now: float) -> Text:
    text = Text()
    text.append(f"node {leadership.node_id} ")
    role_style = {"leader": "bold green", "follower": "bold yellow"}.get(leadership.state, "bold red")
    text.append(leadership.state, style=role_style)
    if leadership.term is not None:
        text.append(f"  term {leadership.term}")
    if leadership.state == "leader":
        text.append(f"  lease {seconds_left(leadership.lease_expires_at, now)}")
    elif leadership.leader_id:
        text.append(f"  leader {leadership.leader_id}")
    return text


def clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _app_name_pattern(app: str) -> str:
    # A replica's name ("web-1") or a longer app's ("web-api") is not the app's name.
    return rf"(?<![\w.-]){re.escape(app)}(?![\w-])"


def names_app(message: str, app: str) -> bool:
    """Whether ``message`` already says which app it is about ("web is stopping", "registered web"),
    so a "web: " prefix would name it twice ("web: web is stopping")."""
    return re.search(_app_name_pattern(app), message) is not None


def event_text(event: Event) -> Text:
    text = Text()
    text.append(clock(event.timestamp), style="dim")
    text.append(f" {event.category:<9} ", style=CATEGORY_STYLES.get(event.category, ""))
    if event.app and names_app(event.message, event.app):
        message = Text(event.message)
        message.highlight_regex(_app_name_pattern(event.app), "bold")  # as easy to spot as the prefix
        text.append_text(message)
        return text
    if event.app:
        text.append(f"{event.app}: ", style="bold")
    text.append(event.message)
    return text

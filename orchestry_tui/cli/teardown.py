"""``orchestry stop`` and ``orchestry down --all``: what ``core.teardown`` did, said for people or as JSON."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from orchestry_tui.cli import output


def _progress(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def _nginx_line(master: int | None, orphans: list[int]) -> str:
    pids = ", ".join(map(str, orphans))
    left = f"{len(orphans)} nginx worker(s) a killed master left serving (pid {pids})"
    if master and orphans:
        return f"stopped nginx (pid {master}) and ended {left}"
    if master:
        return f"stopped nginx (pid {master})"
    return f"ended {left}" if orphans else "nginx was not running"


def teardown_command(args: argparse.Namespace, settings_of: Callable[[argparse.Namespace], Any]) -> int:
    from core.errors import OrchestryError
    from core.teardown import teardown

    down_all = args.command == "down"
    if down_all and args.name:
        output.error(f"`down --all` stops every app: drop the name {args.name!r}, or drop --all")
        return 2
    try:
        settings = settings_of(args)
        report = asyncio.run(teardown(settings, mark_apps_stopped=down_all, on_wait=_progress))
    except OrchestryError as exc:
        output.error(exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    if getattr(args, "format", "table") == "json":
        output.print_json(
            {
                "state_dir": str(report.state_dir),
                "containers_removed": report.containers_removed,
                "apps_stopped": report.apps_stopped,
                "nginx_pid": report.nginx_pid,
                "nginx_orphans": report.nginx_orphans,
            }
        )
        return 0
    where = f"state dir {report.state_dir}"
    removed = report.containers_removed
    if report.nothing_there:
        output.say(f"{where} holds no Orchestry store: no app to stop")
    else:
        output.say(
            f"removed {len(removed)} replica container(s)" + (f": {', '.join(removed)}" if removed else "")
        )
    output.say(_nginx_line(report.nginx_pid, report.nginx_orphans))
    if down_all:
        names = ", ".join(report.apps_stopped) or "none was running"
        output.say(f"apps marked stopped: {names} (`orchestry up NAME` starts one again)")
    elif not report.nothing_there:
        output.say(
            f"{where}: apps keep their desired state; the next `orchestry` or `orchestry daemon` here "
            "starts them again (`orchestry down --all` would mark them stopped)"
        )
    return 0

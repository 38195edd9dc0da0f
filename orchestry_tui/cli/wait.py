"""``--wait``: follow apps until they reach what was asked, like ``kubectl rollout status``.

The daemon's ``GET /api/v1/apps/{name}/rollout`` says how far each app is (ready and updated replicas
against the desired count, replicas still terminating).  One progress line is printed per change; on
timeout the app's status reason and its last events tell why it is not there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestry_tui.cli import output
from orchestry_tui.client.http import ApiClient, ApiError, DaemonUnreachable, path_part

DEFAULT_TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.5
# One poll must never hold the wait past its deadline for long, nor hang on a stuck daemon.
POLL_REQUEST_TIMEOUT_SECONDS = 10.0
EVENTS_ON_TIMEOUT = 5
EXIT_TIMEOUT = 1
EXIT_INTERRUPTED = 130


@dataclass
class AppWait:
    app: str
    complete: bool = False
    rollout: dict[str, Any] | None = None
    problem: str = ""  # why the last poll got no rollout (daemon unreachable, not the leader, ...)
    gone: bool = False  # the app was deleted while we waited
    # The engine cannot start its replicas (missing image or secret, bad command) and will not try
    # again before the next up/restart/spec change: waiting longer can never succeed.
    blocked: bool = False
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"app": self.app, "complete": self.complete, "rollout": self.rollout}
        if self.problem:
            answer["problem"] = self.problem
        if self.blocked:
            answer["blocked"] = True
        if not self.complete:
            answer["events"] = self.events
        return answer


@dataclass
class WaitResult:
    apps: list[AppWait]
    seconds: float
    timeout: float
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        return all(a.complete for a in self.apps)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if self.complete else EXIT_TIMEOUT

    def as_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "interrupted": self.interrupted,
            "seconds": round(self.seconds, 2),
            "timeout": self.timeout,
            "apps": [a.as_json() for a in self.apps],
        }


def progress_counts(rollout: dict[str, Any]) -> str:
    """``2/5 ready``, with what else is going on: replicas on the old spec and terminating ones."""
    desired, terminating = rollout["desired_replicas"], rollout["terminating_replicas"]
    replicas = rollout["replicas"]
    if desired == 0:
        left = len(replicas) + terminating
        return "stopped" if left == 0 else f"stopping, {left} replica(s) left"
    parts = [f"{rollout['ready_replicas']}/{desired} ready"]
    if any(not r["updated"] for r in replicas):
        parts.append(f"{rollout['updated_ready_replicas']}/{desired} updated")
    if terminating:
        parts.append(f"{terminating} terminating")
    return ", ".join(parts)


def progress_line(rollout: dict[str, Any]) -> str:
    """``web: 2/5 ready``; with the reason when the app cannot make progress at all."""
    line = f"{rollout['app']}: {progress_counts(rollout)}"
    if rollout["status"] == "error":
        line += f" ({rollout['status_reason']})"
    return line


def _poll(client: ApiClient, state: AppWait) -> str:
    """Refresh one app's rollout; returns the line to show for it now."""
    try:
        state.rollout = client.get(f"/api/v1/apps/{path_part(state.app)}/rollout")
    except DaemonUnreachable as exc:
        state.problem = f"cannot reach the daemon ({exc.reason})"
        return f"{state.app}: {state.problem}, still waiting"
    except ApiError as exc:
        if exc.status == 404:
            state.gone, state.problem = True, exc.detail
            return f"{state.app}: {exc.detail}"
        if exc.status != 503:
            raise
        state.problem = exc.detail  # a failover in progress: the next leader answers soon
        return f"{state.app}: {exc.detail}, still waiting"
    state.problem = ""
    assert state.rollout is not None
    state.complete = bool(state.rollout["complete"])
    # The leader reports "error" only for an app it cannot start replicas for (compute_status).
    state.blocked = not state.complete and state.rollout["status"] == "error"
    return progress_line(state.rollout)


def _last_events(client: ApiClient, app: str) -> list[dict[str, Any]]:
    try:
        answer = client.get(f"/api/v1/apps/{path_part(app)}/events", limit=EVENTS_ON_TIMEOUT)
    except (ApiError, DaemonUnreachable):
        return []
    return list(reversed(answer["events"]))  # oldest first, as a story reads


def wait_for_apps(
    client: ApiClient, names: list[str], timeout: float, say: Callable[[str], None] = output.say
) -> WaitResult:
    """Poll until every app is complete, deleted or blocked, the timeout passes, or Ctrl-C."""
    poller = ApiClient(client.base_url, client.token, timeout=POLL_REQUEST_TIMEOUT_SECONDS)
    states = [AppWait(name) for name in names]
    shown: dict[str, str] = {}
    started = time.monotonic()
    deadline = started + timeout
    interrupted = False
    try:
        while True:
            for state in states:
                if state.complete or state.gone or state.blocked:
                    continue
                poller.timeout = min(POLL_REQUEST_TIMEOUT_SECONDS, max(1.0, deadline - time.monotonic()))
                line = _poll(poller, state)
                if shown.get(state.app) != line:
                    shown[state.app] = line
                    say(line)
                if state.complete:
                    say(f"{state.app}: complete after {time.monotonic() - started:.1f}s")
            pending = [s for s in states if not s.complete and not s.gone and not s.blocked]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        interrupted = True
    result = WaitResult(states, time.monotonic() - started, timeout, interrupted)
    if not interrupted:
        for state in states:
            if not state.complete and not state.gone:
                state.events = _last_events(poller, state.app)
    return result


def report_failure(result: WaitResult) -> None:
    """On stderr: why each unfinished app is not there yet, or that Ctrl-C left the change running."""
    unfinished = [s for s in result.apps if not s.complete]
    if result.interrupted:
        names = ", ".join(s.app for s in unfinished) or "the apps"
        follow = " ".join(f"`orchestry status {s.app}`" for s in unfinished[:3])
        output.error(
            f"interrupted: stopped waiting for {names}; the change continues on the daemon"
            + (f" (follow it with {follow})" if follow else "")
        )
        return
    for state in unfinished:
        if state.gone:
            output.error(f"{state.app} is gone while waiting: {state.problem}")
            continue
        if state.blocked:
            reason = (state.rollout or {}).get("status_reason") or "unknown reason"
            output.error(
                f"{state.app} is blocked, stopped waiting: it cannot start replicas: {reason}; "
                f"the engine does not retry until `orchestry restart {state.app}` "
                "or a fixed spec is applied"
            )
            continue
        where = progress_counts(state.rollout) if state.rollout else "no answer"
        reason = state.problem or (state.rollout or {}).get("status_reason") or ""
        status = (state.rollout or {}).get("status", "unknown")
        output.error(
            f"{state.app} did not finish within {result.timeout:g}s: {where}; status {status}"
            + (f": {reason}" if reason else "")
        )
        if state.events:
            sys.stderr.write(f"last events of {state.app}:\n")
            for event in state.events:
                stamp = time.strftime("%H:%M:%S", time.localtime(event["timestamp"]))
                sys.stderr.write(f"  {stamp} {event['kind']}: {event['message']}\n")


def finish(client: ApiClient, answer: dict[str, Any], names: list[str], args: Any, code: int = 0) -> int:
    """Wait when ``--wait`` asked for it, then print the JSON answer (with the wait's outcome) if
    ``--format json``; table output was already printed by the command.  Returns the exit code."""
    as_json = getattr(args, "format", "table") == "json"
    timeout = getattr(args, "timeout", None)
    if (getattr(args, "wait", False) or timeout is not None) and names:
        # JSON output owns stdout: the progress lines go to stderr then.
        stream = sys.stderr if as_json else sys.stdout

        def say(line: str) -> None:
            stream.write(line + "\n")
            stream.flush()  # progress is only worth something when it is seen as it happens

        sys.stdout.flush()
        result = wait_for_apps(client, names, timeout or DEFAULT_TIMEOUT_SECONDS, say)
        answer = {**answer, "wait": result.as_json()}
        if result.exit_code:
            report_failure(result)
        code = EXIT_INTERRUPTED if result.interrupted else code or result.exit_code
    if as_json:
        output.print_json(answer)
    return code

"""One function per ``orchestry`` subcommand.  Each returns the exit code (0 only on success).

HTTP subcommands import nothing heavier than the stdlib client and (for tables) rich; ``db upgrade``
is the only one that touches the database directly.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.documents import DocumentError, read_document
from core.models import status_and_reason, status_word
from orchestry_tui.cli import backtest, nodes, output, wait
from orchestry_tui.cli.apply import apply
from orchestry_tui.client.http import (
    ApiClient,
    ApiError,
    DaemonUnreachable,
    config_file,
    path_part,
    resolve_url,
)

Command = Callable[[ApiClient, argparse.Namespace], int]


def _as_json(args: argparse.Namespace) -> bool:
    return getattr(args, "format", "table") == "json"


def _app_path(name: str, suffix: str = "") -> str:
    return f"/api/v1/apps/{path_part(name)}{suffix}"


def _noun(count: int, word: str) -> str:
    """``word`` for one, its plural for any other count ("1 replica", "0 containers")."""
    return word if count == 1 else f"{word}s"


def _replicas(count: int) -> str:
    return f"{count} {_noun(count, 'replica')}"


# --- apps -----------------------------------------------------------------------------------------


def register(client: ApiClient, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        text = path.read_text()
    except OSError as exc:
        output.error(f"cannot read {path}: {exc.strerror or exc}: check the path")
        return 1
    try:
        document = read_document(text, str(path))  # the guarded door the daemon reads bodies by
    except DocumentError as exc:
        output.error(str(exc))
        return 1
    if not isinstance(document, dict):
        output.error(f"{path} must hold one app document (a mapping with metadata and spec)")
        return 1
    try:
        answer = client.post("/api/v1/apps", document, replace="true")
    except ApiError as exc:
        if exc.status not in (400, 422):
            raise
        output.error(f"{path}: {exc.detail}")  # which file, as apply says it: "spec is missing" alone did not
        return 1
    if _as_json(args):
        output.print_json(answer)
    else:
        app = answer["app"]
        verb = "registered" if answer["created"] else "updated"
        if app["status"] == "stopped":
            then = f"start it with `orchestry up {app['name']}`"
        else:  # `up` on a running app does nothing: its replicas roll to a changed spec by themselves
            then = f"its replicas roll to a changed spec (`orchestry status {app['name']}` shows them)"
        output.say(f"{verb} {app['name']} (status {app['status']}); {then}")
    return 0


def up(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.post(_app_path(args.name, "/up"))
    if not _as_json(args):
        output.say(
            f"{answer['app']}: {_replicas(answer['replicas'])} "
            f"({answer['started']} started, {answer['adopted']} adopted)"
        )
    return wait.finish(client, answer, [args.name], args)


def down(client: ApiClient, args: argparse.Namespace) -> int:
    if not args.name:
        output.error("name the app to stop (`orchestry down NAME`), or stop every app with `--all`")
        return 2
    answer = client.post(_app_path(args.name, "/down"), force="true" if args.force else None)
    if not _as_json(args):
        stopped = answer["containers_stopped"]
        output.say(f"{answer['app']}: stopped {stopped} {_noun(stopped, 'container')}")
    return wait.finish(client, answer, [args.name], args)


def _confirmed(question: str) -> bool | None:
    """True/False from the user; None when stdin is not a terminal (scripts must pass -f)."""
    if not sys.stdin.isatty():
        return None
    try:
        reply = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return reply.strip().lower() in ("y", "yes")


def delete(client: ApiClient, args: argparse.Namespace) -> int:
    names: list[str] = list(dict.fromkeys(args.name))
    listed = ", ".join(names)
    if not args.force:
        question = f"Delete app {listed} and stop its containers?"
        if len(names) > 1:
            question = f"Delete apps {listed} and stop their containers?"
        confirmed = _confirmed(question)
        if confirmed is None:
            output.error(f"refusing to delete {listed} without confirmation: pass -f to delete from a script")
            return 1
        if not confirmed:
            output.say("cancelled")
            return 1
    answers: list[Any] = []
    failed = 0
    for name in names:
        try:
            answer = client.delete(_app_path(name))
        except ApiError as exc:
            if len(names) == 1 or exc.status != 404:
                raise
            output.error(exc.detail)  # the others are still deleted, as `kubectl delete a b` does
            failed += 1
            continue
        answers.append(answer)
        if not _as_json(args):
            output.say(f"deleted {answer['app']}")
    if _as_json(args):
        output.print_json(answers[0] if len(names) == 1 else {"apps": answers})
    return 1 if failed else 0


def restart(client: ApiClient, args: argparse.Namespace) -> int:
    body = {"replica": args.replica} if args.replica is not None else {}
    answer = client.post(_app_path(args.name, "/restart"), body)
    if not _as_json(args):
        slots = ", ".join(str(s) for s in answer["restarted"]) or "none"
        output.say(f"{answer['app']}: restarted {_noun(len(answer['restarted']), 'replica')} {slots}")
    return wait.finish(client, answer, [args.name], args)


def _replica_rows(replicas: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            r["slot"],
            r["container_id"],
            f"{r['host']}:{r['port']}",
            r.get("node") or "-",
            r["state"],
            "yes" if r["ready"] else "no",
            output.percent(r["cpu_percent"]),
            output.percent(r["memory_percent"]),
            r["restarts"],
            output.ago(r["started_at"]),
            r["reason"],
        ]
        for r in replicas
    ]


REPLICA_COLUMNS = (
    "SLOT",
    "CONTAINER",
    "ADDRESS",
    "NODE",
    "STATE",
    "READY",
    "CPU",
    "MEM",
    "RESTARTS",
    "AGE",
    "REASON",
)


def status(client: ApiClient, args: argparse.Namespace) -> int:
    if args.name is None:  # `kubectl get` without a name lists them all; this said "name is required"
        return list_apps(client, args)
    app = client.get(_app_path(args.name))
    if _as_json(args):
        output.print_json(app)
        return 0
    word, reason = status_and_reason(app["status"], app["desired_replicas"], app["status_reason"])
    summary = reason or f"{app['ready_replicas']}/{app['desired_replicas']} replicas ready"
    output.say(f"{app['name']}: {word} — {summary} (mode {app['mode']})")
    if app["replicas"]:
        output.print_table(REPLICA_COLUMNS, _replica_rows(app["replicas"]))
    return 0


def list_apps(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.get("/api/v1/apps")
    if _as_json(args):
        output.print_json(answer)
        return 0
    if not answer["apps"]:
        output.say("no apps registered: register and start some with `orchestry apply FILE|DIR`")
        return 0
    rows = [
        [
            a["name"],
            status_word(a["status"], a["desired_replicas"]),
            f"{a['ready_replicas']}/{a['desired_replicas']}",
            a["mode"],
            a["image"],
            output.ago(a["last_scaled_at"]),
            output.ago(a["created_at"]),
        ]
        for a in answer["apps"]
    ]
    output.print_table(("NAME", "STATUS", "READY", "MODE", "IMAGE", "SCALED", "AGE"), rows)
    return 0


def describe(client: ApiClient, args: argparse.Namespace) -> int:
    from orchestry_tui.cli.describe import describe_document, describe_lines

    app = client.get(_app_path(args.name))
    history = client.get(f"/apps/{path_part(args.name)}/metrics").get("scaling_history") or []
    described = describe_document(app, history)
    if not args.show_spec:
        described = {k: v for k, v in described.items() if k not in ("spec", "raw")}
    if _as_json(args):
        output.print_json(described)
        return 0
    for line in describe_lines(described, output.clock, output.ago):
        output.say(line)
    if args.show_spec:
        output.say("Spec (secrets redacted):")
        output.print_yaml(app["spec"])
    return 0


def spec(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.get(f"/apps/{path_part(args.name)}/raw")
    document = answer["raw"] if args.raw else answer["parsed"]["spec"]
    if _as_json(args):
        output.print_json(document)
    else:
        output.print_yaml(document)
    return 0


def scale(client: ApiClient, args: argparse.Namespace) -> int:
    counts = {c for c in (args.replicas, args.replicas_flag) if c is not None}
    if len(counts) != 1:
        problem = "name the replica count" if not counts else "two different counts were given"
        output.error(f"{problem}: `orchestry scale {args.name} N` or `--replicas N`")
        return 2
    answer = client.post(_app_path(args.name, "/scale"), {"replicas": counts.pop()})
    if not _as_json(args):
        if answer["status"] == "no_change":
            line = f"{answer['app']}: already at {_replicas(answer['replicas'])}"
        else:
            line = f"{answer['app']}: scaling to {_replicas(answer['replicas'])}"
        if answer["clamped"]:
            why = answer["message"] or "clamped to the policy limits"
            line += f" (asked for {answer['requested']}: {why})"
        elif answer["status"] == "scaled" and answer["message"]:
            line = f"{answer['app']}: {answer['replicas']} desired replicas; {answer['message']}"
        output.say(line)
    return wait.finish(client, answer, [args.name], args)


def mode(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.put(_app_path(args.name, "/scaling"), {"mode": args.mode})
    if _as_json(args):
        output.print_json(answer)
    else:
        output.say(f"{answer['app']}: scaling mode {answer['policy'].get('mode', args.mode)}")
    return 0


# --- observation ----------------------------------------------------------------------------------


def events(client: ApiClient, args: argparse.Namespace) -> int:
    path = _app_path(args.name, "/events") if args.name else "/api/v1/events"
    answer = client.get(path, type=args.type, limit=args.limit, since=args.since)
    if _as_json(args):
        output.print_json(answer)
        return 0
    if not answer["events"]:
        output.say("no events match")
        return 0
    rows = [
        [output.clock(e["timestamp"]), e["app"] or "-", e["category"], e["kind"], e["message"]]
        for e in answer["events"]
    ]
    output.print_table(("TIME", "APP", "TYPE", "KIND", "MESSAGE"), rows)
    return 0


def _log_text(line: dict[str, Any]) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line["timestamp"]))
    return f"{stamp} {line['replica']} | {line['message']}"


def logs(client: ApiClient, args: argparse.Namespace) -> int:
    query = {"tail": args.tail, "since": args.since, "until": args.until}
    if args.follow and args.until is not None:  # said before any request, in the flags' own words
        output.error("--until cannot be combined with --follow (a follow has no end): drop one of them")
        return 2
    if args.follow:
        return _follow(client, args, query)
    answer = client.get(_app_path(args.name, "/logs"), **query)
    if _as_json(args):
        output.print_json(answer)
    else:
        for line in answer["lines"]:
            output.say(_log_text(line))
        if not answer["lines"]:  # an empty screen and exit 0 said nothing
            if _is_stopped(client, args.name):
                output.note(
                    f"no log lines: {args.name} is stopped, no replica runs (orchestry up {args.name})"
                )
            else:
                output.note(f"no log lines from {args.name}'s replicas in that window")
    return 0


def _follow(client: ApiClient, args: argparse.Namespace, query: dict[str, Any]) -> int:
    if _is_stopped(client, args.name):  # following a stopped app would wait in silence
        output.note(
            f"{args.name} is stopped: waiting for its replicas (orchestry up {args.name}); Ctrl-C ends"
        )
    # Where a resumed follow starts: the last line shown (the daemon's clock stamps the lines; before
    # the first line, the moment the follow began on this host).
    resume_from = time.time()
    try:
        for line in client.stream_lines(_app_path(args.name, "/logs"), follow="true", **query):
            if _as_json(args):
                output.print_record(line)
            else:
                sys.stdout.write(_log_text(line) + "\n")
            sys.stdout.flush()
            resume_from = float(line["timestamp"])
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how people stop following
    except DaemonUnreachable:
        pass  # cut short (the daemon killed): said below, as a stream the daemon ended
    return _follow_ended(client, args.name, resume_from)


def _follow_ended(client: ApiClient, name: str, resume_from: float) -> int:
    """A follow only ends when its app is deleted or the daemon serving it goes away: say which, as
    kubectl does, instead of a silent exit 0 that looks like "no more lines"."""
    # Like `kubectl logs -f` and `docker compose logs -f`, a follow cut off is not re-opened by itself:
    # the lines logged while no daemon served them would be missing without a word.  The command
    # given resumes from the last line shown, so nothing is lost (that line may be printed again).
    since = math.floor(resume_from * 1000) / 1000  # rounded down: a line after it is never skipped
    resume = f"`orchestry logs {name} -f --since {since:.3f}`"
    try:
        client.get(_app_path(name))
        gone = False
    except DaemonUnreachable:
        gone = True
    except ApiError as exc:
        if exc.status == 404:
            output.note(f"{name} was deleted: no more log lines")
            return 0
        gone = exc.status == 503  # "this node is shutting down", or no node behind the LB answered
    if gone:
        output.error(
            f"the log stream of {name} ended: the daemon at {client.base_url} went away (stopped, "
            f"restarting or unreachable); once it answers again, resume with {resume}"
        )
        return 1
    output.error(
        f"the log stream of {name} ended: the daemon node serving it went away, and {client.base_url} "
        f"answers again (the daemon restarted, or another node behind the controller LB); resume with "
        f"{resume}"
    )
    return 1


def _is_stopped(client: ApiClient, name: str) -> bool:
    return bool(client.get(_app_path(name, ""))["status"] == "stopped")


def metrics(client: ApiClient, args: argparse.Namespace) -> int:
    name = args.name_flag or args.app
    answer = client.get(_app_path(name, "/metrics")) if name else client.get("/metrics")
    if _as_json(args):
        output.print_json(answer)
        return 0
    if not name:
        output.print_fields(
            [
                (section, ", ".join(f"{k}={v}" for k, v in answer[section].items()) or "-")
                for section in ("cluster", "apps", "instances", "nginx")
            ],
            title="Node metrics",
        )
        return 0
    current = answer["current"]
    output.print_table(
        ("METRIC", "VALUE"),
        [
            ("requests/s", f"{current['rps']:.1f}"),
            ("p95 latency", f"{current['p95_latency_ms']:.0f} ms"),
            ("connections", current["active_connections"]),
            ("cpu", output.percent(current["cpu_percent"])),
            ("memory", output.percent(current["memory_percent"])),
            ("replicas", f"{current['healthy_replicas']}/{current['total_replicas']} healthy"),
        ],
        title=f"{name} metrics",
    )
    decision = answer.get("last_decision")
    if decision:
        output.say(f"last decision: {decision.get('reason') or decision}")
    return 0


def cluster(client: ApiClient, args: argparse.Namespace) -> int:
    path = {
        "status": "/api/v1/cluster/status",
        "leader": "/api/v1/cluster/leader",
        "health": "/cluster/health",
    }
    answer = client.get(path[args.what])
    if _as_json(args):
        output.print_json(answer)
        return 0
    if args.what == "status":
        output.print_fields(
            [
                (k, answer[k])
                for k in ("node_id", "state", "term", "leader_id", "cluster_size", "election_status")
            ],
            title="Cluster",
        )
        rows = [
            [
                n.get("node_id"),
                n.get("state"),
                n.get("api_url"),
                output.ago(n.get("last_heartbeat")),
                "yes" if n.get("is_healthy") else "no",
            ]
            for n in answer["nodes"]
        ]
        if rows:
            output.print_table(("NODE", "STATE", "API", "HEARTBEAT", "HEALTHY"), rows)
    elif args.what == "leader":
        output.print_fields(
            [
                ("leader", answer["leader_id"]),
                ("api", answer["api_url"]),
                ("term", answer["term"]),
                ("lease expires", output.clock(answer["lease_expires_at"])),
            ]
        )
    else:
        output.print_fields(
            [(k, answer[k]) for k in ("status", "node_id", "state", "leader_id", "cluster_ready")]
        )
    return 0


# --- secrets --------------------------------------------------------------------------------------

_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)


def secret(client: ApiClient, args: argparse.Namespace) -> int:
    if args.secret_command == "set":
        fields: dict[str, str] = {}
        for item in args.fields:
            match = _FIELD.match(item)
            if not match:
                key, has_value, _value = item.partition("=")  # the value is a secret: never echoed
                if has_value:
                    why = f"field name {key!r} is not valid (a letter or _, then letters, digits, _ . -)"
                else:
                    why = f"'{key}' is not KEY=VALUE"
                output.error(f"{why}: write fields like password=s3cret (password=- reads it from stdin)")
                return 1
            fields[match.group(1)] = match.group(2)
        # KEY=- reads the value from stdin, as `docker secret create NAME -` does: a value on the command
        # line is in the shell's history and in `ps` for every user of the machine.
        from_stdin = [key for key, value in fields.items() if value == "-"]
        if len(from_stdin) > 1:
            output.error(
                f"only one field can be read from stdin ({', '.join(from_stdin)} are all '-'): "
                "set the others with KEY=VALUE or in another `orchestry secret set`"
            )
            return 1
        if from_stdin:
            fields[from_stdin[0]] = sys.stdin.read().removesuffix("\n").removesuffix("\r")
            if not fields[from_stdin[0]]:  # `< /dev/null`, or a pipe from a command that failed
                output.error(
                    f"{from_stdin[0]}=- read nothing from stdin: nothing was set; pipe the value in "
                    f"(e.g. `cat pw.txt | orchestry secret set {args.name} {from_stdin[0]}=-`)"
                )
                return 1
        answer = client.put(f"/api/v1/secrets/{path_part(args.name)}", fields)
        if _as_json(args):
            output.print_json(answer)
        else:
            output.say(f"secret {answer['name']}: fields {', '.join(answer['fields'])} set")
        return 0
    if args.secret_command in ("rm", "delete"):
        answer = client.delete(f"/api/v1/secrets/{path_part(args.name)}")
        if _as_json(args):
            output.print_json(answer)
        else:
            output.say(f"deleted secret {answer['name']}")
        return 0
    if args.name:
        one = client.get(f"/api/v1/secrets/{path_part(args.name)}")
        answer = {"secrets": [one]}
    else:
        answer = client.get("/api/v1/secrets")
    if _as_json(args):
        output.print_json(answer)
    elif not answer["secrets"]:
        output.say("no secrets: add one with `orchestry secret set NAME key=value`")
    else:
        output.print_table(
            ("SECRET", "FIELDS"), [(s["name"], ", ".join(s["fields"])) for s in answer["secrets"]]
        )
    return 0


# --- node -----------------------------------------------------------------------------------------


DIAGNOSE_TIMEOUT_SECONDS = 120.0


def diagnose(client: ApiClient, args: argparse.Namespace) -> int:
    chosen = Path(args.output) if args.output else None
    # Checked before the daemon builds the bundle (seconds of work): a path that cannot be written is
    # one line now, not a traceback after the download.
    folder = chosen if chosen is not None and chosen.is_dir() else (chosen.parent if chosen else Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        output.error(f"-o {args.output}: cannot write into {folder} (no such directory, or not writable)")
        return 2
    # The bundle gathers logs, events and Docker's view: allowed longer than an ordinary request.
    patient = ApiClient(client.base_url, client.token, timeout=max(client.timeout, DIAGNOSE_TIMEOUT_SECONDS))
    reply = patient.call("POST", "/api/v1/diagnostics")
    disposition = reply.headers.get("Content-Disposition", "")
    match = re.search(r'filename="([^"/]+)"', disposition)
    offered = match.group(1) if match else "orchestry-diagnostics.tar.gz"
    target = chosen / offered if chosen is not None and chosen.is_dir() else (chosen or Path(offered))
    try:
        target.write_bytes(reply.body)
    except OSError as exc:
        output.error(
            f"-o {args.output or target}: cannot write it ({exc.strerror or exc}): choose another path"
        )
        return 2
    members = _bundle_members(reply.body)
    if _as_json(args):
        output.print_json(
            {
                "file": str(target),
                "bytes": len(reply.body),
                "members": [{"name": n, "bytes": b} for n, b in members],
            }
        )
        return 0
    output.print_table(("MEMBER", "BYTES"), members, title="collected")
    unpacked = sum(size for _name, size in members)
    output.say(
        f"wrote {target}: {len(members)} members, {unpacked} bytes ({len(reply.body)} bytes compressed); "
        "secrets are redacted: attach it to your report (README.txt inside says which file answers what)"
    )
    return 0


def _bundle_members(body: bytes) -> list[tuple[str, int]]:
    """(name inside the bundle, bytes) of every member of the .tar.gz the daemon sent."""
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return [(m.name.split("/", 1)[-1], m.size) for m in archive.getmembers() if m.isfile()]


def info(client: ApiClient, args: argparse.Namespace) -> int:
    health = client.get("/health")
    cluster_view = client.get("/api/v1/cluster/status")
    answer = {
        "url": client.base_url,
        "version": health["version"],
        "node_id": health["node_id"],
        "is_leader": health["is_leader"],
        "leader_id": cluster_view["leader_id"],
        "term": cluster_view["term"],
        "database": health["database"],
    }
    if _as_json(args):
        output.print_json(answer)
        return 0
    database = answer["database"]["status"]
    if answer["database"].get("detail"):
        database += f" ({answer['database']['detail']})"
    output.print_fields(
        [
            ("daemon", answer["url"]),
            ("version", answer["version"]),
            ("node", answer["node_id"] + (" (leader)" if answer["is_leader"] else "")),
            ("leader", answer["leader_id"] or "none"),
            ("term", answer["term"]),
            ("database", database),
        ]
    )
    return 0


def config(client: ApiClient, args: argparse.Namespace) -> int:
    path = config_file()
    if args.host or args.port:
        import yaml

        from orchestry_tui.client.http import read_cli_config

        current = read_cli_config(path)
        if args.host:
            current["host"] = args.host
        if args.port:
            current["port"] = args.port
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(current, sort_keys=True))
    resolved = resolve_url(getattr(args, "url", None))
    answer: dict[str, Any] = {"url": resolved.url, "source": resolved.source, "config_file": str(path)}
    answer.update(_runtime_settings())
    if _as_json(args):
        output.print_json(answer)
    else:
        output.print_fields(
            [
                ("url", answer["url"]),
                ("from", answer["source"]),
                ("config file", str(path)),
                ("runtime", answer["runtime"]),
                ("docker", answer["docker_url"]),
            ]
        )
    return 0


def _runtime_settings() -> dict[str, str]:
    """Where a daemon started from this environment runs replicas (ORCHESTRY_RUNTIME, the Docker URL)."""
    from core.errors import SettingsError
    from core.runtime.docker import resolve_docker_url
    from core.settings import load_settings, redact_url

    try:
        settings = load_settings()
    except SettingsError as exc:
        return {"runtime": f"invalid: {exc}", "docker_url": ""}
    return {"runtime": settings.runtime, "docker_url": redact_url(resolve_docker_url(settings.docker_url))}


def db_upgrade(args: argparse.Namespace) -> int:
    """Local: migrate the database the daemon would use (no daemon needed)."""
    from core.settings import load_settings
    from core.store import current_revision, upgrade

    overrides = {"database_url": args.database_url} if args.database_url else {}
    settings = load_settings(**overrides)
    upgrade(settings.database_url)
    revision = current_revision(settings.database_url)
    if _as_json(args):
        output.print_json({"status": "upgraded", "revision": revision})
    else:
        output.say(f"database at revision {revision}")
    return 0


HTTP_COMMANDS: dict[str, Command] = {
    "config": config,
    "register": register,
    "apply": apply,
    "up": up,
    "down": down,
    "delete": delete,
    "restart": restart,
    "status": status,
    "list": list_apps,
    "describe": describe,
    "spec": spec,
    "scale": scale,
    "mode": mode,
    "backtest": backtest.run,
    "events": events,
    "logs": logs,
    "metrics": metrics,
    "cluster": cluster,
    "nodes": nodes.nodes,
    "node": nodes.node,
    "secret": secret,
    "diagnose": diagnose,
    "info": info,
}


def api_token() -> str | None:
    return os.environ.get("ORCHESTRY_API_TOKEN") or None

"""The ``orchestry`` command line (API.md "CLI")."""

from __future__ import annotations

import argparse
import difflib
import math
import re
from typing import Any, NoReturn

FORMATS = ("table", "json", "yaml")

# What Docker Compose and kubectl users type, and the orchestry command that does it.
FAMILIAR_COMMANDS = {
    "ps": "list",
    "get": "list",
    "ls": "list",
    "rm": "delete",
    "remove": "delete",
    "start": "up",
    "run": "apply",
    "create": "apply",
    "deploy": "apply",
    "inspect": "describe",
    "top": "metrics",
    "stats": "metrics",
    "log": "logs",
    "rollout": "restart",
    "version": "--version",
}
_INVALID_CHOICE = re.compile(r"^argument (COMMAND|ACTION): invalid choice: '([^']*)'")


class CommandLineParser(argparse.ArgumentParser):
    """argparse, but an unknown command suggests the one meant instead of listing all 27 of them."""

    def error(self, message: str) -> NoReturn:
        match = _INVALID_CHOICE.match(message)
        if match:
            word = match.group(2)
            choices = [c for c in self._commands() if not c.startswith("-")]
            meant = FAMILIAR_COMMANDS.get(word) if match.group(1) == "COMMAND" else None
            if meant is None:
                close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
                meant = close[0] if close else None
            hint = f": did you mean `{self.prog} {meant}`?" if meant else ""
            message = f"{word!r} is not a command of {self.prog}{hint} (`{self.prog} --help` lists them)"
        super().error(message)

    def _commands(self) -> list[str]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return list(action.choices)
        return []

    def _subcommand(self, name: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]  # type: ignore[no-any-return]
        return None

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """An argument the command does not take is reported by that command, with its own usage: the
        top level's usage (every daemon flag, "COMMAND ...") said nothing of `orchestry delete`."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._subcommand(getattr(parsed, "command", None)) or self
            command.error(
                f"unrecognized arguments: {' '.join(extras)} (`{command.prog} --help` lists what it takes)"
            )
        return parsed


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --url given before the subcommand is not overwritten by this default.
    common.add_argument("--url", default=argparse.SUPPRESS, help="daemon URL")
    common.add_argument(
        "--format", choices=FORMATS, default="table", help="table, json or yaml (also -o/--output)"
    )
    # Also after the subcommand, where kubectl and docker users put it (`orchestry list --token T`).
    common.add_argument(
        "--token", default=argparse.SUPPRESS, help="API token of the daemon (else ORCHESTRY_API_TOKEN)"
    )
    return common


def _command(sub: Any, name: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand whose own --help says what it does (its line in the parent's list), not just usage."""
    summary = options.get("help") or ""
    options.setdefault("description", summary[:1].upper() + summary[1:] + ("." if summary else ""))
    output_flag = options.pop("output_flag", True)
    parser = sub.add_parser(name, **options)
    formatted = any("--format" in p._option_string_actions for p in options.get("parents", []))
    if formatted and output_flag:
        # kubectl's and docker's spelling: `orchestry list -o json` was "unrecognized arguments".
        parser.add_argument("-o", "--output", dest="format", choices=FORMATS, help="the same as --format")
    return parser


APP_NAME = "the app's name (metadata.name)"


def _daemon_flags(parser: argparse.ArgumentParser, subcommand: bool = False) -> None:
    # On the daemon subcommand, SUPPRESS: its None defaults overwrote the same flags given before it
    # (`orchestry --state-dir DIR daemon` ran on the default state dir and ports without a word).
    default = {"default": argparse.SUPPRESS} if subcommand else {}
    parser.add_argument("--host", help="API listen address (ORCHESTRY_HOST)", **default)
    parser.add_argument("--port", type=int, help="API port (ORCHESTRY_PORT)", **default)
    parser.add_argument(
        "--lb-listen", help="where nginx serves the apps, HOST:PORT (ORCHESTRY_LB_LISTEN)", **default
    )
    parser.add_argument("--state-dir", help="state directory (ORCHESTRY_STATE_DIR)", **default)
    parser.add_argument(
        "--database-url", help="sqlite:///… or postgresql://… (ORCHESTRY_DATABASE_URL)", **default
    )
    parser.add_argument("--node-id", help="this controller's id (ORCHESTRY_NODE_ID)", **default)
    parser.add_argument(
        "--runtime",
        choices=("docker", "swarm"),
        help="where replicas run: one Docker engine, or a Swarm through its manager (ORCHESTRY_RUNTIME)",
        **default,
    )
    parser.add_argument("--log-level", help="debug, info, warning, error (ORCHESTRY_LOG_LEVEL)", **default)
    parser.add_argument("--log-format", choices=("text", "json"), help="ORCHESTRY_LOG_FORMAT", **default)


def _local_flags(parser: argparse.ArgumentParser) -> None:
    """For commands that act on the local state dir instead of a daemon (SUPPRESS: a value given
    before the subcommand is not overwritten by this default)."""
    parser.add_argument(
        "--state-dir", default=argparse.SUPPRESS, help="state directory (ORCHESTRY_STATE_DIR)"
    )
    parser.add_argument(
        "--database-url",
        default=argparse.SUPPRESS,
        help="sqlite:///… or postgresql://… (ORCHESTRY_DATABASE_URL)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0: write e.g. 120")
    return value


def _whole(low: int, high: int) -> Any:
    """An argparse type: a whole number within the bounds the API puts on it, checked before any request
    (the API's answer speaks of 'query parameter' and 'field', not of the flag the user typed)."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from {low} to {high}")
        return value

    return whole


_DURATION = re.compile(r"^\d+(\.\d+)?\s*[smhd]$")


def _moment(text: str) -> str:
    """``--since``/``--until``: a duration ago (90s, 5m, 1h, 2d) or epoch seconds, passed on as written."""
    try:
        valid = math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        valid = bool(_DURATION.match(text.strip().lower()))
    if not valid:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration ago (90s, 5m, 1h, 2d) or epoch seconds")
    return text


def _wait_flags(parser: argparse.ArgumentParser, until: str) -> None:
    parser.add_argument("--wait", action="store_true", help=f"return only when {until}")
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="give up waiting after this long, exit 1 and say why (default 120; implies --wait)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="orchestry",
        description="Run web apps as Docker containers behind nginx. Without a command: start the console.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--url", default=None, help="daemon URL (else ORCHESTRY_URL, the config file, :8000)")
    parser.add_argument(
        "--apply", metavar="FILE", action="append", help="register and start the app in FILE (repeatable)"
    )
    parser.add_argument("--readonly", action="store_true", help="console: refuse every change of state")
    parser.add_argument(
        "--connect",
        nargs="?",
        const="",
        metavar="URL",
        help="console: attach to the daemon at URL instead of running the engine here "
        "(without URL: --url, ORCHESTRY_URL, the config file, :8000)",
    )
    parser.add_argument("--token", help="API token of the daemon (else ORCHESTRY_API_TOKEN)")
    _daemon_flags(parser)
    common = _common()
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    daemon = _command(sub, "daemon", help="run the engine and the API without a screen")
    daemon.add_argument("--apply", metavar="FILE", help="register and start the app in FILE at start")
    _daemon_flags(daemon, subcommand=True)

    config = _command(sub, "config", parents=[common], help="show or set where the CLI sends requests")
    config.add_argument("--host", help="write this daemon host to the config file")
    config.add_argument("--port", type=int, help="write this daemon port to the config file")

    register = _command(sub, "register", parents=[common], help="register/update an app from a file")
    register.add_argument("file", help="a .yml/.yaml/.json app document")

    apply = _command(
        sub,
        "apply",
        parents=[common],
        help="register (or update) and start every app in files or directories; - reads stdin",
        description="Check every document first (nothing is applied if one is bad or names an image that "
        "cannot be found), then register each "
        "app with replace semantics and start it. Reports each app as created, updated or unchanged.",
    )
    apply.add_argument("paths", nargs="*", metavar="PATH", help="a .yml/.yaml/.json file, a directory, or -")
    # kubectl's spelling (`kubectl apply -f DIR`): it was "unrecognized arguments: -f".
    apply.add_argument(
        "-f",
        "--filename",
        dest="filenames",
        action="append",
        default=[],
        metavar="PATH",
        help="a PATH given the kubectl way (repeatable; PATHs without -f work too)",
    )
    apply.add_argument(
        "--allow-missing-images",
        action="store_true",
        help="apply even when an app's image is on no engine or registry (that app is registered only)",
    )
    _wait_flags(apply, "every app has its desired replicas ready on its new spec")

    up = _command(sub, "up", parents=[common], help="start an app's replicas")
    up.add_argument("name", help=APP_NAME)
    _wait_flags(up, "the desired replicas are ready")

    _command(
        sub, "status", parents=[common], help="an app's status and replicas; every app's without NAME"
    ).add_argument(
        "name", nargs="?", help=APP_NAME + "; left out, every app is listed as `orchestry list` does"
    )

    down = _command(
        sub,
        "down",
        parents=[common],
        help="stop an app's replicas (--all: every app and nginx of this state dir, no daemon needed)",
    )
    down.add_argument("name", nargs="?", help=APP_NAME + "; omit it with --all")
    down.add_argument("--force", action="store_true", help="kill without waiting for the grace period")
    down.add_argument(
        "--all",
        action="store_true",
        help="without a daemon: remove every app's replicas, mark every app stopped, stop nginx",
    )
    _local_flags(down)
    _wait_flags(down, "no replica is left")

    stop = _command(
        sub,
        "stop",
        parents=[common],
        help="without a daemon: remove this state dir's replicas and stop its nginx (the next start "
        "brings the apps back)",
    )
    _local_flags(stop)

    delete = _command(sub, "delete", parents=[common], help="stop and forget apps")
    # Several, as `kubectl delete` and `docker rm` take them: a second name was "unrecognized arguments".
    delete.add_argument("name", nargs="+", help="the apps' names (metadata.name)")
    delete.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")

    restart = _command(sub, "restart", parents=[common], help="rolling restart of an app (or one replica)")
    restart.add_argument("name", help=APP_NAME)
    restart.add_argument("--replica", type=_whole(1, 1000), metavar="N", help="restart only this slot")
    _wait_flags(restart, "every restarted replica is replaced and ready")

    _command(sub, "list", parents=[common], help="every app")

    describe = _command(sub, "describe", parents=[common], help="an app in detail")
    describe.add_argument("name", help=APP_NAME)
    describe.add_argument("--show-spec", action="store_true", help="also print the spec (secrets redacted)")

    spec = _command(sub, "spec", parents=[common], help="an app's spec")
    spec.add_argument("name", help=APP_NAME)
    spec.add_argument("--raw", action="store_true", help="the document as submitted (secrets redacted)")

    scale = _command(sub, "scale", parents=[common], help="set an app's replica count")
    scale.add_argument("name", help=APP_NAME)
    scale.add_argument(
        "replicas",
        nargs="?",
        type=_whole(0, 100),
        help="the replica count, 0-100 (auto mode clamps it to min/max)",
    )
    # kubectl's spelling (`kubectl scale deploy/web --replicas=3`): it was "arguments are required".
    scale.add_argument(
        "--replicas",
        dest="replicas_flag",
        type=_whole(0, 100),
        metavar="N",
        help="the count, as kubectl writes it",
    )
    _wait_flags(scale, "that many replicas are ready")

    mode = _command(sub, "mode", parents=[common], help="switch an app between auto and manual scaling")
    mode.add_argument("name", help=APP_NAME)
    mode.add_argument(
        "mode", choices=("auto", "manual"), help="auto: the scaler decides; manual: only `scale` does"
    )

    backtest = _command(
        sub,
        "backtest",
        parents=[common],
        help="what the current and a candidate scaling policy would have done over the recorded load",
        description="Replays the app's recorded metric history (or a synthetic trace) through the production "
        "scaler with the current policy and with a candidate; prints both summaries and replica curves. "
        "Changes nothing: apply the candidate with `orchestry apply` or PUT /api/v1/apps/NAME/scaling.",
    )
    backtest.add_argument("name", help=APP_NAME)
    candidate = backtest.add_mutually_exclusive_group()
    candidate.add_argument("--policy", metavar="FILE", help="scaling keys (or an app document) to try")
    candidate.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="one scaling key to change (repeatable)"
    )
    backtest.add_argument("--since", help="how much recorded history: 90m, 6h (default), 2d")
    backtest.add_argument(
        "--trace", choices=("step", "ramp", "spike", "sine"), help="a synthetic load instead of the history"
    )

    events = _command(sub, "events", parents=[common], help="events, newest first")
    events.add_argument("name", nargs="?", help="only this app's events")
    events.add_argument(
        "--type", choices=("lifecycle", "scaling", "health", "error", "cluster"), help="only this category"
    )
    events.add_argument(
        "--limit", type=_whole(1, 1000), default=50, help="at most this many, 1-1000 (default 50)"
    )
    events.add_argument("--since", type=_moment, help="a duration ago (90s, 5m, 1h, 2d) or epoch seconds")

    logs = _command(sub, "logs", parents=[common], help="an app's replica logs")
    logs.add_argument("name", help=APP_NAME)
    logs.add_argument("--tail", "-n", type=_whole(0, 10_000), default=100, help="lines per replica, 0-10000")
    logs.add_argument("--since", type=_moment, help="a duration ago (90s, 5m, 1h) or epoch seconds")
    logs.add_argument("--until", type=_moment, help="a duration ago (30m) or epoch seconds")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")

    metrics = _command(sub, "metrics", parents=[common], help="metrics of one app or of the node")
    metrics.add_argument("app", nargs="?", metavar="NAME", help="an app; without it, the node's figures")
    metrics.add_argument("--name", dest="name_flag", metavar="NAME", help="same as NAME")

    cluster = _command(sub, "cluster", parents=[common], help="cluster state")
    # Left out: status (`orchestry cluster` said "the following arguments are required: what").
    cluster.add_argument(
        "what",
        nargs="?",
        default="status",
        choices=("status", "leader", "health"),
        help="every node (the default); who leads; a one-line verdict",
    )
    _command(
        sub, "nodes", parents=[common], help="the machines that run replicas (Swarm nodes, or this host)"
    )
    node = _command(sub, "node", parents=[common], help="drain or activate a node")
    node.add_argument(
        "action",
        choices=("drain", "activate"),
        help="drain: move its replicas away and take nothing new; activate: take replicas again",
    )
    node.add_argument("node", metavar="NODE", help="node id, unique id prefix or hostname")
    node.add_argument(
        "--no-wait", action="store_true", help="drain: return once started, not when the node is drained"
    )
    node.add_argument("--timeout", type=float, default=300.0, help="drain: seconds to wait (300)")

    secret = _command(sub, "secret", help="secrets (values are never shown)")
    secret_sub = secret.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    secret_set = _command(
        secret_sub,
        "set",
        parents=[common],
        help="set fields: NAME key=value … (key=- reads the value from stdin)",
    )
    secret_set.add_argument("name", help="the secret's name (a DNS label)")
    secret_set.add_argument(
        "fields",
        nargs="+",
        metavar="KEY=VALUE",
        help="a field and its value; KEY=- reads the value from stdin",
    )
    secret_list = _command(secret_sub, "list", parents=[common], help="secrets and their field names")
    secret_list.add_argument("name", nargs="?", help="only this secret")
    _command(secret_sub, "rm", aliases=["delete"], parents=[common], help="delete a secret").add_argument(
        "name", help="the secret's name"
    )

    diagnose = _command(
        sub,
        "diagnose",
        parents=[common],
        output_flag=False,  # its -o/--output names the file to write
        help="download the support bundle (.tar.gz, secrets redacted); lists what it holds",
    )
    diagnose.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="the file to write, or a directory to write the daemon's file name into (default: here)",
    )

    db = _command(sub, "db", help="the state database (local, not through the daemon)")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_upgrade = _command(db_sub, "upgrade", parents=[common], help="apply schema migrations")
    db_upgrade.add_argument("--database-url", help="default: ORCHESTRY_DATABASE_URL")

    _command(sub, "info", parents=[common], help="the daemon's version, node, leader and database")

    completion = _command(
        sub,
        "completion",
        parents=[common],
        help='print the shell completion script: eval "$(orchestry completion bash)" (or zsh)',
    )
    completion.add_argument(
        "shell", choices=("bash", "zsh", "apps"), help="bash or zsh; apps: the daemon's app names, one a line"
    )
    return parser

"""``orchestry`` entry point: the console with no subcommand, the daemon, or an HTTP subcommand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestry_tui.cli.parser import build_parser

DAEMON_FLAGS = (
    "host",
    "port",
    "lb_listen",
    "runtime",
    "state_dir",
    "database_url",
    "node_id",
    "log_level",
    "log_format",
)


def _version() -> str:
    from core import __version__  # core/__init__ alone: the engine itself is not loaded

    return __version__


def _settings(args: argparse.Namespace):  # -> core.settings.Settings (imported lazily: it is heavy)
    from core.settings import load_settings

    overrides = {k: getattr(args, k) for k in DAEMON_FLAGS if getattr(args, k, None) is not None}
    return load_settings(flags=True, **overrides)


def _long_running(args: argparse.Namespace):  # -> core.settings.Settings
    """Settings for a process that runs for hours (daemon, console): glibc's malloc thresholds are fixed
    first, before the engine or console allocates (core/allocator.py: keeps the heap level)."""
    from core.allocator import fix_malloc_thresholds

    settings = _settings(args)
    fix_malloc_thresholds(settings.malloc_threshold)
    return settings


def run_daemon_command(args: argparse.Namespace) -> int:
    from core.daemon import run_daemon
    from core.errors import SettingsError

    try:
        settings = _long_running(args)
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    apply_file = Path(args.apply) if getattr(args, "apply", None) else None
    return run_daemon(settings, apply_file)


def open_console(args: argparse.Namespace) -> int:
    """``orchestry`` with no subcommand: the Textual console with the engine in-process."""
    from core.errors import SettingsError
    from orchestry_tui.console import run_console

    if getattr(args, "connect", None) is not None:
        return attach_console(args)
    try:
        settings = _long_running(args)
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    apply_files = [Path(p) for p in (getattr(args, "apply", None) or [])]
    return run_console(settings, apply_files, readonly=getattr(args, "readonly", False))


def _token(args: argparse.Namespace) -> str | None:
    from orchestry_tui.cli.commands import api_token

    return getattr(args, "token", None) or api_token()


def _token_refused(url: str, args: argparse.Namespace) -> str:
    """A 401 in the CLI's words: which token was sent (if any) and where to set the right one; the API's
    own detail speaks of HTTP headers."""
    if getattr(args, "token", None):
        sent = "the token given with --token was refused"
    elif _token(args):
        sent = "the token in ORCHESTRY_API_TOKEN was refused"
    else:
        sent = "no token was sent"
    return (
        f"the daemon at {url} requires its API token and {sent}: pass --token TOKEN or set "
        "ORCHESTRY_API_TOKEN to the daemon's ORCHESTRY_API_TOKEN"
    )


def attach_console(args: argparse.Namespace) -> int:
    """``orchestry --connect URL``: the console of a running daemon; the daemon acts, its store is shown.

    The daemon is checked before the screen opens, so a wrong URL or token is one line and exit 2."""
    import asyncio

    from core.errors import SettingsError
    from orchestry_tui.client.http import InvalidDaemonUrl, resolve_url
    from orchestry_tui.console.http_backend import check_connection

    try:
        url = args.connect or resolve_url(getattr(args, "url", None)).url
    except InvalidDaemonUrl as exc:
        sys.stderr.write(f"orchestry --connect: {exc}\n")
        return 2
    if getattr(args, "apply", None):
        sys.stderr.write(
            "orchestry: --apply cannot be combined with --connect (the daemon runs the apps): "
            "use `orchestry apply FILE` (it registers and starts the app on the daemon)\n"
        )
        return 2
    try:
        state_dir = _long_running(args).state_dir  # where ctrl+s writes snapshots, on this machine
    except SettingsError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2
    token = _token(args)
    try:
        problem = asyncio.run(check_connection(url, token))
    except KeyboardInterrupt:
        return 130
    if problem:
        sys.stderr.write(f"orchestry --connect: {problem}\n")
        return 2
    from orchestry_tui.console.app import OrchestryConsole
    from orchestry_tui.console.http_backend import HttpBackend

    console = OrchestryConsole(HttpBackend(url, token, state_dir), readonly=getattr(args, "readonly", False))
    result = console.run()
    if console.start_error:
        sys.stderr.write(f"orchestry --connect: {console.start_error}\n")
        return 2
    return result if isinstance(result, int) else console.return_code or 0


def run_http_command(args: argparse.Namespace) -> int:
    from orchestry_tui.cli import output
    from orchestry_tui.cli.commands import HTTP_COMMANDS
    from orchestry_tui.client.http import ApiClient, ApiError, DaemonUnreachable, resolve_url

    try:
        url = resolve_url(getattr(args, "url", None)).url
        client = ApiClient(url, token=_token(args))
        return HTTP_COMMANDS[args.command](client, args)
    except DaemonUnreachable as exc:
        output.error(str(exc))
        return 2
    except ApiError as exc:
        if exc.status == 401:
            output.error(_token_refused(url, args))
            return 2
        if not exc.from_api and exc.status < 500:  # a 5xx may be the controller LB's, in front of the API
            output.error(
                f"{url} is not an Orchestry API: it answered {exc.status} ({exc.detail}); point --url or "
                "ORCHESTRY_URL at the API (the daemon's or console's port, 8000 by default), not at the "
                "apps' load balancer"
            )
            return 2
        if exc.status == 503 and exc.leader is None and exc.detail.startswith("No leader"):
            from orchestry_tui.client.http import NO_LEADER_YET

            output.error(f"{exc.detail}; {NO_LEADER_YET}")
            return 1
        output.error(exc.detail)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0  # `orchestry events | head`: the reader had enough


def run_teardown_command(args: argparse.Namespace) -> int:
    """``orchestry stop`` / ``orchestry down --all``: no daemon, the local state dir and Docker."""
    from orchestry_tui.cli.teardown import teardown_command

    return teardown_command(args, _settings)


def run_db_command(args: argparse.Namespace) -> int:
    from core.errors import OrchestryError
    from orchestry_tui.cli import output
    from orchestry_tui.cli.commands import db_upgrade

    try:
        return db_upgrade(args)
    except OrchestryError as exc:
        output.error(exc.message)
        return 1


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C before a command's own handling is in place (while its modules load): one line, not
        # a traceback of the import under way; 130 as for the commands that catch it themselves.
        sys.stderr.write("interrupted\n")
        return 130


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "format", None) == "yaml":
        from orchestry_tui.cli import output

        # YAML is the JSON answer written as YAML: every command that prints JSON prints it so.
        output.use_structured("yaml")
        args.format = "json"
    if args.version:
        sys.stdout.write(f"orchestry {_version()}\n")
        return 0
    if args.command is None:
        return open_console(args)
    if args.command == "daemon":
        return run_daemon_command(args)
    if args.command == "completion":
        from orchestry_tui.cli.completion import completion_command

        return completion_command(args)
    if args.command == "stop" or (args.command == "down" and args.all):
        return run_teardown_command(args)
    if args.command == "db":
        return run_db_command(args)
    return run_http_command(args)


if __name__ == "__main__":
    sys.exit(main())

"""Commands on a stopped app say it is stopped: `scale` that it stays stopped until `up` (it said
"scaling to N replicas" while nothing started), `logs` why there are no lines (it printed nothing)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Daemon
from tests.cli.test_cli_commands import write_app
from tests.conftest import unique_name


def test_scale_of_a_stopped_app_names_up(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("idle")
    daemon.ok("register", str(write_app(tmp_path, name)))
    said = daemon.ok("scale", name, "3")
    assert said == (
        f"{name}: 3 desired replicas; {name} is stopped: it runs 3 replica(s) once started "
        f"(orchestry up {name})\n"
    )
    daemon.ok("delete", name, "-f")


def test_logs_of_a_stopped_app_say_why_there_are_none(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("quiet")
    daemon.ok("register", str(write_app(tmp_path, name)))
    result = daemon.cli("logs", name)
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"no log lines: {name} is stopped, no replica runs (orchestry up {name})\n"
    daemon.ok("delete", name, "-f")


def test_registering_a_running_app_again_does_not_say_start_it(daemon: Daemon, tmp_path: Path) -> None:
    """It said "start it with `orchestry up web`" for a running app, where `up` does nothing."""
    name = unique_name("busy")
    path = write_app(tmp_path, name)
    daemon.ok("register", str(path))
    daemon.ok("up", name, "--wait")
    said = daemon.ok("register", str(path))
    assert said == (
        f"updated {name} (status running); its replicas roll to a changed spec "
        f"(`orchestry status {name}` shows them)\n"
    )
    daemon.ok("delete", name, "-f")

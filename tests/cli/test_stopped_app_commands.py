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

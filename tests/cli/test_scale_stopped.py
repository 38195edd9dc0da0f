"""`orchestry scale` on a stopped app says the app stays stopped until `up`, instead of "scaling to N
replicas" while nothing starts."""

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

"""A daemon with an API token: a CLI command without it, or with a wrong one, says which token was sent
and where to set the right one (was the API's "set Authorization: Bearer ..." header advice), exit 2 as
for an unreachable daemon; the right token works."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Daemon, start_daemon, stop_daemon

TOKEN = "trial-token-5d0c"
APP = Path(__file__).resolve().parents[2] / "examples" / "web.yml"
FIX = "pass --token TOKEN or set ORCHESTRY_API_TOKEN to the daemon's ORCHESTRY_API_TOKEN\n"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start_daemon(tmp_path_factory.mktemp("guarded"), env_extra={"ORCHESTRY_API_TOKEN": TOKEN})
    try:
        yield running
    finally:
        stop_daemon(running)  # nothing was registered: no token, no app


@pytest.mark.parametrize("args", [["list"], ["status", "web"], ["apply", "-"], ["events", "--limit", "1"]])
def test_no_token(guarded: Daemon, args: list[str]) -> None:
    result = guarded.cli(*args, stdin=APP.read_text())
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: the daemon at {guarded.url} requires its API token and no token was sent: {FIX}"
    )


def test_a_wrong_token_names_where_it_came_from_and_the_right_one_works(guarded: Daemon) -> None:
    from_env = guarded.cli("list", env=guarded.env(ORCHESTRY_API_TOKEN="wrong"))
    assert from_env.returncode == 2
    assert "and the token in ORCHESTRY_API_TOKEN was refused: " in from_env.stderr
    from_flag = guarded.cli("--token", "wrong", "scale", "web", "2")
    assert from_flag.returncode == 2
    assert from_flag.stderr == (
        f"error: the daemon at {guarded.url} requires its API token and the token given with --token "
        f"was refused: {FIX}"
    )
    assert "wrong" not in from_flag.stderr.replace("was refused", "")
    right = guarded.cli("--token", TOKEN, "list", "--format", "json")
    assert right.returncode == 0 and '"apps"' in right.stdout

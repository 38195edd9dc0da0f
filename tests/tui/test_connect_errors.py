"""``orchestry --connect`` refusing to start: one line naming the flag and the fix, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestry_tui.console.app import OrchestryConsole
from orchestry_tui.console.http_backend import HttpBackend
from orchestry_tui.console.widgets.status_bar import StatusBar
from tests.cli.conftest import ORCHESTRY, Daemon, start_daemon, stop_daemon
from tests.integration.harness import free_port
from tests.tui.conftest import until

TOKEN = "connect-test-token-5d2a91"


def connect(home: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    env.update({"HOME": str(home), **env_extra})
    return subprocess.run(
        [ORCHESTRY, "--connect", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert line.startswith("orchestry --connect: ") and "\n" not in line, result.stderr
    for needle in needles:
        assert needle in line, line
    return line


def test_nothing_listening_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = connect(tmp_path, "http://127.0.0.1:1")
    assert_one_line_refusal(
        result, "http://127.0.0.1:1", "connection refused", "--connect", "orchestry daemon"
    )


def test_orchestry_url_is_used_when_connect_has_no_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = connect(tmp_path, ORCHESTRY_URL=url)
    assert_one_line_refusal(result, url, "connection refused", "ORCHESTRY_URL")


def test_a_url_without_scheme_names_the_expected_form(tmp_path: Path) -> None:
    result = connect(tmp_path, "127.0.0.1:8000")
    assert_one_line_refusal(result, "not an http:// or https:// URL", "--connect http://127.0.0.1:8000")


def test_apply_cannot_be_combined_with_connect(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    result = subprocess.run(
        [ORCHESTRY, "--apply", "app.yml", "--connect", "http://127.0.0.1:1"],
        env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--apply cannot be combined with --connect" in result.stderr
    assert "orchestry apply FILE" in result.stderr


@pytest.fixture(scope="module")
def token_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A loopback daemon that still demands its token, because one is set."""
    daemon = start_daemon(tmp_path_factory.mktemp("token"), env_extra={"ORCHESTRY_API_TOKEN": TOKEN})
    try:
        yield daemon
    finally:
        stop_daemon(daemon)


def test_missing_token_names_the_flag_and_the_variable(token_daemon: Daemon, tmp_path: Path) -> None:
    result = connect(tmp_path, token_daemon.url)
    assert_one_line_refusal(result, token_daemon.url, "no token was sent", "--token", "ORCHESTRY_API_TOKEN")


def test_wrong_token_names_the_flag_and_never_echoes_a_token(token_daemon: Daemon, tmp_path: Path) -> None:
    wrong = "not-the-token-0000"
    line = assert_one_line_refusal(
        connect(tmp_path, token_daemon.url, "--token", wrong), "token sent was refused", "--token"
    )
    assert wrong not in line and TOKEN not in line
    from_env = connect(tmp_path, token_daemon.url, ORCHESTRY_API_TOKEN=wrong)
    assert_one_line_refusal(from_env, "token sent was refused", "ORCHESTRY_API_TOKEN")


def test_a_web_server_that_is_not_a_daemon_is_named(token_daemon: Daemon, tmp_path: Path) -> None:
    # The daemon's load balancer: nginx answers, but not as the API does.
    result = connect(tmp_path, f"http://{token_daemon.lb}")
    assert_one_line_refusal(result, "not an Orchestry daemon", "--connect")


async def test_the_right_token_attaches(token_daemon: Daemon, tmp_path: Path) -> None:
    app = OrchestryConsole(HttpBackend(token_daemon.url, TOKEN, tmp_path), poll_seconds=0.3)
    async with app.run_test(size=(160, 45)):
        await until(lambda: app.frames_applied, what="first frame")
        assert f"node {token_daemon.node_id} leader" in str(app.query_one(StatusBar).render())
        assert not app.start_error

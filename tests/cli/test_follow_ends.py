"""`orchestry logs -f` when the daemon serving the stream goes away: it says so on stderr, with the
command that resumes from the last line shown, and exits non-zero (it ended silently with 0, which
reads as "no more lines"); once the daemon is back, that command follows again."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import signal
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

from tests.cli.conftest import ORCHESTRY, Daemon, start_daemon, stop_daemon
from tests.cli.test_cli_commands import wait_ready, write_app
from tests.conftest import unique_name
from tests.support.interrupt import FAULTHANDLER_ENV, interrupt


def _follow(daemon: Daemon, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [ORCHESTRY, *args, "--format", "json"],
        env=daemon.env(**FAULTHANDLER_ENV), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _one_line(daemon: Daemon, name: str, follower: subprocess.Popen[str]) -> dict:
    urllib.request.urlopen(f"http://{daemon.lb}/{name}/", timeout=10).read()
    assert follower.stdout is not None
    return json.loads(follower.stdout.readline())


def test_follow_says_the_daemon_went_away_and_how_to_resume(tmp_path: Path) -> None:
    first = start_daemon(tmp_path / "one")
    port = int(first.url.rsplit(":", 1)[1])
    name = unique_name("gone")
    first.ok("register", str(write_app(tmp_path, name)))
    first.ok("up", name)
    wait_ready(first, name, 1)
    follower = _follow(first, "logs", name, "-f")
    second: Daemon | None = None
    try:
        seen = _one_line(first, name, follower)
        first.process.send_signal(signal.SIGTERM)  # a restart's first half; the app keeps running
        first.process.wait(timeout=60)
        code = follower.wait(timeout=60)
        assert follower.stderr is not None
        stderr = follower.stderr.read()
        assert code == 1, stderr
        assert "Traceback" not in stderr
        assert stderr.startswith(
            f"error: the log stream of {name} ended: the daemon at {first.url} went away"
        )
        match = re.search(r"resume with `(orchestry logs [^`]+)`", stderr)
        assert match, stderr
        resume = shlex.split(match.group(1))
        since = float(resume[resume.index("--since") + 1])
        assert since >= seen["timestamp"] - 0.001  # the last line shown, not the follow's start

        # The daemon comes back (same port, same state): the command given follows again.
        second = start_daemon(tmp_path / "two", "--state-dir", str(first.state_dir), port=port)
        resumed = _follow(second, *resume[1:])
        try:
            assert resumed.stdout is not None
            again = json.loads(resumed.stdout.readline())  # from the last line shown on, no gap
            assert again["timestamp"] >= since
        finally:
            assert interrupt(resumed) == 0
    finally:
        if follower.poll() is None:
            interrupt(follower)
        if second is None:  # the first daemon's containers and nginx must not outlive the test
            second = start_daemon(tmp_path / "two", "--state-dir", str(first.state_dir))
        stop_daemon(second)


def _cut_stream_server(listener: socket.socket, line: bytes) -> None:
    """Answer the follow with one line, then drop the connection mid-stream (a daemon killed -9); the
    app lookup that follows finds nobody listening."""
    connection, _ = listener.accept()
    with connection:
        connection.recv(65536)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
            + f"{len(line):x}\r\n".encode() + line + b"\r\n" + b"40\r\n{\"timest"
        )  # fmt: skip
    listener.close()


def test_a_follow_cut_mid_stream_says_so_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    from orchestry_tui.cli.commands import _follow
    from orchestry_tui.client.http import ApiClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    line = json.dumps({"timestamp": 1700000000.25, "replica": "web-1", "message": "hello"}).encode() + b"\n"
    server = threading.Thread(target=_cut_stream_server, args=(listener, line))
    server.start()
    args = argparse.Namespace(name="web", format="json")
    with mock.patch("orchestry_tui.cli.commands._is_stopped", return_value=False):
        code = _follow(ApiClient(url, timeout=5), args, {"tail": 10})
    server.join()
    out, err = capsys.readouterr()
    assert json.loads(out)["message"] == "hello"
    assert code == 1
    assert err == (
        f"error: the log stream of web ended: the daemon at {url} went away (stopped, restarting or "
        "unreachable); once it answers again, resume with `orchestry logs web -f --since 1700000000.250`\n"
    )

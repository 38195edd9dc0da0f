"""A daemon that accepts the connection and never answers (frozen by SIGSTOP, a paused VM, or a frozen
node behind the controller LB): the CLI's error says so, instead of advising to start a daemon."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from orchestry_tui.client.http import ApiClient, DaemonUnreachable


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listening socket nobody accepts on: the kernel completes the connection, nothing answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_write_that_gets_no_answer_says_it_may_still_be_carried_out(silent_url: str) -> None:
    client = ApiClient(silent_url, timeout=0.3)
    with pytest.raises(DaemonUnreachable) as raised:
        client.post("/api/v1/apps/web/scale", {"replicas": 2})
    message = str(raised.value)
    assert message.startswith(f"no answer from the Orchestry daemon at {silent_url} (timed out): ")
    assert "may be frozen (SIGSTOP, a paused VM) or overloaded" in message
    assert "check with `orchestry status NAME` or `orchestry events` before sending it again" in message
    assert "start one with `orchestry daemon`" not in message

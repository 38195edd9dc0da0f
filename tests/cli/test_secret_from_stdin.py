"""`orchestry secret set NAME KEY=VALUE` put the value on the command line (shell history, `ps` of
every user); `KEY=-` reads it from stdin instead, as `docker secret create NAME -` does, so
`cat pw.txt | orchestry secret set db password=-` keeps it off both."""

from __future__ import annotations

import io
from typing import Any

import pytest

from orchestry_tui.cli.commands import secret
from orchestry_tui.cli.parser import build_parser


class Recorder:
    def __init__(self) -> None:
        self.sent: dict[str, Any] = {}

    def put(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        self.sent[path] = body
        return {"name": path.rsplit("/", 1)[-1], "fields": sorted(body)}


def test_a_field_given_as_dash_is_read_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cr3t-from-stdin\n"))
    client = Recorder()
    args = build_parser().parse_args(["secret", "set", "db", "password=-", "user=app"])
    assert secret(client, args) == 0  # type: ignore[arg-type]
    assert client.sent == {"/api/v1/secrets/db": {"password": "s3cr3t-from-stdin", "user": "app"}}


def test_two_fields_from_stdin_are_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("x\n"))
    client = Recorder()
    args = build_parser().parse_args(["secret", "set", "db", "a=-", "b=-"])
    assert secret(client, args) == 1  # type: ignore[arg-type]
    assert client.sent == {} and "one field" in capsys.readouterr().err


def test_secret_delete_is_rm_as_kubectl_spells_it() -> None:
    deleted: list[str] = []

    class Deleter:
        def delete(self, path: str) -> dict[str, Any]:
            deleted.append(path)
            return {"name": path.rsplit("/", 1)[-1]}

    args = build_parser().parse_args(["secret", "delete", "db"])
    assert secret(Deleter(), args) == 0  # type: ignore[arg-type]
    assert deleted == ["/api/v1/secrets/db"]


def test_an_empty_stdin_sets_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`orchestry secret set db password=- < /dev/null` (or after a failed `cat`) stored an empty password."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    client = Recorder()
    args = build_parser().parse_args(["secret", "set", "db", "password=-"])
    assert secret(client, args) == 1  # type: ignore[arg-type]
    assert client.sent == {}
    assert capsys.readouterr().err == (
        "error: password=- read nothing from stdin: nothing was set; pipe the value in "
        "(e.g. `cat pw.txt | orchestry secret set db password=-`)\n"
    )

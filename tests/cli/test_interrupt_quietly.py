"""Ctrl-C while a command is still loading (the first few tenths of a second of `orchestry list`)
printed a Python traceback of the import under way; it ends with one line and exit code 130, as the
commands that wait already do."""

from __future__ import annotations

import pytest

from orchestry_tui import main as entry


def test_ctrl_c_while_a_command_loads_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt  # what SIGINT raises in the middle of an import

    monkeypatch.setattr(entry, "run_http_command", interrupted)
    assert entry.main(["list"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err

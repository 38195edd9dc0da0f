"""`orchestry --state-dir DIR --port P --lb-listen ADDR daemon` (the flags `orchestry --help` lists,
given before the subcommand) used to be dropped without a word: the daemon started on the default state
dir, :8000 and :8080, adopting and serving someone else's apps. Before or after `daemon`, they count."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestry_tui.cli.parser import build_parser
from orchestry_tui.main import _settings


@pytest.mark.parametrize("before", [True, False], ids=["before-daemon", "after-daemon"])
def test_daemon_flags_count_before_or_after_the_subcommand(tmp_path: Path, before: bool) -> None:
    flags = ["--state-dir", str(tmp_path / "st"), "--port", "18999", "--lb-listen", "127.0.0.1:18998"]
    argv = [*flags, "daemon"] if before else ["daemon", *flags]
    settings = _settings(build_parser().parse_args(argv))
    assert settings.state_dir == tmp_path / "st"
    assert settings.port == 18999
    assert settings.lb_listen == "127.0.0.1:18998"


def test_a_flag_after_daemon_wins_over_the_same_flag_before() -> None:
    args = build_parser().parse_args(["--port", "18001", "daemon", "--port", "18002"])
    assert args.port == 18002

"""`orchestry register`, `apply` (files and stdin) and `backtest --policy` read documents through the
daemon's guarded door: each refusal names the file and the problem, before any request is sent (no
daemon listens here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.documents import YAML_CASES

NOBODY = "http://127.0.0.1:9"  # nothing listens: a command that got as far as a request would say so


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORCHESTRY_URL": NOBODY, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "orchestry_tui.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_every_cli_door_refuses_naming_file_and_problem(tmp_path: Path, case: str) -> None:
    text, words = YAML_CASES[case]
    path = tmp_path / "app.yml"
    path.write_text(text)

    registered = cli(tmp_path, "register", str(path))
    assert registered.returncode == 1 and f"{path}: " in registered.stderr and words in registered.stderr

    applied = cli(tmp_path, "apply", str(path))
    assert applied.returncode == 2 and f"{path}" in applied.stderr and words in applied.stderr
    assert "nothing was applied" in applied.stderr

    piped = cli(tmp_path, "apply", "-", stdin=text)
    assert piped.returncode == 2 and "<stdin>" in piped.stderr and words in piped.stderr

    backtest = cli(tmp_path, "backtest", "web", "--policy", str(path))
    assert backtest.returncode == 1 and f"--policy {path}" in backtest.stderr
    assert words in backtest.stderr

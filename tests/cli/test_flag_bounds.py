"""The CLI checks its own flags before any request, naming the flag: `orchestry events --limit -5` said
"query parameter 'limit' must be from 1 to 1000" (the API's words), `--since banana` the same, and a
field named wrongly in `secret set db =x` was reported as "'' is not KEY=VALUE"."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import ORCHESTRY
from tests.integration.harness import free_port


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "ORCHESTRY_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: no request may be needed
    }
    return subprocess.run([ORCHESTRY, *args], env=env, capture_output=True, text=True, timeout=60)


WHOLE = "is not a whole number from"
MOMENT = "is not a duration ago (90s, 5m, 1h, 2d) or epoch seconds"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["events", "--limit", "-5"], f"orchestry events: error: argument --limit: '-5' {WHOLE} 1 to 1000"),
        (["events", "--since", "banana"], f"orchestry events: error: argument --since: 'banana' {MOMENT}"),
        (
            ["logs", "web", "--tail", "-3"],
            f"orchestry logs: error: argument --tail/-n: '-3' {WHOLE} 0 to 10000",
        ),
        (["logs", "web", "--until", "nan"], f"orchestry logs: error: argument --until: 'nan' {MOMENT}"),
        (["scale", "web", "101"], f"orchestry scale: error: argument replicas: '101' {WHOLE} 0 to 100"),
        (
            ["restart", "web", "--replica", "0"],
            f"orchestry restart: error: argument --replica: '0' {WHOLE} 1 to 1000",
        ),
    ],
)
def test_a_flag_out_of_bounds_is_a_usage_error_naming_it(tmp_path: Path, args: list[str], line: str) -> None:
    result = run(tmp_path, *args)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines()[-1] == line


def test_a_secret_field_without_a_name_says_so_without_the_value(tmp_path: Path) -> None:
    result = run(tmp_path, "secret", "set", "db", "=hunter2")
    assert result.returncode == 1
    assert result.stderr == (
        "error: field name '' is not valid (a letter or _, then letters, digits, _ . -): "
        "write fields like password=s3cret (password=- reads it from stdin)\n"
    )

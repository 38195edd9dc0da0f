"""A daemon URL that cannot be one (--url, ORCHESTRY_URL, the 1.0 config file) is one line naming where
it was set and exit 2, never a traceback (``ORCHESTRY_URL=notaurl orchestry list`` raised ValueError)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import ORCHESTRY

FIX = "use http://HOST:PORT, e.g. http://127.0.0.1:8000\n"


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [ORCHESTRY, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("notaurl", "it must start with http:// or https://"),
        ("127.0.0.1:8000", "it must start with http:// or https://"),
        ("http://127.0.0.1:99999", "its port is not a number from 1 to 65535"),
        ("http://", "it names no host"),
    ],
)
def test_a_bad_orchestry_url_names_the_variable(tmp_path: Path, value: str, problem: str) -> None:
    for args in (["list"], ["status", "web"], ["apply", "-"], ["config"]):
        result = run(tmp_path, *args, ORCHESTRY_URL=value)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert result.stderr == f"error: ORCHESTRY_URL={value!r} is not a daemon URL ({problem}): {FIX}"


def test_a_bad_url_flag_names_the_flag(tmp_path: Path) -> None:
    result = run(tmp_path, "--url", "nope", "events")
    assert result.returncode == 2
    problem = "it must start with http:// or https://"
    assert result.stderr == f"error: --url 'nope' is not a daemon URL ({problem}): {FIX}"


def test_a_bad_port_in_the_config_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "orchestry" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("host: 127.0.0.1\nport: eighty\n")
    result = run(tmp_path, "list")
    assert result.returncode == 2
    assert result.stderr == (
        f"error: host '127.0.0.1' and port 'eighty' in {config} is not a daemon URL "
        f"(its port is not a number from 1 to 65535): {FIX}"
    )


def test_connect_with_a_bad_url_is_one_line(tmp_path: Path) -> None:
    result = run(tmp_path, "--connect", ORCHESTRY_URL="nope")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("orchestry --connect: ORCHESTRY_URL='nope' is not a daemon URL")

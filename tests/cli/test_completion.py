"""Shell completion generated from the parser: a real bash (and zsh, through bashcompinit) sources the
script, COMP_WORDS/COMP_CWORD are set as the shell sets them, and the function's COMPREPLY is read;
app names come from a real daemon; the installer makes a venv's activate load it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import ORCHESTRY, Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("completion")
    found = {}
    for shell in ("bash", "zsh"):
        text = subprocess.run(
            [ORCHESTRY, "completion", shell], capture_output=True, text=True, check=True
        ).stdout
        found[shell] = directory / f"orchestry.{shell}"
        found[shell].write_text(text)
    return found


def _bash(script: Path, *words: str, env: dict[str, str] | None = None) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one being completed)."""
    program = (
        f"source {script}\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
        "_orchestry\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    result = subprocess.run(
        ["bash", "--norc", "-c", program, "bash", *words],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_completes_subcommands_options_and_choices(scripts: dict[str, Path]) -> None:
    bash = scripts["bash"]
    assert _bash(bash, ORCHESTRY, "de") == ["delete", "describe"]
    assert {"daemon", "apply", "describe", "stop", "completion"} <= set(_bash(bash, ORCHESTRY, ""))
    assert _bash(bash, ORCHESTRY, "secret", "") == ["set", "list", "rm", "delete"]
    assert _bash(bash, ORCHESTRY, "describe", "--s") == ["--show-spec"]
    assert _bash(bash, ORCHESTRY, "--url", "http://x", "down", "--a") == ["--all"]
    assert _bash(bash, ORCHESTRY, "mode", "web", "") == ["auto", "manual"]
    assert _bash(bash, ORCHESTRY, "list", "--format", "") == ["table", "json", "yaml"]
    assert _bash(bash, ORCHESTRY, "list", "-o", "") == ["table", "json", "yaml"]
    assert _bash(bash, ORCHESTRY, "events", "--type", "sc") == ["scaling"]
    assert _bash(bash, ORCHESTRY, "cluster", "l") == ["leader"]
    assert "examples" in _bash(bash, ORCHESTRY, "apply", str(REPO / "exa"))[0]


def test_bash_completes_app_names_from_the_daemon(
    scripts: dict[str, Path], daemon: Daemon, tmp_path: Path
) -> None:
    name = unique_name("compl")
    path = tmp_path / "app.yml"
    path.write_text(yaml.safe_dump(demo_app(name)))
    daemon.ok("register", str(path))
    try:
        env = daemon.env()
        assert name in _bash(scripts["bash"], ORCHESTRY, "status", "", env=env)
        assert _bash(scripts["bash"], ORCHESTRY, "scale", name[:-2], env=env) == [name]
        assert name not in _bash(scripts["bash"], ORCHESTRY, "secret", "rm", "", env=env)  # not an app
        elsewhere = {**env, "ORCHESTRY_URL": "http://127.0.0.1:9"}  # nothing answers there
        assert _bash(scripts["bash"], ORCHESTRY, "status", "", env=elsewhere) == []
        # --url on the command line is the daemon the names come from
        assert name in _bash(scripts["bash"], ORCHESTRY, "--url", daemon.url, "status", "", env=elsewhere)
        assert name in _bash(scripts["bash"], ORCHESTRY, "logs", f"--url={daemon.url}", "", env=elsewhere)
    finally:
        daemon.ok("delete", name, "-f")


def test_zsh_runs_the_same_completion_through_bashcompinit(scripts: dict[str, Path], tmp_path: Path) -> None:
    zsh = shutil.which("zsh")
    assert zsh, "install zsh (scripts/bootstrap.sh does)"
    program = (
        f"source {scripts['zsh']}\n"
        'print -r -- "registered: $_comps[orchestry]"\n'
        "emulate -L sh\n"  # what zsh's _bash_complete runs the function under (0-based arrays)
        "COMP_WORDS=(orchestry mode web ''); COMP_CWORD=3\n"
        '_orchestry; print -r -- "mode: ${COMPREPLY[*]}"\n'
        "COMP_WORDS=(orchestry secret ''); COMP_CWORD=2\n"
        '_orchestry; print -r -- "secret: ${COMPREPLY[*]}"\n'
    )
    result = subprocess.run(
        [zsh, "-f", "-c", program], capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "registered: _bash_complete -F _orchestry" in lines
    assert "mode: auto manual" in lines and "secret: set list rm delete" in lines


def test_install_script_makes_activate_load_the_completion(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text(f'VIRTUAL_ENV="{venv}"\nexport VIRTUAL_ENV\n')
    (venv / "bin" / "orchestry").symlink_to(ORCHESTRY)
    for _ in range(2):  # twice: activate gets the lines once
        subprocess.run([str(REPO / "scripts" / "install_completion.sh"), str(venv)], check=True)
    assert (venv / "bin" / "activate").read_text().count("orchestry shell completion") == 1
    loaded = subprocess.run(
        ["bash", "--norc", "-c", f"source {venv}/bin/activate && complete -p orchestry"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert loaded.stdout.strip() == "complete -F _orchestry orchestry"

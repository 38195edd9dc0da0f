"""Every environment variable the README and docs/ name is read by the code, and the defaults they
state are the defaults the settings have."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from core.settings import Settings, environment_names, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAME = re.compile(r"\b(ORCHESTRY_[A-Z0-9_]*[A-Z0-9]|LEADER_LEASE_TTL|CLUSTER_NODE_ID|HA_[A-Z_]*[A-Z])\b")
# Variables that are no setting of the engine, and the file that reads each.
READ_ELSEWHERE = {
    "ORCHESTRY_URL": "orchestry_tui/client/http.py",
    "ORCHESTRY_CONFIG": "core/settings.py",
    "ORCHESTRY_LAB_ID": "scripts/swarm_lab.sh",
    "HA_NODES": "scripts/ha_cluster.sh",
    "HA_API_PORT": "scripts/ha_cluster.sh",
    "HA_CONTROLLER_LISTEN": "scripts/ha_cluster.sh",
    "ORCHESTRY_HYPOTHESIS_PROFILE": "tests/conftest.py",
}
SETTING_OF = {env: field for field in Settings.model_fields for env in environment_names(field)}


def documented_names() -> list[str]:
    return sorted({name for path in DOCS for name in NAME.findall(path.read_text())})


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name in SETTING_OF or name.startswith("ORCHESTRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name", documented_names())
def test_every_documented_variable_is_read(name: str) -> None:
    if name in SETTING_OF:
        return
    assert name in READ_ELSEWHERE, (
        f"{name} is in the docs but is no setting (core/settings.py) nor known here"
    )
    assert name in (ROOT / READ_ELSEWHERE[name]).read_text(), f"{READ_ELSEWHERE[name]} no longer reads {name}"


def configuration_table() -> list[tuple[str, str]]:
    """(variable, default) from the README's "| setting | default | meaning |" table."""
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^\| `(ORCHESTRY_\w+)` \| `([^`]+)` \|", text, re.M)


# Defaults stated in running text: (variable, the value as a user would write it, the words that state it).
STATED = [
    ("ORCHESTRY_HOST", "127.0.0.1", "`ORCHESTRY_HOST`/`ORCHESTRY_PORT` (API, 127.0.0.1:8000)"),
    ("ORCHESTRY_PORT", "8000", "`ORCHESTRY_HOST`/`ORCHESTRY_PORT` (API, 127.0.0.1:8000)"),
    ("ORCHESTRY_LB_LISTEN", "127.0.0.1:8080", "`ORCHESTRY_LB_LISTEN` (127.0.0.1:8080)"),
    ("ORCHESTRY_NETWORK_MODE", "host", "**host** (default)"),
    ("ORCHESTRY_SWARM_POLL_INTERVAL", "0.5", "every 0.5 s (`ORCHESTRY_SWARM_POLL_INTERVAL`)"),
    ("LEADER_LEASE_TTL", "30", "at most `LEADER_LEASE_TTL` seconds (30 by default)"),
    ("ORCHESTRY_METRICS_RETENTION", "30d", "`ORCHESTRY_METRICS_RETENTION` (30 days by default)"),
]


def test_the_configuration_table_is_found() -> None:
    assert {name for name, _ in configuration_table()} >= {
        "ORCHESTRY_METRICS_RETENTION",
        "ORCHESTRY_MALLOC_THRESHOLD",
    }


@pytest.mark.parametrize(
    ("name", "default", "words"), [(n, d, "the table") for n, d in configuration_table()] + STATED
)
def test_a_stated_default_is_the_default(
    name: str, default: str, words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if words != "the table":
        assert any(words in path.read_text() for path in DOCS), f"the docs no longer say {words!r}"
    field = SETTING_OF[name]
    unset = getattr(load_settings(), field)
    monkeypatch.setenv(name, default)
    assert getattr(load_settings(), field) == unset, f"{name}'s default is not {default}"

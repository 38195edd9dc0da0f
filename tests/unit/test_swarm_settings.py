"""Choosing the Swarm runtime: settings, the one place that builds the runtime, and TLS for tcp URLs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import SettingsError
from core.runtime.docker import DockerRuntime
from core.runtime.swarm import SwarmRuntime
from core.runtime.swarm_calls import tls_for
from core.settings import load_settings
from core.wiring import build_runtime, replica_network_mode


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("ORCHESTRY_", "DOCKER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


async def test_the_default_runtime_is_the_one_docker_engine() -> None:
    settings = load_settings()
    runtime = build_runtime(settings)
    try:
        assert settings.runtime == "docker" and isinstance(runtime, DockerRuntime)
        assert replica_network_mode(settings) == "host"
    finally:
        await runtime.close()


async def test_orchestry_runtime_swarm_builds_the_swarm_runtime_with_node_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORCHESTRY_RUNTIME", "Swarm")
    monkeypatch.setenv("ORCHESTRY_DOCKER_URL", "unix:///run/manager.sock")
    monkeypatch.setenv("ORCHESTRY_SWARM_NODE_DOCKER_URLS", '{"node-2": "tcp://10.0.0.12:2376"}')
    settings = load_settings()
    runtime = build_runtime(settings)
    try:
        assert isinstance(runtime, SwarmRuntime)
        assert runtime.docker_url == "unix:///run/manager.sock"
        assert settings.swarm_node_docker_urls == {"node-2": "tcp://10.0.0.12:2376"}
        # A Swarm task has its own network namespace and listens on its container port.
        assert replica_network_mode(settings) == "bridge"
        assert settings.public_dict()["runtime"] == "swarm"
    finally:
        await runtime.close()


def test_an_unknown_runtime_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_RUNTIME", "kubernetes")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "ORCHESTRY_RUNTIME='kubernetes' is not valid: expected docker (one Docker engine) or swarm "
        "(a Swarm manager's Docker API)"
    )


def test_the_daemon_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_RUNTIME", "docker")
    assert load_settings(runtime="swarm").runtime == "swarm"


def test_tls_follows_dockers_environment_for_tcp_urls_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert tls_for("tcp://10.0.0.11:2376") is None  # no DOCKER_TLS_VERIFY: plain TCP
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    tls = tls_for("tcp://10.0.0.11:2376")
    assert tls is not None and tls.verify and tls.ca_cert == str(tmp_path / "ca.pem")
    assert tls.cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    assert tls_for("unix:///var/run/docker.sock") is None

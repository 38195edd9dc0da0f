"""Fixtures for tests on a real multi-node Docker Swarm (scripts/swarm_lab.sh)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.swarm.lab import SwarmLab, lab_session


@pytest.fixture(scope="session")
def swarm_lab() -> Iterator[SwarmLab]:
    """Three nodes (n1 manager, n2 and n3 workers) with a registry holding the demo image: up at first
    use, removed at the end of the session; a lab left by a killed session is removed before."""
    with lab_session() as lab:
        yield lab


@pytest.fixture(scope="session")
def swarm_tls_lab() -> Iterator[SwarmLab]:
    """A second lab whose node APIs speak only TLS (tcp://ADDR:2376, --tlsverify, certificates from
    the lab's own CA; ``cert_path`` is the controller's DOCKER_CERT_PATH): two nodes, n1 the manager."""
    with lab_session(tls=True, nodes=2) as lab:
        yield lab


@pytest.fixture(autouse=True)
def _lab_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on a lab: links up, dockerds running, nodes active and ready again."""
    yield
    for lab in ("swarm_lab", "swarm_tls_lab"):
        if lab in request.fixturenames:
            request.getfixturevalue(lab).heal()

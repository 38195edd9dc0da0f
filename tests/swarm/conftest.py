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


@pytest.fixture(autouse=True)
def _lab_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on the lab: links up, dockerds running, nodes active and ready again."""
    yield
    if "swarm_lab" in request.fixturenames:
        request.getfixturevalue("swarm_lab").heal()

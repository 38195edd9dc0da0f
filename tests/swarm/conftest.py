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

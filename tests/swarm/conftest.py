"""Fixtures for tests on a real multi-node Docker Swarm (scripts/swarm_lab.sh)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.swarm.lab import DOWN_TIMEOUT, HEAL_TIMEOUT, UP_TIMEOUT, SwarmLab, lab_session

# pytest-timeout counts fixture setup and teardown. A test on a lab carries its own bounded waits for
# Swarm to place, move and route replicas (the longest, a drain under traffic: ~360 s), the heal after
# it, and, when it is the session's first or last on that lab, the lab's `up` or `down`. Together those
# are more than the suite's 300 s default, which a loaded machine turned into a timeout in teardown in
# place of the failed wait's own message. The claims keep their own limits (each wait names its own).
LONGEST_WAITS = 360.0
LAB_TEST_TIMEOUT = UP_TIMEOUT + LONGEST_WAITS + HEAL_TIMEOUT + DOWN_TIMEOUT


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        on_lab = {"swarm_lab", "swarm_tls_lab"} & set(getattr(item, "fixturenames", ()))
        if on_lab and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(LAB_TEST_TIMEOUT))


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

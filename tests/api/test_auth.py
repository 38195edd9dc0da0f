"""Bearer auth when the API is bound outside loopback: /health stays open, everything else needs it."""

from __future__ import annotations

import statistics
import time

import pytest
from aiohttp.test_utils import TestClient

from core.api.auth import UNAUTHORIZED_DETAIL
from tests.api.conftest import TOKEN

GOOD = {"Authorization": f"Bearer {TOKEN}"}


async def test_health_needs_no_token(token_api: TestClient) -> None:
    assert (await token_api.get("/health")).status == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/apps"), ("GET", "/api/v1/apps"), ("GET", "/metrics"), ("GET", "/cluster/status"),
     ("POST", "/apps/register"), ("GET", "/api/v1/openapi.json"), ("DELETE", "/api/v1/cluster/leadership")],
)  # fmt: skip
async def test_missing_token_is_401(token_api: TestClient, method: str, path: str) -> None:
    response = await token_api.request(method, path)
    assert response.status == 401
    assert await response.json() == {"detail": UNAUTHORIZED_DETAIL}


async def test_right_token_works_and_wrong_tokens_get_the_same_answer(token_api: TestClient) -> None:
    assert (await token_api.get("/apps", headers=GOOD)).status == 200
    answers = set()
    for header in (f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN):
        response = await token_api.get("/apps", headers={"Authorization": header})
        assert response.status == 401
        answers.add((await response.text(), response.headers.get("WWW-Authenticate")))
    assert len(answers) == 1  # nothing about the token leaks through a different body
    assert TOKEN not in next(iter(answers))[0]


async def test_wrong_token_timing_does_not_depend_on_the_matching_prefix(token_api: TestClient) -> None:
    async def median_ms(candidate: str) -> float:
        samples = []
        for _ in range(40):
            started = time.perf_counter()
            await token_api.get("/apps", headers={"Authorization": f"Bearer {candidate}"})
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    far = await median_ms("x" * len(TOKEN))
    near = await median_ms(TOKEN[:-1] + "x")
    # compare_digest is constant-time; the request path dwarfs any difference: allow noise only.
    assert abs(far - near) < max(2.0, 0.5 * far)

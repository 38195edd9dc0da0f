"""Bearer auth when the API is bound outside loopback: /health stays open, everything else needs it."""

from __future__ import annotations

import hmac

import pytest
from aiohttp.test_utils import TestClient

from core.api import auth
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


async def test_every_wrong_token_goes_through_the_constant_time_compare(
    token_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain ``==`` would stop at the first differing byte; the timing itself is printed by
    bench/api.py (the difference is far below what a shared host's noise lets a test see)."""
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    candidates = ["x" * len(TOKEN), TOKEN[:-1] + "x", f"{TOKEN}x", ""]
    for candidate in candidates:
        response = await token_api.get("/apps", headers={"Authorization": f"Bearer {candidate}"})
        assert response.status == 401
    response = await token_api.get("/apps", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status == 401  # the right token under the wrong scheme still costs one compare
    assert compared == [(c.encode(), TOKEN.encode()) for c in [*candidates, TOKEN]]

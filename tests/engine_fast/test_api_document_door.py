"""Every document door of the daemon refuses what core.documents refuses, naming the problem: the API
routes that take documents and the engine's register (the console's --apply)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from core.documents import DocumentError
from tests.support.documents import MALFORMED_JSON, TEN_MIB, TOO_DEEP_JSON, YAML_CASES
from tests.support.world import MemoryWorld

DOCUMENT_ROUTES = ["/apps/register", "/api/v1/apps", "/api/v1/validate"]
# (body, status, words of the detail); the API reads JSON, so a YAML alias bomb is refused as not JSON.
API_CASES = {
    "ten MiB": (b'{"metadata": "' + b"x" * TEN_MIB + b'"}', 413, "keep it under"),
    "too deep": (TOO_DEEP_JSON.encode(), 400, "request body: nests more than 64 levels deep"),
    "malformed": (MALFORMED_JSON.encode(), 400, "request body: not valid JSON"),
    "alias bomb": (YAML_CASES["alias bomb"][0].encode(), 400, "request body: not valid JSON"),
}


@pytest.mark.parametrize("route", DOCUMENT_ROUTES)
async def test_api_refuses_unreadable_documents_naming_the_problem(
    api: TestClient, world: MemoryWorld, route: str
) -> None:
    for case, (body, status, words) in API_CASES.items():
        answer = await api.post(route, data=body, headers={"Content-Type": "application/json"})
        assert answer.status == status, case
        assert words in (await answer.json())["detail"], case
    assert await world.engine.list_apps() == []


@pytest.mark.parametrize("case", sorted(YAML_CASES))
async def test_engine_register_of_text_goes_through_the_same_door(world: MemoryWorld, case: str) -> None:
    text, words = YAML_CASES[case]
    with pytest.raises(DocumentError) as refused:
        await world.engine.register(text)
    assert str(refused.value).startswith("the app spec: ") and words in str(refused.value)
    assert await world.engine.list_apps() == []

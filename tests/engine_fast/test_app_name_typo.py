"""A mistyped app name (`orchestry scale wbe 2`) is answered with the registered name it is close to,
as kubectl and git do, instead of "register it first"; a name close to none keeps the plain answer."""

from __future__ import annotations

import pytest

from core.errors import NotFound
from tests.support.world import MemoryWorld, app_document


async def test_a_mistyped_app_name_suggests_the_registered_one(world: MemoryWorld) -> None:
    await world.engine.register(app_document("checkout"))
    for call in (
        lambda: world.engine.scale("chekout", 2),
        lambda: world.engine.get_app("checkuot"),
        lambda: world.engine.restart("chckout"),
    ):
        with pytest.raises(NotFound) as missing:
            await call()
        assert "did you mean 'checkout'?" in str(missing.value)
    with pytest.raises(NotFound) as unknown:
        await world.engine.scale("zzz", 2)
    assert "did you mean" not in str(unknown.value) and "register it first" in str(unknown.value)

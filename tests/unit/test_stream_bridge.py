"""A reader thread handing an item over after the consumer's loop closed is told so, quietly."""

from __future__ import annotations

import asyncio
import gc
import warnings

from core.runtime.streams import _StreamBridge


def test_a_put_after_the_loop_closed_returns_false_without_a_never_awaited_warning() -> None:
    loop = asyncio.new_event_loop()
    bridge = _StreamBridge(loop)
    loop.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert bridge.put("line") is False
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)], [str(w.message) for w in caught]

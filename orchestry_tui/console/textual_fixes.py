"""A fix to Textual the console cannot wait for.

``StylesCache.get_inner_outer`` (textual 8.2.8, ``textual/_styles_cache.py``) is an instance method
under ``functools.lru_cache(1024)``, so each cache key holds its ``StylesCache``: every widget that ever
rendered keeps its styled lines (and the strips derived from them) alive until 1,024 others push it out
(Textualize/textual#6665, open).  In the console each help or describe screen opened and closed left
~22,000 objects so pinned (~3.4 MB): RSS grew 90 MB over the fleet bench's 37 rounds, and every garbage
collection walked them.  The colours are the whole of the key that matters, so the cache is keyed by
them alone here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from textual._styles_cache import StylesCache

_unkeyed: Callable[..., Any] | None = None  # Textual's own body (its first argument unused)


@lru_cache(1024)
def _inner_outer(base_background: object, background: object) -> Any:
    assert _unkeyed is not None
    return _unkeyed(None, base_background, background)


def _get_inner_outer(self: StylesCache, base_background: object, background: object) -> Any:
    return _inner_outer(base_background, background)


def release_widget_styles() -> None:
    """Key the inner/outer colours cache by the colours only (once; a Textual without the bug — the
    method no longer an lru_cache wrapper — is left as it is)."""
    global _unkeyed
    method = StylesCache.__dict__.get("get_inner_outer")
    if method is None or not hasattr(method, "cache_clear") or not hasattr(method, "__wrapped__"):
        return
    _unkeyed = method.__wrapped__
    method.cache_clear()  # and with it the widgets' styles it pinned so far
    StylesCache.get_inner_outer = _get_inner_outer  # type: ignore[method-assign]

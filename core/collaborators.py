"""The small interfaces services receive instead of the components behind them."""

from __future__ import annotations

from typing import Any, Protocol

from core.errors import NotLeader


class Emit(Protocol):
    """Record an event (redacted, persisted, published)."""

    async def __call__(
        self,
        category: str,
        kind: str,
        message: str,
        app: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> Any: ...


class Leadership(Protocol):
    """Whether this node holds the lease, and the error that says who does."""

    def is_leader(self) -> bool: ...

    def not_leader(self) -> NotLeader: ...


def require_leader(leadership: Leadership) -> None:
    if not leadership.is_leader():
        raise leadership.not_leader()

"""Persistent state: SQLAlchemy tables, repositories and alembic migrations (SQLite or PostgreSQL)."""

from core.store.db import FencedOut, current_revision, downgrade, upgrade
from core.store.records import (
    AppRecord,
    EventRecord,
    InstanceRecord,
    LeaseRecord,
    NodeRecord,
    ScalingRecord,
)
from core.store.store import Store

__all__ = [
    "AppRecord",
    "EventRecord",
    "FencedOut",
    "InstanceRecord",
    "LeaseRecord",
    "NodeRecord",
    "ScalingRecord",
    "Store",
    "current_revision",
    "downgrade",
    "upgrade",
]

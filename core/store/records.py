"""Plain records the repositories read and write.

Times are epoch floats (seconds).  Records carry no SQLAlchemy state, so they can cross threads and
be handed to the asyncio side freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.models import Event, ScalingRecord

# Events and scaling decisions already have a shared shape in core.models; the store returns those
# types directly so nothing has to convert between two copies of the same thing.
EventRecord = Event
__all__ = [
    "AppRecord",
    "EventRecord",
    "InstanceRecord",
    "LeaseRecord",
    "NodeRecord",
    "ScalingRecord",
]


@dataclass
class AppRecord:
    name: str
    spec: dict[str, Any]  # canonical parsed document
    raw: dict[str, Any]  # the document as submitted
    spec_hash: str
    status: str = "stopped"
    status_reason: str = ""
    mode: str = "auto"
    desired_replicas: int = 1
    policy: dict[str, Any] = field(default_factory=dict)
    # Set by the store from the database clock; values passed in are ignored on create.
    created_at: float = 0.0
    updated_at: float = 0.0
    last_scaled_at: float | None = None
    generation: int = 1


@dataclass
class InstanceRecord:
    app: str
    slot: int
    container_id: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    state: str = "starting"
    ready: bool = False
    failures: int = 0
    restarts: int = 0
    last_check_at: float | None = None
    reason: str = ""
    updated_at: float = 0.0  # set by the store


@dataclass
class LeaseRecord:
    term: int
    leader_id: str
    hostname: str
    api_url: str
    acquired_at: float
    renewed_at: float
    expires_at: float
    released_at: float | None = None


@dataclass
class NodeRecord:
    node_id: str
    hostname: str
    api_url: str
    last_heartbeat: float
    started_at: float

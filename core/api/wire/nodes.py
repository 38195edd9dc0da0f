"""The ``/api/v1/nodes`` answers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.api.wire.base import NullableInteger, NullableNumber, Wire
from core.runtime.base import NodeInfo

# --- nodes ---------------------------------------------------------------------------------------------


class Node(Wire):
    id: str
    hostname: str
    address: str = Field(description="where replicas published on this node are reached")
    role: Literal["manager", "worker", "standalone"]
    state: str = Field(description="ready, down, unknown or disconnected")
    availability: Literal["active", "pause", "drain", "draining"]
    leader: bool
    tasks: int = Field(description="this installation's running replicas on the node")
    engine_version: str
    cpu_cores: NullableNumber
    memory_bytes: NullableInteger
    cpu_reserved_cores: NullableNumber
    memory_reserved_bytes: NullableInteger
    cpu_percent: NullableNumber = Field(
        description="CPU of this installation's replicas there (100 = one core); null: see reason"
    )
    reason: str | None = Field(description="why figures are null (node down, API unreachable)")

    @classmethod
    def of(cls, node: NodeInfo) -> Node:
        return cls(
            id=node.id,
            hostname=node.hostname,
            address=node.address,
            role=node.role,  # type: ignore[arg-type]
            state=node.state,
            availability=node.availability,  # type: ignore[arg-type]
            leader=node.leader,
            tasks=node.tasks,
            engine_version=node.engine_version,
            cpu_cores=node.cpu_cores,
            memory_bytes=node.memory_bytes,
            cpu_reserved_cores=node.cpu_reserved_cores,
            memory_reserved_bytes=node.memory_reserved_bytes,
            cpu_percent=node.cpu_percent,
            reason=node.unavailable_reason or None,
        )

    def info(self) -> NodeInfo:
        """The console's view of a node the daemon described."""
        fields = self.model_dump(exclude={"reason"})
        return NodeInfo(**fields, unavailable_reason=self.reason or "")


class NodeList(Wire):
    nodes: list[Node]


class NodeDrain(Wire):
    node: Node
    moving: int = Field(description="replicas being replaced on other nodes first")
    apps: list[str]


class NodeActivated(Wire):
    node: Node

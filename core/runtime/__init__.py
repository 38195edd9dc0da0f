"""Container runtimes: the Runtime protocol (base), the Docker implementation and port allocation."""

from core.runtime.base import ContainerInfo, ContainerRequest, ContainerStats, LogLine, Runtime, RuntimeEvent
from core.runtime.docker import DockerRuntime
from core.runtime.ports import PortAllocator, PortsExhausted

__all__ = [
    "ContainerInfo",
    "ContainerRequest",
    "ContainerStats",
    "DockerRuntime",
    "LogLine",
    "PortAllocator",
    "PortsExhausted",
    "Runtime",
    "RuntimeEvent",
]

"""The engine harness for tests; it lives in testkit/harness.py, which bench/ shares (bench must not
import tests/)."""

from testkit.harness import (
    DEMO_IMAGE,
    TrafficClient,
    app_name,
    demo_app,
    docker,
    engine_settings,
    free_port,
    get_text,
    lb,
    ready_count,
    ready_is,
    wait_for,
)

__all__ = [
    "DEMO_IMAGE",
    "TrafficClient",
    "app_name",
    "demo_app",
    "docker",
    "engine_settings",
    "free_port",
    "get_text",
    "lb",
    "ready_count",
    "ready_is",
    "wait_for",
]

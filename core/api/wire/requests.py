"""Request bodies and the error answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, RootModel

from core.api.wire.base import Json, Mode, Wire

# --- errors and requests ------------------------------------------------------------------------------


class Error(Wire):
    detail: str


class AppDocument(Wire):
    """An app spec (API.md 'App spec'); the engine validates it and names any bad field."""

    class Metadata(Wire):
        name: str
        labels: dict[str, Any] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", json_schema_extra={"required": ["metadata", "spec"]})
    apiVersion: str = "v1"
    kind: str = "App"
    metadata: Metadata
    spec: Json
    scaling: Json = Field(default_factory=dict)
    healthCheck: Json = Field(default_factory=dict)


class ScaleRequest(Wire):
    replicas: int = Field(ge=0, le=100)


class PolicyRequest(Wire):
    policy: Json


class RestartRequest(Wire):
    replica: int | None = Field(default=None, ge=1, le=1000)


class ScalingChanges(Wire):
    """mode and any scaling key of the app spec (camelCase), e.g. {"maxReplicas": 8}"""

    model_config = ConfigDict(extra="allow")
    mode: Mode | None = None


class SimulatedMetrics(Wire):
    rps: float | None = Field(default=None, ge=0)
    p95LatencyMs: float | None = Field(default=None, ge=0)
    activeConnections: float | None = Field(default=None, ge=0)
    cpuPercent: float | None = Field(default=None, ge=0)
    memoryPercent: float | None = Field(default=None, ge=0)
    healthyReplicas: float | None = Field(default=None, ge=0)
    evaluate: bool = True


class BacktestRequest(Wire):
    model_config = ConfigDict(extra="forbid")
    policy: Json | None = Field(default=None, description="scaling keys of the candidate, as in apply")
    since: float | None = Field(default=None, description="seconds of recorded history (21600)")
    trace: Literal["step", "ramp", "spike", "sine"] | None = None


class SecretFields(RootModel[dict[str, str]]):
    """field name → value, e.g. {"password": "..."}; values are never returned"""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

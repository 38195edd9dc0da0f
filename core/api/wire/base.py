"""The wire models' common ground: number and id types, the ``Wire`` base class."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

SHORT_ID = 12

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
NullableNumber = Annotated[int | float | None, WithJsonSchema({"type": ["number", "null"]})]
NullableInteger = Annotated[int | None, WithJsonSchema({"type": ["integer", "null"]})]
ShortId = Annotated[str, Field(max_length=SHORT_ID)]
Point = Annotated[
    tuple[Number, Number],
    WithJsonSchema({"type": "array", "prefixItems": [{"type": "number"}] * 2, "minItems": 2, "maxItems": 2}),
]
Json = dict[str, Any]
NullableObject = Annotated[dict[str, Any] | None, WithJsonSchema({"type": ["object", "null"]})]
AppStatusName = Literal["running", "degraded", "stopped", "error"]
Mode = Literal["auto", "manual"]
EventCategory = Literal["lifecycle", "scaling", "health", "error", "cluster"]


def short_id(container_id: str) -> str:
    return container_id[:SHORT_ID]


def _percent(value: float | None) -> float:
    # 1.0 clients expect a number here; "not measured yet" reads as 0.0 there.
    return float(value) if value is not None else 0.0


class Wire(BaseModel):
    """A JSON answer (or body) as it travels; ``dump()`` is what the handler sends."""

    model_config = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

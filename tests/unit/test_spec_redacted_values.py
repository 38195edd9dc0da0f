"""A spec shown by `orchestry spec` (sensitive values as "***") applied back is refused, naming the
field: a health check's Authorization header of "***" would make every probe fail with 401."""

from __future__ import annotations

import pytest

from core.errors import SpecError
from core.spec import parse_app_spec, redact_document


def document(header: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": "web"},
        "spec": {"image": "orchestry/demo:latest", "ports": [{"containerPort": 8080}]},
        "healthCheck": {"path": "/health", "headers": [{"name": "Authorization", "value": header}]},
    }


def test_a_redacted_health_check_header_applied_back_is_refused_naming_it() -> None:
    real = document("Bearer s3cr3t-token")
    parse_app_spec(real)
    shown = redact_document(parse_app_spec(real).to_document())
    with pytest.raises(SpecError) as refused:
        parse_app_spec(shown)
    message = str(refused.value)
    assert (
        "healthCheck.headers[0].value" in message and "Authorization" in message and "real value" in message
    )


def test_three_stars_in_a_header_that_is_never_redacted_is_a_value_like_any_other() -> None:
    doc = document("x")
    doc["healthCheck"] = {"headers": [{"name": "X-Probe", "value": "***"}]}
    parse_app_spec(doc)

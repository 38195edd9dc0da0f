"""The REST API: both route families, auth, OpenAPI document, Prometheus exposition."""

from core.api.app import create_app

__all__ = ["create_app"]

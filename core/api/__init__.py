"""The REST API: both route families, auth, OpenAPI document, Prometheus exposition.

Build it with ``core.api.app.create_app(engine, node_id)``.  Nothing is imported here so the pure
modules (wire, params) load without the engine.
"""

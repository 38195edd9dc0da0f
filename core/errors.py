"""Typed errors raised inside ``core``.

Each maps to exactly one HTTP status in ``core.api`` and to a friendly one-line message in the CLI and
console.  Messages are complete sentences that name the field or object and say how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class OrchestryError(Exception):
    """Base of every error ``core`` raises on purpose."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SpecError(OrchestryError):
    """An app spec (or a scaling policy change) breaks a rule; ``field`` is a dotted path."""

    http_status = 422

    def __init__(self, message: str, field: str | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.errors = errors or [message]


class BadRequest(OrchestryError):
    http_status = 400


class RequestTimeout(BadRequest):
    """The client stopped sending its request body (or sends it too slowly)."""

    http_status = 408


class NotFound(OrchestryError):
    http_status = 404


def app_not_registered(name: str, registered: Iterable[str]) -> NotFound:
    """The answer to a name no app has; a mistyped one (`scale wbe 2`) names the app it is close to."""
    # Lower-cased first: `status WEB` names web (app names are lower case, so WEB is never one).
    close = difflib.get_close_matches(name.lower(), list(registered), n=1, cutoff=0.6)
    if close:
        return NotFound(f"app '{name}' is not registered: did you mean '{close[0]}'? (orchestry list)")
    return NotFound(f"app '{name}' is not registered: register it first (orchestry register FILE)")


class Conflict(OrchestryError):
    http_status = 409


class ForeignContainer(Conflict):
    """A replica's container name is taken by another Orchestry installation's container."""


class NotLeader(OrchestryError):
    """This node does not hold the lease; writes must go to ``leader_id``."""

    http_status = 503

    def __init__(self, leader_id: str | None, message: str | None = None) -> None:
        if message is None and leader_id:
            message = f"Not the leader. Leader is: {leader_id}"
        elif message is None:
            message = "No leader elected, cluster not ready"
        super().__init__(message)
        self.leader_id = leader_id


class SettingsError(OrchestryError):
    """A setting has a value it cannot accept; the message names the variable."""


class RuntimeUnavailable(OrchestryError):
    """The Docker engine cannot be reached; the message names the socket tried and the fix."""

    http_status = 503


class ImageNotFound(OrchestryError):
    http_status = 422


class ContainerStartError(OrchestryError):
    """A container was created but could not start (bad command, port clash, …)."""


class SecretError(OrchestryError):
    """A secret is missing, or cannot be decrypted with the configured key."""

    http_status = 422


class StoreError(OrchestryError):
    http_status = 503


class ConfigRejected(OrchestryError):
    """nginx refused a generated configuration (``nginx -t`` failed); the previous one stays live."""


class AppBlocked(OrchestryError):
    """An app cannot start replicas (missing image, missing secret, command that cannot run)."""

    http_status = 422

"""TLS to a Docker Engine API over tcp:// (a Swarm manager, a node's own API), the way the docker CLI
does it: DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem); and, when a call failed,
whether TLS was the trouble, so the reason can say so with the fix."""

from __future__ import annotations

import os
import ssl
from typing import Any

import docker.errors
import requests.exceptions
from docker.tls import TLSConfig
from docker.utils import kwargs_from_env

from core.runtime.docker_calls import _explanation, _root_cause

TLS_FIX = (
    "the controller needs DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH holding ca.pem (the CA that signed the "
    "node's server certificate, whose SAN names the address in the URL), cert.pem and key.pem (a client "
    "certificate that CA signed)"
)
# dockerd's answer to plain HTTP on its TLS port (the client had no TLS settings at all).
PLAIN_TO_TLS = "HTTP request to an HTTPS server"


class PinnedTLS(TLSConfig):
    """docker-py's TLSConfig whose CA stays the one of DOCKER_CERT_PATH.

    requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE (set system-wide on many hosts, this one
    included) replace a session's own ``verify`` on every request, so docker-py's client then checks
    the node's certificate against the system CAs and fails ("unable to get local issuer
    certificate"), or with DOCKER_TLS_VERIFY off verifies after all. The client keeps its own."""

    def configure_client(self, client: Any) -> None:
        super().configure_client(client)
        merge = client.merge_environment_settings

        def keep_own_verify(*args: Any, **kwargs: Any) -> dict[str, Any]:
            settings: dict[str, Any] = merge(*args, **kwargs)
            settings["verify"] = client.verify
            return settings

        client.merge_environment_settings = keep_own_verify


def tls_for(url: str) -> Any:
    """Docker's standard TLS environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) for tcp:// URLs."""
    if not url.startswith(("tcp://", "https://")):
        return None
    found = kwargs_from_env(environment=dict(os.environ)).get("tls")
    if found is None:
        return None
    return PinnedTLS(client_cert=found.cert, ca_cert=found.ca_cert, verify=found.verify)


def tls_failure(exc: BaseException) -> str | None:
    """What went wrong with TLS, when that is why the call failed; None for any other failure."""
    seen: BaseException | None = exc
    for _ in range(20):  # bounded: a chain could in principle loop
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError | requests.exceptions.SSLError):
            return f"the TLS handshake failed ({_root_cause(seen)})"
        if isinstance(seen, docker.errors.TLSParameterError):
            return f"the TLS settings are incomplete ({seen})"
        if isinstance(seen, docker.errors.APIError) and "HTTP request to an HTTPS server" in _explanation(
            seen
        ):
            # dockerd's answer to plain HTTP on its TLS port (docker-py sent no certificate at all).
            return "the node requires TLS and the controller sent plain HTTP (it has no TLS settings)"
        seen = seen.__cause__ or seen.__context__
    return None

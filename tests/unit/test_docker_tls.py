"""TLS settings for Docker APIs over tcp:// (core.runtime.docker_tls): the client keeps the CA of
DOCKER_CERT_PATH even where REQUESTS_CA_BUNDLE is set, and a TLS failure is told apart from others."""

from __future__ import annotations

import ssl
from pathlib import Path

import docker.errors
import pytest
import requests
from docker import APIClient

from core.runtime.docker_tls import tls_failure, tls_for
from core.runtime.swarm_nodes import NodeApiProbe

URL = "tcp://10.9.9.9:2376"


@pytest.fixture
def cert_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("placeholder: only the paths are used here\n")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    return tmp_path


def test_the_client_keeps_its_own_ca_where_requests_ca_bundle_is_set(
    cert_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set system-wide on many hosts; requests would let it replace the client's CA on every request.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = APIClient(base_url=URL, version="1.41", tls=tls_for(URL))
    try:
        settings = client.merge_environment_settings(client.base_url, {}, None, None, None)
        assert settings["verify"] == str(cert_path / "ca.pem")
        assert client.cert == (str(cert_path / "cert.pem"), str(cert_path / "key.pem"))
    finally:
        client.close()


def test_tls_only_for_tcp_urls_and_only_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert tls_for(URL) is None
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    assert tls_for("unix:///var/run/docker.sock") is None


def _wrapped(inner: BaseException) -> requests.exceptions.ConnectionError:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise requests.exceptions.ConnectionError("Max retries exceeded") from exc
    except requests.exceptions.ConnectionError as outer:
        return outer


def test_tls_failures_are_named_and_other_failures_are_not() -> None:
    wrong_ca = _wrapped(
        ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    )
    assert "TLS handshake failed" in (tls_failure(wrong_ca) or "")
    assert "certificate verify failed" in (tls_failure(wrong_ca) or "")
    plain = docker.errors.APIError(
        "400 Client Error", response=None, explanation="Client sent an HTTP request to an HTTPS server.\n"
    )
    assert "sent plain HTTP" in (tls_failure(plain) or "")
    assert "incomplete" in (tls_failure(docker.errors.TLSParameterError("Path to a certificate")) or "")
    assert tls_failure(_wrapped(ConnectionRefusedError(111, "Connection refused"))) is None
    assert tls_failure(docker.errors.APIError("500 Server Error", explanation="boom")) is None


def test_the_nodes_view_names_tls_and_its_fix() -> None:
    def refuse(url: str, timeout: float) -> None:
        raise _wrapped(ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca"))

    raw = {"ID": "n2id", "Description": {"Hostname": "n2"}, "Spec": {"Labels": {"orchestry.docker-url": URL}}}
    reason = NodeApiProbe(ping=refuse).reason(raw)
    assert reason.startswith(f"node n2's Docker API at {URL} cannot be asked over TLS")
    assert "unknown ca" in reason and "DOCKER_CERT_PATH" in reason

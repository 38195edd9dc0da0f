"""A small synchronous HTTP client for the daemon's API (stdlib only, so the CLI starts fast).

The request shape (URL, headers, token), the error answers and the reasons a daemon is unreachable are
defined here once; ``async_http`` sends the same requests through aiohttp for the console.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
CONFIG_FILE = Path("~/.config/orchestry/config.yaml")

# How long a request waits for its answer. A cluster replaces a frozen leader within its lease TTL, and
# the controller LB answers a write its node leaves unanswered for TTL + 5 s with a 503 saying so
# (scripts/controller_lb.py): the CLI waits a little longer than that, to hear the LB's answer, and no
# longer (it waited 60 s, while the LB held the write for 300 s and the user heard nothing of it).
DEFAULT_LEASE_TTL = 30  # core.settings' default for LEADER_LEASE_TTL
TIMEOUT_MARGIN_SECONDS = 10


def lease_ttl_from(environ: dict[str, str]) -> int:
    """The cluster's LEADER_LEASE_TTL (or ORCHESTRY_LEASE_TTL) as its daemons read it, else the default;
    the CLI and the controller LB (scripts/controller_lb.py) run where the cluster is set up."""
    text = (environ.get("LEADER_LEASE_TTL") or environ.get("ORCHESTRY_LEASE_TTL") or "").strip()
    return int(text) if text.isdigit() else DEFAULT_LEASE_TTL


def default_timeout(environ: dict[str, str] | None = None) -> float:
    """TTL + TIMEOUT_MARGIN_SECONDS (a TTL under 3 s, which no daemon takes, counts as the default)."""
    ttl = lease_ttl_from(dict(os.environ) if environ is None else environ)
    return float((ttl if ttl >= 3 else DEFAULT_LEASE_TTL) + TIMEOUT_MARGIN_SECONDS)


LEADER_HEADER = "X-Current-Leader"
API_HEADER = "X-Orchestry-Version"  # core.api.app.API_HEADER: sent on every answer of the API


# Something accepted the connection and then said nothing: "start a daemon" would be the wrong advice.
SILENT = (
    "it, or behind a controller LB one of its nodes, may be frozen (SIGSTOP, a paused VM) or overloaded; "
    "a change sent may still be carried out: check with `orchestry status NAME` or `orchestry events` "
    "before sending it again"
)


class DaemonUnreachable(Exception):
    def __init__(self, url: str, reason: str) -> None:
        if reason == "timed out":
            message = f"no answer from the Orchestry daemon at {url} (timed out): {SILENT}"
        else:
            message = (
                f"cannot reach the Orchestry daemon at {url} ({reason}): "
                "start one with `orchestry daemon` or set ORCHESTRY_URL"
            )
        super().__init__(message)
        self.url = url
        self.reason = reason


class InvalidDaemonUrl(DaemonUnreachable):
    """The daemon URL given cannot be one (``notaurl``, ``http://host:99999``): named with where it was
    set. A DaemonUnreachable, so every command that reports an unreachable daemon reports this too."""

    def __init__(self, url: str, setting: str, problem: str) -> None:
        Exception.__init__(
            self, f"{setting} is not a daemon URL ({problem}): use http://HOST:PORT, e.g. {DEFAULT_URL}"
        )
        self.url = url
        self.reason = problem


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a daemon's base URL, or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (parses the port: ValueError when it is not a number 0-65535)
    except ValueError:
        return "its port is not a number from 1 to 65535"
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None


class ApiError(Exception):
    def __init__(self, status: int, detail: str, leader: str | None = None, from_api: bool = True) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.leader = leader  # X-Current-Leader of a follower's 503
        self.from_api = from_api  # False: another web server answered (no API_HEADER)


@dataclass(frozen=True)
class ResolvedUrl:
    url: str
    source: str  # "--url", "ORCHESTRY_URL", the config file path, or "default"


def config_file() -> Path:
    return CONFIG_FILE.expanduser()


def read_cli_config(path: Path) -> dict[str, Any]:
    """The Orchestry 1.0 CLI config (``host``, ``port``); {} when absent or unreadable."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    from core.documents import DocumentError, read_document  # only when a config file exists

    try:
        data = read_document(text, str(path))
    except DocumentError:
        return {}
    return data if isinstance(data, dict) else {}


def resolve_url(flag: str | None, environ: dict[str, str] | None = None) -> ResolvedUrl:
    """Where requests go: ``--url``, ``ORCHESTRY_URL``, the 1.0 config file, then the default.

    Raises InvalidDaemonUrl, naming the flag, variable or file to fix, when that is no http(s) URL."""
    environ = dict(os.environ) if environ is None else environ
    if flag:
        return _checked(flag.strip().rstrip("/"), "--url", f"--url {flag!r}")
    if environ.get("ORCHESTRY_URL"):
        value = environ["ORCHESTRY_URL"]
        return _checked(value.strip().rstrip("/"), "ORCHESTRY_URL", f"ORCHESTRY_URL={value!r}")
    path = config_file()
    config = read_cli_config(path)
    if config.get("host"):
        host = str(config["host"]).strip()
        port = str(config.get("port") or 8000).strip()
        base = host if host.startswith(("http://", "https://")) else f"http://{host}:{port}"
        return _checked(base.rstrip("/"), str(path), f"host {host!r} and port {port!r} in {path}")
    return ResolvedUrl(DEFAULT_URL, "default")


def _checked(url: str, source: str, setting: str) -> ResolvedUrl:
    problem = url_problem(url)
    if problem is not None:
        raise InvalidDaemonUrl(url, setting, problem)
    return ResolvedUrl(url, source)


def unreachable_reason(exc: BaseException) -> str:
    """A few words on why a request got no answer, from urllib's, aiohttp's or the socket's error."""
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    exc = getattr(exc, "os_error", None) or exc  # aiohttp wraps the socket's error
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return str(getattr(exc, "strerror", None) or exc) or type(exc).__name__


def request_url(base_url: str, path: str, query: dict[str, Any] | None = None) -> str:
    url = base_url + path
    params = {k: v for k, v in (query or {}).items() if v is not None}
    if params:
        url += "?" + urllib.parse.urlencode(params)
    return url


def request_headers(token: str | None, with_body: bool) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if with_body:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def error_detail(raw: bytes, fallback: str) -> str:
    """The ``detail`` sentence of an error answer, or its text when it is not the API's JSON."""
    try:
        detail = json.loads(raw).get("detail") or snippet(raw)
    except (ValueError, AttributeError):
        detail = snippet(raw) or fallback
    return str(detail)


SNIPPET_CHARACTERS = 120


def snippet(raw: bytes) -> str:
    """Another server's answer in one short line (an HTML error page would fill the screen)."""
    text = " ".join(re.sub(r"<[^>]*>", " ", raw.decode(errors="replace")).split())
    return text if len(text) <= SNIPPET_CHARACTERS else text[: SNIPPET_CHARACTERS - 3] + "..."


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            from_api = any(name.lower() == API_HEADER.lower() for name in self.headers)
            detail = f"not JSON: {snippet(self.body)}"
            raise ApiError(self.status, detail, None, from_api) from None


def leader_url(status: dict[str, Any] | None, leader_id: str) -> str:
    """The API URL the cluster advertises for ``leader_id`` ("" when unknown), from /cluster/status."""
    if not status:
        return ""
    lease = status.get("lease") or {}
    if lease.get("leader_id") == leader_id and lease.get("api_url"):
        return str(lease["api_url"])
    for node in status.get("nodes") or []:
        if node.get("node_id") == leader_id and node.get("api_url"):
            return str(node["api_url"])
    return ""


# A refusal while no node leads, or while the lease still names a leader that died.
NO_LEADER_YET = (
    "retry in a few seconds: a leader that is down is replaced within the lease TTL (LEADER_LEASE_TTL)"
)

# Asking the follower where its leader listens must not hold up the refusal it is part of.
LEADER_LOOKUP_TIMEOUT_SECONDS = 2.0


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = default_timeout() if timeout is None else timeout

    def _request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> urllib.request.Request:
        url = request_url(self.base_url, path, query)
        headers = request_headers(self.token, body is not None)
        data = None if body is None else json.dumps(body).encode()
        return urllib.request.Request(url, data=data, headers=headers, method=method)

    def _open(self, request: urllib.request.Request, timeout: float | None) -> Any:
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            detail = error_detail(exc.read(), str(exc.reason))
            from_api = exc.headers.get(API_HEADER) is not None
            leader = exc.headers.get(LEADER_HEADER)
            if exc.code == 503 and leader:
                detail = self._where_to_send(detail, leader)
            raise ApiError(exc.code, detail, leader, from_api) from None
        except (urllib.error.URLError, OSError) as exc:
            raise DaemonUnreachable(self.base_url, unreachable_reason(exc)) from None

    def _where_to_send(self, refusal: str, leader: str) -> str:
        """A follower's refusal, plus the leader's API URL and the two ways to reach it."""
        lookup = ApiClient(self.base_url, self.token, timeout=LEADER_LOOKUP_TIMEOUT_SECONDS)
        try:
            url = leader_url(lookup.get("/api/v1/cluster/status"), leader)
        except (ApiError, DaemonUnreachable, ValueError, AttributeError):
            url = ""
        if url and not self._answers(url):  # during a failover the lease still names the dead leader
            return (
                f"{refusal}: {leader} does not answer at {url}: {NO_LEADER_YET}, or send changes to the "
                "cluster's controller LB, which finds the new leader"
            )
        where = f"the leader's API ({url})" if url else f"the leader ({leader})"
        return f"{refusal}: send changes to {where} or to the cluster's controller LB, which finds the leader"

    def _answers(self, url: str) -> bool:
        try:
            ApiClient(url, self.token, timeout=LEADER_LOOKUP_TIMEOUT_SECONDS).get("/health")
        except (ApiError, DaemonUnreachable, ValueError):
            return False
        return True

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Reply:
        with self._open(self._request(method, path, body, query), self.timeout) as response:
            return Reply(response.status, dict(response.headers.items()), response.read())

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query).json()

    def post(self, path: str, body: Any = None, **query: Any) -> Any:
        return self.call("POST", path, body, query).json()

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body).json()

    def delete(self, path: str, **query: Any) -> Any:
        return self.call("DELETE", path, query=query).json()

    def stream_lines(self, path: str, **query: Any) -> Iterator[dict[str, Any]]:
        """Newline-delimited JSON from a streaming route, until the server ends it; a stream cut short
        (the daemon killed, its host gone) is DaemonUnreachable, as the console's client reports it."""
        with self._open(self._request("GET", path, query=query), None) as response:
            try:
                for raw in response:
                    if raw.strip():
                        yield json.loads(raw)
            # IncompleteRead, a reset connection, or a line cut in the middle
            except (http.client.HTTPException, OSError, ValueError) as exc:
                raise DaemonUnreachable(self.base_url, "the stream was cut") from exc


def path_part(name: str) -> str:
    return urllib.parse.quote(name, safe="")

"""Process settings (DESIGN.md §8): ``ORCHESTRY_*`` environment, ``.env``, an optional TOML file.

Precedence, highest first: keyword arguments (command-line flags) > environment > ``.env`` > TOML file
(``ORCHESTRY_CONFIG``, else ``$XDG_CONFIG_HOME/orchestry/config.toml``) > defaults.  The TOML file uses
the field names (``port = 8001``).  Every bad value becomes one ``SettingsError`` line that names the
variable and what it accepts; secret values never appear in errors or in ``public_dict``.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core.allocator import MALLOC_THRESHOLD, MAX_MALLOC_THRESHOLD
from core.errors import SettingsError

ENV_PREFIX = "ORCHESTRY_"
CONFIG_ENV = "ORCHESTRY_CONFIG"
CONSOLE_TABLE = "console"
DATABASE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2")
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_SIZE = re.compile(r"^(\d+)\s*(k|kib|m|mib)?$")
_SIZE_UNITS = {None: 1, "k": 1024, "kib": 1024, "m": 2**20, "mib": 2**20}
# How long a controller whose heartbeats stopped (it crashed: a clean quit removes its own row) stays
# in the node list, shown down, before a live node's heartbeat deletes its row.
NODE_RETENTION_SECONDS = 3600.0
MIN_NODE_RETENTION_SECONDS = 60.0
MIN_METRICS_RETENTION_SECONDS = 3600.0
_MIN_DURATIONS = {
    "metrics_retention": MIN_METRICS_RETENTION_SECONDS,
    "node_retention": MIN_NODE_RETENTION_SECONDS,
}
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}

# What each setting accepts, finishing the sentence "<VAR>='x' is not valid: expected …".
ACCEPTS: dict[str, str] = {
    "host": "a host name or IP address to listen on, e.g. 127.0.0.1",
    "port": "an integer port 1-65535",
    "lb_listen": "HOST:PORT with a port 1-65535, e.g. 127.0.0.1:8080",
    "domain": "a DNS domain such as apps.example.com",
    "state_dir": "a directory path",
    "database_url": "sqlite:///PATH or postgresql://USER@HOST:PORT/DB",
    "docker_url": "a Docker engine URL such as unix:///var/run/docker.sock or tcp://127.0.0.1:2375",
    "network_mode": "host or bridge",
    "runtime": "docker (one Docker engine) or swarm (a Swarm manager's Docker API)",
    "swarm_node_docker_urls": 'a JSON object of node hostname or id → Docker API URL, e.g. {"n2": "tcp://10.0.0.12:2376"}',
    "swarm_poll_interval": "a number of seconds above 0",
    "node_id": "a non-empty id without spaces, at most 253 characters",
    "lease_ttl": "a whole number of seconds, at least 3",
    "api_token": "a non-empty token",
    "secret_key": "a non-empty key or passphrase",
    "log_level": "debug, info, warning or error",
    "log_format": "text or json",
    "nginx_binary": "the nginx executable's name or path",
    "nginx_conf_dir": "a directory path",
    "nginx_reload_command": "a shell command",
    "relist_interval": "a number of seconds above 0",
    "scaler_interval": "a number of seconds above 0",
    "metrics_interval": "a number of seconds above 0",
    "drain_timeout": "a number of seconds, 0 or more",
    "metrics_retention": "a duration of at least one hour: seconds, or a number with s, m, h or d (e.g. 30d)",
    "node_retention": (
        "a duration of at least one minute and longer than the lease TTL: seconds, or a number with s, m, h "
        "or d (e.g. 1h)"
    ),
    "malloc_threshold": "bytes up to 32 MiB (e.g. 131072 or 128k), or off to leave glibc's moving thresholds",
}


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "orchestry"


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "orchestry" / "config.toml"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (database URLs appear in snapshots and errors)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))
    except ValueError:
        return "<unparseable URL>"


def split_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"``, ``"[::1]:8080"`` or ``":8080"`` → (host, port); raises ValueError."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError("expected HOST:PORT")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError("port out of range")
    host = host.strip("[]") or "127.0.0.1"
    return host, port


# --------------------------------------------------------------------------------------------------
# the TOML file


# Set by load_settings so the file is read (and its errors reported) once, with a known path.
_config_file_values: ContextVar[dict[str, Any] | None] = ContextVar(
    "orchestry_config_file_values", default=None
)


def config_file_path() -> Path | None:
    """The TOML file to read: ``ORCHESTRY_CONFIG`` if it exists, else the XDG default if present.

    A missing file at ``ORCHESTRY_CONFIG`` is no error: the console writes its preferences there and
    creates it on its first save, so pointing the variable at a file that does not exist yet is normal."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            return None
        if not path.is_file():
            raise SettingsError(
                f"{CONFIG_ENV}='{explicit}' is not valid: {path} is not a file; point {CONFIG_ENV} at a "
                "TOML file (it may not exist yet), or unset it"
            )
        return path
    path = default_config_path()
    return path if path.is_file() else None


def _named_by_env(path: Path) -> str:
    """``ORCHESTRY_CONFIG='...': `` when that variable chose ``path``, so its error names what to change."""
    explicit = os.environ.get(CONFIG_ENV)
    return f"{CONFIG_ENV}='{explicit}': " if explicit and Path(explicit).expanduser() == path else ""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings in a TOML file, keyed by field name; unknown keys and bad syntax are errors."""
    named = _named_by_env(path)
    elsewhere = f", or point {CONFIG_ENV} at another file" if named else ""
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{named}{path} is not valid TOML: {exc}: fix the file at that line{elsewhere}"
        ) from None
    except OSError as exc:
        raise SettingsError(
            f"{named}{path} cannot be read ({exc.strerror}): fix its permissions or path{elsewhere}"
        ) from None
    known = list(Settings.model_fields)
    # The console keeps its own preferences (theme, keymap, layout) in a [console] table of this file.
    values.pop(CONSOLE_TABLE, None)
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            raise SettingsError(f"{path}: {key!r} is not a setting: remove it or fix the spelling ({hint})")
    return values


class ConfigFileSource(PydanticBaseSettingsSource):
    """The lowest-priority source: the optional TOML file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values().get(field_name), field_name, False

    def _values(self) -> dict[str, Any]:
        preset = _config_file_values.get()
        if preset is not None:
            return preset
        path = config_file_path()
        return read_settings_file(path) if path else {}

    def __call__(self) -> dict[str, Any]:
        return dict(self._values())


# --------------------------------------------------------------------------------------------------
# the settings


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    lb_listen: str = "127.0.0.1:8080"
    domain: str | None = None
    state_dir: Path = Field(default_factory=_default_state_dir)
    # Empty means "SQLite in state_dir", filled in once state_dir is known.
    database_url: str = ""
    docker_url: str | None = Field(None, validation_alias=_env("ORCHESTRY_DOCKER_URL", "DOCKER_HOST"))
    network_mode: Literal["host", "bridge"] = "host"
    # Where replicas run: the one Docker engine of docker_url, or the Swarm whose manager docker_url is.
    runtime: Literal["docker", "swarm"] = "docker"
    # Swarm: nodes' Docker APIs (for the CPU and memory of their tasks) when a node lacks the
    # orchestry.docker-url label; and how often the manager's tasks are listed (events wake it sooner).
    swarm_node_docker_urls: dict[str, str] = Field(default_factory=dict)
    swarm_poll_interval: float = Field(0.5, gt=0)
    node_id: str = Field(
        default_factory=_default_node_id, validation_alias=_env("ORCHESTRY_NODE_ID", "CLUSTER_NODE_ID")
    )
    lease_ttl: int = Field(30, ge=3, validation_alias=_env("LEADER_LEASE_TTL", "ORCHESTRY_LEASE_TTL"))
    api_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    nginx_binary: str = "nginx"
    nginx_conf_dir: Path | None = None  # external nginx: app files are written here
    nginx_reload_command: str | None = None  # external nginx: how to reload it
    relist_interval: float = Field(30.0, gt=0)
    scaler_interval: float = Field(5.0, gt=0)
    metrics_interval: float = Field(2.0, gt=0)
    drain_timeout: float = Field(30.0, ge=0)
    # How long the metric history (core/history.py) is kept; older rows are deleted by the leader.
    metrics_retention: float = Field(30 * 86_400.0, ge=MIN_METRICS_RETENTION_SECONDS)
    # A crashed controller's row in the cluster pane and /api/v1/cluster/overview (core/cluster.py).
    node_retention: float = Field(NODE_RETENTION_SECONDS, ge=MIN_NODE_RETENTION_SECONDS)
    # glibc's mmap and trim thresholds, fixed at start-up (core/allocator.py); 0 (off) leaves glibc's own.
    malloc_threshold: int = Field(MALLOC_THRESHOLD, ge=0, le=MAX_MALLOC_THRESHOLD)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, ConfigFileSource(settings_cls)

    @field_validator("log_level", "log_format", "network_mode", "runtime", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("metrics_retention", "node_retention", mode="before")
    @classmethod
    def _duration(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            match = _DURATION.match(value.strip().lower())
            if match:
                seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
                # Checked here, not by the field's bound, so the error shows "30s" as written.
                if seconds < _MIN_DURATIONS[info.field_name or ""]:
                    raise ValueError("duration too short")
                return seconds
        return value

    @field_validator("malloc_threshold", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in ("off", "none", "false"):
                return 0
            match = _SIZE.match(text)
            if match:
                size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
                if size > MAX_MALLOC_THRESHOLD:  # here, so the error shows "64m" as written
                    raise ValueError("malloc threshold too large")
                return size
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, host: str) -> str:
        host = host.strip().strip("[]")
        if not host or any(ch.isspace() or ch == "/" for ch in host):
            raise ValueError("bad host")
        return host

    @field_validator("lb_listen")
    @classmethod
    def _lb_listen(cls, value: str) -> str:
        split_host_port(value)
        return value.strip()

    @field_validator("domain")
    @classmethod
    def _domain(cls, domain: str | None) -> str | None:
        if domain is None:
            return None
        domain = domain.strip().lower().rstrip(".")
        if not _DOMAIN.match(domain):
            raise ValueError("bad domain")
        return domain

    @field_validator("state_dir", "nginx_conf_dir")
    @classmethod
    def _absolute_path(cls, path: Path | None) -> Path | None:
        return path.expanduser().absolute() if path is not None else None

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, node_id: str) -> str:
        if not node_id or len(node_id) > 253 or any(ch.isspace() for ch in node_id):
            raise ValueError("bad node id")
        return node_id

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, url: str) -> str:
        url = url.strip()
        if url.startswith("postgres://"):  # Heroku-style spelling; SQLAlchemy only knows postgresql://
            url = "postgresql://" + url[len("postgres://") :]
        scheme, separator, _ = url.partition("://")
        if url and (not separator or scheme not in DATABASE_SCHEMES):
            raise ValueError("bad database url")
        return url

    @model_validator(mode="after")
    def _node_retention_outlasts_the_lease(self) -> Settings:
        # A live node beats every TTL/3 and counts as down only after a TTL of silence: a shorter
        # retention would delete the rows of live nodes that are merely slow.
        if self.node_retention <= self.lease_ttl:
            raise ValueError(
                f"ORCHESTRY_NODE_RETENTION ({self.node_retention:g} s) must be longer than the lease TTL "
                f"(LEADER_LEASE_TTL, {self.lease_ttl} s): raise the retention or lower the TTL"
            )
        return self

    @model_validator(mode="after")
    def _database_in_state_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.state_dir / 'orchestry.db'}"
        return self

    @property
    def lb_host(self) -> str:
        return split_host_port(self.lb_listen)[0]

    @property
    def lb_port(self) -> int:
        return split_host_port(self.lb_listen)[1]

    @property
    def api_url(self) -> str:
        """Where this node's API is reached (a wildcard listen address is reached on loopback)."""
        host = _WILDCARD_HOSTS.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """Whether the API listens on loopback only (otherwise it requires an API token)."""
        if self.host.lower() == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def public_dict(self) -> dict[str, Any]:
        """Every setting as plain JSON values, with secrets (and database passwords) shown as ``***``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        shown["database_url"] = redact_url(self.database_url)
        if self.docker_url:
            shown["docker_url"] = redact_url(self.docker_url)
        return shown


# --------------------------------------------------------------------------------------------------
# loading


def load_settings(
    *,
    config_file: Path | str | None = None,
    env_file: Path | str | None = ".env",
    flags: bool = False,
    **overrides: Any,
) -> Settings:
    """Settings from every source; ``overrides`` (command-line flags) win over all of them.

    Raises ``SettingsError`` with one line naming the offending variable and what it accepts, or with
    ``flags`` the command-line flag an override came from (``--port '0'``: the user typed no variable)."""
    path = Path(config_file).expanduser() if config_file is not None else config_file_path()
    file_values = read_settings_file(path) if path is not None else {}
    unknown = [key for key in overrides if key not in Settings.model_fields]
    if unknown:
        raise SettingsError(f"{unknown[0]!r} is not a setting: use one of {', '.join(Settings.model_fields)}")
    token = _config_file_values.set(file_values)
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = [_describe(error, overrides, path, file_values, flags) for error in exc.errors()]
        raise SettingsError("; ".join(dict.fromkeys(lines))) from None
    finally:
        _config_file_values.reset(token)


def environment_names(field_name: str) -> list[str]:
    """The environment variables that set a field, the documented one first."""
    info = Settings.model_fields[field_name]
    if isinstance(info.validation_alias, AliasChoices):
        return [str(choice) for choice in info.validation_alias.choices]
    return [f"{ENV_PREFIX}{field_name.upper()}"]


def _field_for(key: object) -> str | None:
    if not isinstance(key, str):
        return None
    if key in Settings.model_fields:
        return key
    for name in Settings.model_fields:
        if key.upper() in environment_names(name):
            return name
    return None


def _describe(
    error: Any, overrides: dict[str, Any], path: Path | None, file_values: dict[str, Any], flags: bool = False
) -> str:
    field = _field_for(error["loc"][0]) if error["loc"] else None
    if field is None:
        reason = error.get("ctx", {}).get("error")  # a check across settings says which ones itself
        return str(reason) if reason is not None else f"settings are not valid: {error['msg']}"
    names = environment_names(field)
    source = next((name for name in names if name in os.environ), None)
    if flags and field in overrides:  # a command-line flag: named as typed, not the variable behind it
        source = f"--{field.replace('_', '-')}"
    elif field not in overrides and source is None and field in file_values and path is not None:
        source = f"{field} in {path}"
    source = source or names[0]
    value = error.get("input")
    if field in ("api_token", "secret_key"):
        return f"{source} is not valid: expected {ACCEPTS[field]}"
    if field in ("database_url", "docker_url") and isinstance(value, str):
        value = redact_url(value)
    shown = value if isinstance(value, str) else str(value)
    written = f"{source} {shown!r}" if source.startswith("--") else f"{source}={shown!r}"
    return f"{written} is not valid: expected {ACCEPTS[field]}"

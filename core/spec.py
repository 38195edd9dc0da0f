"""The app spec (API.md "App spec"): parse YAML or JSON, validate every rule, fill defaults, hash.

``parse_app_spec`` is the only door in for an app spec (its text enters through ``core.documents``, the
guarded reader every document goes through), and the only error it raises is ``SpecError`` whose message
names each offending field by its dotted path in the document and says how to fix it.  Models are
strict (no silent "5" → 5 coercion) and refuse unknown keys: a typo must never be silently ignored.

Two hashes: ``spec_hash`` changes with anything in the document; ``container_hash`` only with the
``spec`` block, so a scaling-policy or health-check change does not replace running containers.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self, TypeVar, Union

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from core.documents import read_document
from core.errors import SpecError
from core.units import format_cpu, format_memory, parse_cpu, parse_memory

DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?\Z")
HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?\Z")
# Docker's reference grammar (distribution/reference): Docker refuses anything else at create, so an app
# registered with it could never start.  The registry part may hold capitals and a port; the name may not.
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_DOMAIN_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_IMAGE_DOMAIN = rf"{_IMAGE_DOMAIN_PART}(?:\.{_IMAGE_DOMAIN_PART})*(?::[0-9]+)?"
IMAGE_REFERENCE = re.compile(
    rf"^(?:(?:{_IMAGE_DOMAIN}|\[[0-9A-Fa-f:]+\](?::[0-9]+)?)/)?{_IMAGE_PATH}(?:/{_IMAGE_PATH})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?\Z"
)
SENSITIVE_NAME_PARTS = ("PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL")
REDACTED = "***"

Loc = tuple[str | int, ...]
_M = TypeVar("_M", bound=BaseModel)


class _Problems(ValueError):
    """Rule violations found by a validator, each as (path relative to the validated object, text).

    The text follows the path in the final message, e.g. ``(85) must be below …``.
    """

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__("; ".join(text for _, text in problems))
        self.problems = problems


def _problem(text: str, loc: Loc = ()) -> _Problems:
    return _Problems([(loc, text)])


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class _SpecModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        strict=True,
        frozen=True,
        allow_inf_nan=False,
    )

    # Keys accepted in documents that a pre-parse step moves elsewhere (offered as suggestions).
    _extra_known_keys: typing.ClassVar[tuple[str, ...]] = ()

    def to_document(self) -> dict[str, Any]:
        """Canonical camelCase form with defaults filled; ``None`` values are left out."""
        return _canonical(self.model_dump(by_alias=True, exclude_none=True))


def _canonical(value: Any) -> Any:
    """Whole floats become ints so ``5`` and ``5.0`` give the same document and hash."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --------------------------------------------------------------------------------------------------
# metadata


class Metadata(_SpecModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _valid_app_name(cls, name: str) -> str:
        if not DNS_LABEL.match(name):
            raise _problem(
                f"{_show(name)} is not a valid app name: use lowercase letters, digits and '-' "
                "(a DNS label, max 63)"
            )
        return name

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        problems: list[tuple[Loc, str]] = []
        for key, value in labels.items():
            if not LABEL_KEY.match(key):
                problems.append(
                    ((key,), "is not a valid label key: use letters, digits, '-', '_' and '.', max 63")
                )
            elif len(value) > 253 or "\n" in value:
                problems.append(((key,), "has a value that is too long or spans lines: keep it on one line"))
        if problems:
            raise _Problems(problems)
        return labels


# --------------------------------------------------------------------------------------------------
# the container ("spec" block)


class PortSpec(_SpecModel):
    container_port: int = Field(alias="containerPort", ge=1, le=65535)
    name: str | None = None
    protocol: Literal["TCP"] = "TCP"

    @field_validator("name")
    @classmethod
    def _valid_port_name(cls, name: str | None) -> str | None:
        if name is not None and not PORT_NAME.match(name):
            raise _problem(
                f"{_show(name)} is not a valid port name: use lowercase letters, digits and '-', max 15"
            )
        return name


class Resources(_SpecModel):
    """CPU and memory limits.  In documents ``cpu``/``memory`` are quantities ("500m", "256Mi");
    the Python names ``cpu_millis``/``memory_bytes`` take plain numbers."""

    cpu_millis: int | None = Field(None, alias="cpu")
    memory_bytes: int | None = Field(None, alias="memory")

    @model_validator(mode="before")
    @classmethod
    def _parse_quantities(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        parsed = dict(data)
        problems: list[tuple[Loc, str]] = []
        parsers: tuple[tuple[str, Callable[[object], int]], ...] = (
            ("cpu", parse_cpu),
            ("memory", parse_memory),
        )
        for key, parse in parsers:
            if parsed.get(key) is not None:
                try:
                    parsed[key] = parse(parsed[key])
                except ValueError as exc:
                    problems.append(((key,), str(exc)))
        if problems:
            raise _Problems(problems)
        return parsed

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.cpu_millis is not None:
            document["cpu"] = format_cpu(self.cpu_millis)
        if self.memory_bytes is not None:
            document["memory"] = format_memory(self.memory_bytes)
        return document


# Swarm's placement syntax (docker service create --constraint / --placement-pref), checked here so a
# typo is refused at register instead of leaving every task pending on the Swarm.
_CONSTRAINT = re.compile(
    r"^\s*(?P<attr>node\.(?:id|hostname|role|platform\.os|platform\.arch)|(?:node|engine)\.labels\.[^\s=!]+)"
    r"\s*(?P<op>==|!=)\s*(?P<value>\S(?:.*\S)?)\s*\Z"
)
_SPREAD = re.compile(r"^(?:node|engine)\.labels\.[^\s=!]+\Z")
CONSTRAINT_HELP = (
    "write ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE with ATTRIBUTE one of node.id, node.hostname, node.role, "
    "node.platform.os, node.platform.arch, node.labels.KEY, engine.labels.KEY (Swarm's --constraint syntax)"
)


class SpreadPreference(_SpecModel):
    """``{spread: node.labels.zone}``: Swarm spreads the app's tasks evenly over that label's values."""

    spread: str

    @field_validator("spread")
    @classmethod
    def _spread_descriptor(cls, spread: str) -> str:
        if not _SPREAD.match(spread.strip()):
            raise _problem(
                f"{_show(spread)} is not a spread descriptor: use node.labels.KEY or engine.labels.KEY "
                "(Swarm's --placement-pref spread=... syntax)"
            )
        return spread.strip()


class Placement(_SpecModel):
    """Where Swarm may run the app's tasks (only the Swarm runtime can apply it)."""

    constraints: list[str] = Field(default_factory=list)
    preferences: list[SpreadPreference] = Field(default_factory=list)

    @field_validator("constraints")
    @classmethod
    def _swarm_constraints(cls, constraints: list[str]) -> list[str]:
        problems: list[tuple[Loc, str]] = []
        cleaned: list[str] = []
        for index, constraint in enumerate(constraints):
            match = _CONSTRAINT.match(constraint)
            if match is None:
                problems.append(
                    ((index,), f"{_show(constraint)} is not a Swarm constraint: {CONSTRAINT_HELP}")
                )
                continue
            attr, op, value = match.group("attr", "op", "value")
            if attr == "node.role" and value not in ("manager", "worker"):
                problems.append(
                    (
                        (index,),
                        f"{_show(constraint)} compares node.role with {value!r}: use manager or worker",
                    )
                )
                continue
            cleaned.append(f"{attr}{op}{value}")
        if problems:
            raise _Problems(problems)
        return cleaned

    @property
    def empty(self) -> bool:
        return not self.constraints and not self.preferences


class EnvVar(_SpecModel):
    """One environment variable: a literal ``value``, or ``source: secret`` with ``key`` and ``field``."""

    name: str
    value: str | None = None
    source: Literal["value", "secret"] = "value"
    key: str | None = None
    field: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalar_values_as_text(cls, data: Any) -> Any:
        # YAML turns `value: 8080` or `value: yes` into numbers and booleans; environment values
        # are always text, so take the scalar's text instead of rejecting a natural spelling.
        if isinstance(data, dict) and "value" in data:
            value = data["value"]
            if isinstance(value, bool):
                return {**data, "value": "true" if value else "false"}
            if isinstance(value, int | float):
                return {**data, "value": str(value)}
        return data

    @model_validator(mode="after")
    def _value_or_secret(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if "=" in self.name:
            # NAME=value written as the name (compose's form): showing it would show the value.
            problems.append(
                (("name",), "holds '=': write the variable's name under name and its text under value")
            )
        elif not ENV_VAR_NAME.match(self.name):
            problems.append(
                (
                    ("name",),
                    f"{_show(self.name)} is not a valid environment variable name: use letters, digits and "
                    "'_', not starting with a digit",
                )
            )
        if self.source == "value":
            if self.value is None:
                problems.append(
                    (("value",), "is missing: add value: <text>, or use source: secret with key and field")
                )
            if self.key is not None or self.field is not None:
                problems.append(
                    (
                        ("source",),
                        "must be secret when key or field is given: add source: secret or remove them",
                    )
                )
        else:
            if self.value is not None:
                problems.append((("value",), "cannot be combined with source: secret: remove value"))
            if not (self.key or "").strip():
                problems.append((("key",), "is missing: name the secret, e.g. key: db-credentials"))
            if not (self.field or "").strip():
                problems.append((("field",), "is missing: name the secret's field, e.g. field: password"))
        if problems:
            raise _Problems(problems)
        return self


class ContainerSpec(_SpecModel):
    type: Literal["http", "worker"] = "http"
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    ports: list[PortSpec] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    # None (not an empty Placement) when absent, so specs without it keep their container hash.
    placement: Placement | None = None
    environment: list[EnvVar] = Field(
        default_factory=list,
        validation_alias=AliasChoices("environment", "env"),
        serialization_alias="environment",
    )
    load_balancing: Literal["least_conn", "ip_hash", "round_robin"] = Field(
        "least_conn", alias="loadBalancing"
    )
    termination_grace_period_seconds: int = Field(30, alias="terminationGracePeriodSeconds", ge=0, le=3600)

    _extra_known_keys: typing.ClassVar[tuple[str, ...]] = ("healthCheck",)

    @model_validator(mode="before")
    @classmethod
    def _environment_forms(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        if "environment" in data and "env" in data:
            raise _problem("repeats environment (env is an alias of it): keep one of them", ("env",))
        key = "env" if "env" in data else "environment"
        value = data.get(key)
        if isinstance(value, dict):
            # Convenience form {NAME: value} or {NAME: {source: secret, key: …, field: …}}.
            entries = [
                {"name": name, **item} if isinstance(item, dict) else {"name": name, "value": item}
                for name, item in value.items()
            ]
            return {**data, key: entries}
        return data

    @field_validator("image")
    @classmethod
    def _image_named(cls, image: str) -> str:
        if not image.strip():
            raise _problem("is empty: name the image to run, e.g. image: orchestry/demo:latest")
        if any(ch.isspace() for ch in image):
            raise _problem(f"{_show(image)} contains spaces: write the image reference without spaces")
        if not IMAGE_REFERENCE.match(image) or len(_repository(image)) > 255:
            raise _problem(
                f"{_show(image)} is not a Docker image reference: write [registry/]name[:tag][@digest] with "
                "a lowercase name, e.g. orchestry/demo:latest"
            )
        return image

    @field_validator("ports")
    @classmethod
    def _ports_unique(cls, ports: list[PortSpec]) -> list[PortSpec]:
        problems: list[tuple[Loc, str]] = []
        seen_ports: dict[int, int] = {}
        seen_names: dict[str, int] = {}
        for index, port in enumerate(ports):
            if port.container_port in seen_ports:
                first = seen_ports[port.container_port]
                problems.append(
                    (
                        (index, "containerPort"),
                        f"({port.container_port}) repeats ports[{first}]: list each port once",
                    )
                )
            seen_ports.setdefault(port.container_port, index)
            if port.name is not None:
                if port.name in seen_names:
                    first = seen_names[port.name]
                    problems.append(
                        (
                            (index, "name"),
                            f"{port.name!r} repeats ports[{first}]: give each port its own name",
                        )
                    )
                seen_names.setdefault(port.name, index)
        if problems:
            raise _Problems(problems)
        return ports

    @field_validator("environment")
    @classmethod
    def _names_unique(cls, environment: list[EnvVar]) -> list[EnvVar]:
        problems: list[tuple[Loc, str]] = []
        seen: dict[str, int] = {}
        for index, variable in enumerate(environment):
            if variable.name in seen:
                problems.append(
                    (
                        (index, "name"),
                        f"{variable.name!r} repeats entry [{seen[variable.name]}]: set each variable once",
                    )
                )
            seen.setdefault(variable.name, index)
        if problems:
            raise _Problems(problems)
        return environment

    def to_document(self) -> dict[str, Any]:
        document = super().to_document()
        document["resources"] = self.resources.to_document()
        return document


def _repository(image: str) -> str:
    """The image's name without its tag and digest (Docker allows 255 characters)."""
    name = image.split("@", 1)[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name


# --------------------------------------------------------------------------------------------------
# health check


class HealthHeader(_SpecModel):
    name: str
    value: str

    @field_validator("name")
    @classmethod
    def _valid_header_name(cls, name: str) -> str:
        if ":" in name:
            # "Authorization: Bearer ..." written as the name: showing it would show the credential.
            raise _problem("holds ':': write the header's name under name and the rest under value")
        if not HTTP_TOKEN.match(name):
            raise _problem(f"{_show(name)} is not a valid HTTP header name: use letters, digits and '-'")
        return name

    @field_validator("value")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value:
            raise _problem("spans lines: an HTTP header value must be on one line")
        return value


class HealthCheck(_SpecModel):
    """Active HTTP probe of each replica; ``port`` None means the app's first container port."""

    path: str = "/health"
    port: int | None = Field(None, ge=1, le=65535)
    initial_delay_seconds: float = Field(0.0, alias="initialDelaySeconds", ge=0, le=3600)
    period_seconds: float = Field(10.0, alias="periodSeconds", gt=0, le=3600)
    timeout_seconds: float = Field(2.0, alias="timeoutSeconds", gt=0, le=3600)
    failure_threshold: int = Field(3, alias="failureThreshold", ge=1, le=100)
    success_threshold: int = Field(1, alias="successThreshold", ge=1, le=100)
    headers: list[HealthHeader] = Field(default_factory=list)

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise _problem(f"{_show(path)} must start with '/': use e.g. /health")
        if any(ch.isspace() or ord(ch) < 32 for ch in path):
            raise _problem(f"{_show(path)} contains spaces or control characters: percent-encode them")
        return path


# --------------------------------------------------------------------------------------------------
# scaling policy


class ScalingPolicy(_SpecModel):
    """When and how far to scale; camelCase aliases are the document keys of API.md."""

    mode: Literal["auto", "manual"] = "auto"
    min_replicas: int = Field(1, alias="minReplicas", ge=0, le=100)
    max_replicas: int = Field(5, alias="maxReplicas", ge=1, le=100)
    target_rps_per_replica: float = Field(50.0, alias="targetRPSPerReplica", gt=0)
    max_p95_latency_ms: float = Field(250.0, alias="maxP95LatencyMs", gt=0)
    max_conn_per_replica: float = Field(80.0, alias="maxConnPerReplica", gt=0)
    max_cpu_percent: float = Field(70.0, alias="maxCPUPercent", gt=0, le=100)
    max_memory_percent: float = Field(75.0, alias="maxMemoryPercent", gt=0, le=100)
    scale_out_threshold_pct: float = Field(80.0, alias="scaleOutThresholdPct", gt=0, le=100)
    scale_in_threshold_pct: float = Field(30.0, alias="scaleInThresholdPct", gt=0, le=100)
    window_seconds: int = Field(60, alias="windowSeconds", ge=5, le=3600)
    cooldown_seconds: int = Field(180, alias="cooldownSeconds", ge=0, le=86400)
    # None = Kubernetes' default step: at most max(4, current) replicas added at once.
    max_scale_out_step: int | None = Field(None, alias="maxScaleOutStep", ge=1, le=100)
    scale_in_step: int = Field(1, alias="scaleInStep", ge=1, le=100)
    # Containers kept created but not started, so a scale-out only starts them (AWS Auto Scaling's warm
    # pools).  None (left out of the document, so existing apps keep their exact spec) means 0.
    warm_pool: int | None = Field(None, alias="warmPool", ge=0, le=100)

    @property
    def warm_pool_size(self) -> int:
        return self.warm_pool or 0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[tuple[Loc, str]] = []
        if self.min_replicas > self.max_replicas:
            problems.append(
                (
                    ("minReplicas",),
                    f"({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas}): "
                    "lower minReplicas or raise maxReplicas",
                )
            )
        if self.scale_in_threshold_pct >= self.scale_out_threshold_pct:
            problems.append(
                (
                    ("scaleInThresholdPct",),
                    f"({_number(self.scale_in_threshold_pct)}) must be below scaleOutThresholdPct "
                    f"({_number(self.scale_out_threshold_pct)}): lower scaleInThresholdPct or raise "
                    "scaleOutThresholdPct",
                )
            )
        if problems:
            raise _Problems(problems)
        return self


# --------------------------------------------------------------------------------------------------
# the whole document


class AppSpec(_SpecModel):
    """A validated app document.  Build one with ``parse_app_spec``."""

    api_version: Literal["v1"] = Field("v1", alias="apiVersion")
    kind: Literal["App"] = "App"
    metadata: Metadata
    container: ContainerSpec = Field(alias="spec")
    scaling: ScalingPolicy = Field(default_factory=ScalingPolicy)
    health_check: HealthCheck | None = Field(None, alias="healthCheck")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    @property
    def health_check_port(self) -> int | None:
        """The container port probed: the health check's own, else the first declared port."""
        if self.health_check is not None and self.health_check.port is not None:
            return self.health_check.port
        return self.container.ports[0].container_port if self.container.ports else None

    @model_validator(mode="after")
    def _health_port_declared(self) -> Self:
        check, ports = self.health_check, [p.container_port for p in self.container.ports]
        if check is not None and check.port is not None and ports and check.port not in ports:
            declared = ", ".join(str(p) for p in ports)
            raise _problem(
                f"({check.port}) is not a containerPort of spec.ports ({declared}): "
                "use one of them or remove port",
                ("healthCheck", "port"),
            )
        return self

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"name": self.name, "labels": dict(self.labels)},
            "spec": self.container.to_document(),
            "scaling": self.scaling.to_document(),
        }
        if self.health_check is not None:
            document["healthCheck"] = self.health_check.to_document()
        return document

    def spec_hash(self) -> str:
        """Changes whenever anything in the canonical document changes."""
        return _hash(self.to_document())

    def container_hash(self) -> str:
        """Changes only when the ``spec`` block changes, i.e. when containers must be replaced."""
        return _hash(self.to_document()["spec"])

    def redacted_document(self) -> dict[str, Any]:
        return redact_document(self.to_document())


def _hash(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# parsing and error translation


def parse_app_spec(source: str | bytes | dict[str, Any]) -> AppSpec:
    """Parse and validate an app document given as YAML/JSON text or an already-decoded mapping."""
    data = _decode(source)
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {_type_name(data)}"
        raise SpecError(
            f"the app spec must be a mapping with apiVersion, kind, metadata and spec, not {kind}: "
            "start from examples/web.yml",
            field=None,
        )
    _reject_odd_keys(data)
    data, hoisted = _hoist_health_check(data)

    def relocate(loc: Loc) -> Loc:
        # A health check written under `spec` is reported where the user wrote it.
        if hoisted and loc[:1] == ("healthCheck",):
            return ("spec", *loc)
        return loc

    return _validate(AppSpec, data, relocate=relocate)


def refuse_redacted_values(spec: AppSpec) -> None:
    """Refuse a submitted spec holding "***" where `orchestry spec` and the API show a sensitive value.

    Applied back (spec > file, edit, apply), it would replace the real value with "***" in every new
    replica (and every probe's header) without a word.  Only for documents coming in (register, the dry
    run): a stored spec is parsed again by the reconciler and must keep parsing whatever it holds."""
    problems: list[tuple[str, str]] = []
    for index, env in enumerate(spec.container.environment):
        if env.source == "value" and env.value == REDACTED and _is_sensitive(env.name):
            problems.append(
                (
                    f"spec.environment[{index}].value",
                    f"of {env.name} is {REDACTED!r}, which `orchestry spec` shows in place of the value: "
                    "write the real value, or keep it in a secret (source: secret, key, field)",
                )
            )
    check = spec.health_check
    for index, header in enumerate(check.headers if check is not None else []):
        if header.value == REDACTED and _is_sensitive(header.name, ("AUTH",)):
            problems.append(
                (
                    f"healthCheck.headers[{index}].value",
                    f"of {header.name} is {REDACTED!r}, which `orchestry spec` shows in place of the value: "
                    "write the real value",
                )
            )
    if problems:
        messages = [f"{path} {text}" for path, text in problems]
        raise SpecError("; ".join(messages), field=problems[0][0], errors=messages)


def validate_policy_update(policy: ScalingPolicy, changes: dict[str, Any]) -> ScalingPolicy:
    """``policy`` with ``changes`` (camelCase or snake_case keys) applied, checked by the same rules."""
    if not isinstance(changes, dict):
        raise SpecError(
            f"a scaling change must be a mapping of scaling keys to values, not a {_type_name(changes)}: "
            'send e.g. {"maxReplicas": 8}',
            field="scaling",
        )
    alias_of = {name: info.alias or name for name, info in ScalingPolicy.model_fields.items()}
    aliases = set(alias_of.values())
    merged = policy.to_document()
    problems: list[str] = []
    first_field: str | None = None
    for key, value in changes.items():
        alias = key if key in aliases else alias_of.get(key) if isinstance(key, str) else None
        if alias is None:
            path = f"scaling.{key}"
            problems.append(f"{path} is not a known key: {_spelling_fix(str(key), sorted(aliases))}")
            first_field = first_field or path
            continue
        merged[alias] = value
    if problems:
        raise SpecError("; ".join(problems), field=first_field, errors=problems)
    return _validate(ScalingPolicy, merged, relocate=lambda loc: ("scaling", *loc))


def redact_document(document: dict[str, Any]) -> dict[str, Any]:
    """A deep copy safe to show: secret env entries keep only their reference, and literal values of
    variables (or health-check headers) with sensitive names become ``***``.  Tolerates any shape."""
    redacted = copy.deepcopy(document)
    if not isinstance(redacted, dict):
        return redacted
    spec = redacted.get("spec")
    if isinstance(spec, dict):
        for key in ("environment", "env"):
            if key in spec:
                spec[key] = _redact_environment(spec[key])
        if isinstance(spec.get("healthCheck"), dict):
            _redact_headers(spec["healthCheck"])
    if isinstance(redacted.get("healthCheck"), dict):
        _redact_headers(redacted["healthCheck"])
    return redacted


def _is_sensitive(name: object, extra_words: tuple[str, ...] = ()) -> bool:
    upper = str(name).upper()
    return any(word in upper for word in SENSITIVE_NAME_PARTS + extra_words)


def _redact_environment(environment: Any) -> Any:
    if isinstance(environment, dict):  # the {NAME: value} convenience form
        redacted: dict[Any, Any] = {}
        for name, value in environment.items():
            if isinstance(value, dict):
                entry = _redact_env_entry({**value, "name": name})
                redacted[name] = {
                    key: item for key, item in entry.items() if key != "name" or "name" in value
                }
            else:
                redacted[name] = REDACTED if _is_sensitive(name) and value is not None else value
        return redacted
    if isinstance(environment, list):
        return [_redact_env_entry(entry) if isinstance(entry, dict) else entry for entry in environment]
    return environment


def _redact_env_entry(entry: dict[str, Any]) -> dict[str, Any]:
    if entry.get("source") == "secret":
        return {key: entry[key] for key in ("name", "source", "key", "field") if key in entry}
    if "value" in entry and entry["value"] is not None and _is_sensitive(entry.get("name", "")):
        return {**entry, "value": REDACTED}
    return entry


def _redact_headers(check: dict[str, Any]) -> None:
    headers = check.get("headers")
    if isinstance(headers, list):
        check["headers"] = [
            {**header, "value": REDACTED}
            if isinstance(header, dict)
            and "value" in header
            and _is_sensitive(header.get("name", ""), ("AUTH",))
            else header
            for header in headers
        ]


def _decode(source: str | bytes | dict[str, Any]) -> Any:
    if isinstance(source, dict):
        return source
    if not isinstance(source, str | bytes | bytearray):
        raise SpecError(
            f"the app spec must be YAML or JSON text or a mapping, not a {_type_name(source)}: "
            "pass the file's text"
        )
    return read_document(source, "the app spec")


def _reject_odd_keys(data: dict[str, Any]) -> None:
    """Non-text keys (YAML reads `on:`/`yes:` as booleans, `1:` as a number) cannot match any field, and
    no text may hold a NUL: no process argument, environment value, header or file name can carry one,
    so such a spec would register and then never start.

    Iterative and alias-aware: YAML anchors may share or nest objects arbitrarily deep."""
    problems: list[tuple[Loc, str]] = []
    seen: set[int] = set()
    stack: list[tuple[Loc, Any]] = [((), data)]
    while stack:
        loc, node = stack.pop()
        if id(node) in seen:
            continue
        if isinstance(node, dict):
            seen.add(id(node))
            for key, value in node.items():
                if not isinstance(key, str):
                    problems.append(
                        (
                            loc,
                            f"has the key {_show(key)}, which is not text: quote it "
                            "(YAML reads yes/no/on/off as booleans)",
                        )
                    )
                else:
                    stack.append(((*loc, key), value))
        elif isinstance(node, list):
            seen.add(id(node))
            stack.extend(((*loc, index), item) for index, item in enumerate(node))
        elif isinstance(node, str) and "\x00" in node:
            problems.append(
                (loc, "holds a NUL character (\\0), which no container or probe can carry: remove it")
            )
    if problems:
        messages = [f"{_path(loc) or 'the document'} {text}" for loc, text in problems]
        raise SpecError("; ".join(messages), field=_path(problems[0][0]) or None, errors=messages)


def _hoist_health_check(data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    spec = data.get("spec")
    if not isinstance(spec, dict) or "healthCheck" not in spec:
        return data, False
    if "healthCheck" in data:
        message = "spec.healthCheck repeats the top-level healthCheck: keep only one of them"
        raise SpecError(message, field="spec.healthCheck")
    spec = {key: value for key, value in spec.items() if key != "healthCheck"}
    return {**data, "spec": spec, "healthCheck": data["spec"]["healthCheck"]}, True


def _validate(model: type[_M], data: Any, relocate: Callable[[Loc], Loc]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for error in exc.errors():
            problems.extend(_describe(model, error, relocate))
        messages = [message for _, message in problems]
        raise SpecError("; ".join(messages), field=problems[0][0], errors=messages) from None
    except RecursionError:
        raise SpecError("the app spec nests too deeply (or refers to itself): flatten it") from None


def _describe(model: type[BaseModel], error: Any, relocate: Callable[[Loc], Loc]) -> list[tuple[str, str]]:
    loc: Loc = tuple(error["loc"])
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), _Problems):
        found = []
        for relative, text in ctx["error"].problems:
            path = _path(relocate((*loc, *relative)))
            found.append((path, f"{path} {text}"))
        return found
    path = _path(relocate(loc))
    shown = "" if _may_hold_a_secret(loc) else f" ({_show(error.get('input'))})"
    if kind == "missing":
        return [(path, f"{path} is missing: {_MISSING_HINTS.get(loc, 'add it')}")]
    if kind == "extra_forbidden":
        return [(path, f"{path} {_unknown_key_text(model, loc)}")]
    if kind in _TYPE_NAMES:
        fix = _TYPE_NAMES[kind]
        if kind in ("int_type", "float_type") and isinstance(error.get("input"), str):
            fix += ": write the number without quotes"
        return [(path, f"{path}{shown} must be {fix}")]
    if kind == "literal_error":
        return [(path, f"{path}{shown} is not one of {ctx.get('expected')}: use one of them")]
    if kind in _BOUND_WORDS:
        word, key = _BOUND_WORDS[kind]
        return [(path, f"{path}{shown} must be {word} {_number(ctx.get(key))}")]
    if kind == "finite_number":
        return [(path, f"{path} must be a finite number: replace the infinity or NaN")]
    if kind == "recursion_loop":
        return [(path, f"{path} refers to itself (a YAML alias loop): write the value out")]
    if kind == "value_error":
        return [(path, f"{path} {ctx.get('error')}")]
    return [(path, f"{path} is not valid: {error['msg']}")]


_MISSING_HINTS: dict[Loc, str] = {
    ("metadata",): "add metadata: {name: <app name>}",
    ("metadata", "name"): "add the app name, e.g. name: web",
    ("spec",): "add a spec block with at least image",
    ("spec", "image"): "add the image to run, e.g. image: orchestry/demo:latest",
}

_TYPE_NAMES: dict[str, str] = {
    "string_type": "text",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list: write it as [item, ...]",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}

_BOUND_WORDS: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _unknown_key_text(root: type[BaseModel], loc: Loc) -> str:
    owner = _model_at(root, loc[:-1])
    key = str(loc[-1])
    if owner is None:
        return "is not a known key: remove it"
    aliases = _document_keys(owner)
    duplicate_of = _alias_for_name(owner, key)
    if duplicate_of is not None:
        return f"repeats {duplicate_of} (its Python spelling): keep one of them"
    return f"is not a known key: {_spelling_fix(key, aliases)}"


def _spelling_fix(key: str, known: list[str]) -> str:
    by_lower = {name.lower(): name for name in known}
    match = by_lower.get(key.lower().replace("_", ""))
    if match is None:
        close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
        match = by_lower[close[0]] if close else None
    if match is not None:
        return f"remove it or fix the spelling (did you mean {match!r}?)"
    return f"remove it or fix the spelling (known keys: {', '.join(known)})"


def _document_keys(model: type[BaseModel]) -> list[str]:
    keys: list[str] = []
    for name, info in model.model_fields.items():
        choices = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else []
        keys.extend(str(choice) for choice in choices)
        if not choices:
            keys.append(info.alias or name)
    keys.extend(getattr(model, "_extra_known_keys", ()))
    return list(dict.fromkeys(keys))


def _alias_for_name(model: type[BaseModel], key: str) -> str | None:
    info = model.model_fields.get(key)
    if info is not None and info.alias and info.alias != key:
        return info.alias
    return None


def _field_named(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        choices = info.validation_alias.choices if isinstance(info.validation_alias, AliasChoices) else []
        if key in (name, info.alias, *choices):
            return info
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class validating the object at ``loc`` (list indexes skipped)."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = _field_named(current, part)
        if info is None:
            return None
        current = _item_type(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _item_type(annotation: Any) -> Any:
    """Strip Optional/Annotated/list wrappers to the model type inside."""
    while True:
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
            members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            annotation = members[0] if len(members) == 1 else None
        elif origin in (list, Annotated):
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def _path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _may_hold_a_secret(loc: Loc) -> bool:
    """Input at ``loc`` is not shown back: a value, or a variable or header entry written as one text
    ("DB_PASSWORD=...", "Authorization: Bearer ...") holds what redaction hides everywhere else."""
    if loc and loc[-1] == "value":
        return True
    return any(part in ("environment", "env", "headers") for part in loc) and loc[-1] != "name"


def _show(value: Any) -> str:
    if isinstance(value, dict | list):  # may be huge (YAML aliases) and is never a helpful echo
        return f"a {_type_name(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "text", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )

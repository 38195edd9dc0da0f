"""Hypothesis strategies for app documents that break exactly one rule, each with the field that breaks it.

Shared by the pure spec tests (tests/unit/test_spec_field_errors.py) and the API fuzz against a real
engine (tests/api/test_spec_fuzz.py), so both judge the same cases by the same oracle: the answer must
name ``Case.field`` (its dotted path as the user wrote the document), never echo a secret value, and
change nothing.

Every document carries two secret values (:data:`SECRET_VALUES`): a sensitive literal variable and an
``Authorization`` probe header.  Several cases mimic the mistakes that put such a value where the
validator shows input back (``DB_PASSWORD=...`` in compose's list form, a whole header on one line).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

SECRET_PASSWORD = "pw-sentinel-4f9c2e1b"
SECRET_BEARER = "Bearer tok-sentinel-8a7d3c55"
SECRET_VALUES = (SECRET_PASSWORD, SECRET_BEARER.split()[1])

# Words of pydantic's own messages: seeing one means an error type went untranslated (no fix given).
UNTRANSLATED = ("Input should", "is not valid:", "validation error", "pydantic", "Traceback")
MAX_MESSAGE_CHARS = 600  # one field's message; long input is cut when shown


def valid_document(name: str, health_under_spec: bool = False) -> dict[str, Any]:
    """Every field of API.md's spec set to a valid value (two of them secret)."""
    health = {
        "path": "/health",
        "port": 8080,
        "initialDelaySeconds": 5,
        "periodSeconds": 10,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
        "successThreshold": 1,
        "headers": [
            {"name": "X-Health-Check", "value": "orchestry"},
            {"name": "Authorization", "value": SECRET_BEARER},
        ],
    }
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "App",
        "metadata": {"name": name, "labels": {"team": "shop"}},
        "spec": {
            "type": "http",
            "image": "orchestry/demo:latest",
            "command": ["/bin/serve"],
            "args": ["--verbose"],
            "ports": [{"containerPort": 8080, "name": "api"}, {"containerPort": 9090, "protocol": "TCP"}],
            "resources": {"cpu": "500m", "memory": "256Mi"},
            "environment": [
                {"name": "LOG_LEVEL", "value": "info"},
                {"name": "DB_PASSWORD", "value": SECRET_PASSWORD},
                {"name": "API_TOKEN", "source": "secret", "key": "api-credentials", "field": "token"},
            ],
            "loadBalancing": "least_conn",
            "terminationGracePeriodSeconds": 5,
        },
        "scaling": {
            "mode": "manual",
            "minReplicas": 1,
            "maxReplicas": 5,
            "targetRPSPerReplica": 50,
            "maxP95LatencyMs": 250,
            "maxConnPerReplica": 80,
            "maxCPUPercent": 70,
            "maxMemoryPercent": 75,
            "scaleOutThresholdPct": 80,
            "scaleInThresholdPct": 30,
            "windowSeconds": 60,
            "cooldownSeconds": 180,
            "maxScaleOutStep": 4,
            "scaleInStep": 1,
            "warmPool": 0,
        },
    }
    if health_under_spec:
        document["spec"]["healthCheck"] = health
    else:
        document["healthCheck"] = health
    return document


@dataclass(frozen=True)
class Case:
    """A document breaking one rule; ``field`` is where the answer must point."""

    document: Any
    field: str
    what: str  # the rule broken, for the failure report

    def as_json(self) -> bytes:
        return json.dumps(self.document).encode()


# --- the fields ---------------------------------------------------------------------------------------

Path = tuple[str | int, ...]

# (path, kind, required).  Kinds: text, int, float, enum, list, mapping, quantity, envvalue.
FIELDS: list[tuple[Path, str, bool]] = [
    (("apiVersion",), "enum", False),
    (("kind",), "enum", False),
    (("metadata",), "mapping", True),
    (("metadata", "name"), "text", True),
    (("metadata", "labels"), "mapping", False),
    (("metadata", "labels", "team"), "text", True),
    (("spec",), "mapping", True),
    (("spec", "type"), "enum", False),
    (("spec", "image"), "text", True),
    (("spec", "command"), "list", False),
    (("spec", "command", 0), "text", True),
    (("spec", "args"), "list", False),
    (("spec", "args", 0), "text", True),
    (("spec", "ports"), "list", False),
    (("spec", "ports", 0), "mapping", True),
    (("spec", "ports", 0, "containerPort"), "int", True),
    (("spec", "ports", 0, "name"), "text", False),
    (("spec", "ports", 1, "protocol"), "enum", False),
    (("spec", "resources"), "mapping", False),
    (("spec", "resources", "cpu"), "quantity", False),
    (("spec", "resources", "memory"), "quantity", False),
    (("spec", "environment"), "list", False),
    (("spec", "environment", 0), "mapping", True),
    (("spec", "environment", 0, "name"), "text", True),
    (("spec", "environment", 1, "value"), "envvalue", True),
    (("spec", "environment", 2, "source"), "enum", False),
    (("spec", "environment", 2, "key"), "text", False),
    (("spec", "environment", 2, "field"), "text", False),
    (("spec", "loadBalancing"), "enum", False),
    (("spec", "terminationGracePeriodSeconds"), "int", False),
    (("scaling",), "mapping", False),
    (("scaling", "mode"), "enum", False),
    (("scaling", "minReplicas"), "int", False),
    (("scaling", "maxReplicas"), "int", False),
    (("scaling", "targetRPSPerReplica"), "float", False),
    (("scaling", "maxP95LatencyMs"), "float", False),
    (("scaling", "maxConnPerReplica"), "float", False),
    (("scaling", "maxCPUPercent"), "float", False),
    (("scaling", "maxMemoryPercent"), "float", False),
    (("scaling", "scaleOutThresholdPct"), "float", False),
    (("scaling", "scaleInThresholdPct"), "float", False),
    (("scaling", "windowSeconds"), "int", False),
    (("scaling", "cooldownSeconds"), "int", False),
    (("scaling", "maxScaleOutStep"), "int", False),
    (("scaling", "scaleInStep"), "int", False),
    (("scaling", "warmPool"), "int", False),
    (("healthCheck",), "mapping", False),
    (("healthCheck", "path"), "text", False),
    (("healthCheck", "port"), "int", False),
    (("healthCheck", "initialDelaySeconds"), "float", False),
    (("healthCheck", "periodSeconds"), "float", False),
    (("healthCheck", "timeoutSeconds"), "float", False),
    (("healthCheck", "failureThreshold"), "int", False),
    (("healthCheck", "successThreshold"), "int", False),
    (("healthCheck", "headers"), "list", False),
    (("healthCheck", "headers", 0), "mapping", True),
    (("healthCheck", "headers", 0, "name"), "text", True),
    (("healthCheck", "headers", 1, "value"), "envvalue", True),
]

# The valid range of each number (low, high, low inclusive, high inclusive); a value outside breaks it.
BOUNDS: dict[Path, tuple[float, float, bool]] = {
    ("spec", "ports", 0, "containerPort"): (1, 65535, True),
    ("spec", "terminationGracePeriodSeconds"): (0, 3600, True),
    ("scaling", "minReplicas"): (0, 100, True),
    ("scaling", "maxReplicas"): (1, 100, True),
    ("scaling", "maxCPUPercent"): (0, 100, False),
    ("scaling", "maxMemoryPercent"): (0, 100, False),
    ("scaling", "scaleOutThresholdPct"): (0, 100, False),
    ("scaling", "scaleInThresholdPct"): (0, 100, False),
    ("scaling", "windowSeconds"): (5, 3600, True),
    ("scaling", "cooldownSeconds"): (0, 86400, True),
    ("scaling", "maxScaleOutStep"): (1, 100, True),
    ("scaling", "scaleInStep"): (1, 100, True),
    ("scaling", "warmPool"): (0, 100, True),
    ("healthCheck", "port"): (1, 65535, True),
    ("healthCheck", "initialDelaySeconds"): (0, 3600, True),
    ("healthCheck", "periodSeconds"): (0, 3600, False),
    ("healthCheck", "timeoutSeconds"): (0, 3600, False),
    ("healthCheck", "failureThreshold"): (1, 100, True),
    ("healthCheck", "successThreshold"): (1, 100, True),
}
# Numbers with only a lower bound (greater than zero).
POSITIVE: set[Path] = {
    ("scaling", "targetRPSPerReplica"),
    ("scaling", "maxP95LatencyMs"),
    ("scaling", "maxConnPerReplica"),
}

# Keys each mapping knows (document spelling and Python spelling): an added key must be none of them.
KNOWN_KEYS: dict[Path, set[str]] = {
    (): {"apiVersion", "kind", "metadata", "spec", "scaling", "healthCheck", "api_version", "container",
         "health_check"},
    ("metadata",): {"name", "labels"},
    ("spec",): {"type", "image", "command", "args", "ports", "resources", "placement", "environment", "env",
                "loadBalancing", "terminationGracePeriodSeconds", "healthCheck", "load_balancing",
                "termination_grace_period_seconds"},
    ("spec", "ports", 0): {"containerPort", "name", "protocol", "container_port"},
    ("spec", "resources"): {"cpu", "memory", "cpu_millis", "memory_bytes"},
    ("spec", "environment", 0): {"name", "value", "source", "key", "field"},
    ("spec", "environment", 2): {"name", "value", "source", "key", "field"},
    ("scaling",): set(),  # filled below from FIELDS and their Python names
    ("healthCheck",): set(),
    ("healthCheck", "headers", 0): {"name", "value"},
}  # fmt: skip


def _snake(key: str) -> str:
    out = ""
    for index, char in enumerate(key):
        if char.isupper() and index and not key[index - 1].isupper():
            out += "_"
        out += char.lower()
    return out


for _path, _kind, _required in FIELDS:
    if _path[:-1] in (("scaling",), ("healthCheck",)):
        KNOWN_KEYS[_path[:-1]] |= {str(_path[-1]), _snake(str(_path[-1]))}
KNOWN_KEYS[("scaling",)] |= {"target_rps_per_replica", "max_cpu_percent"}


def dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _located(document: dict[str, Any], path: Path) -> Path:
    """Where ``path`` (written with a top-level healthCheck) lies in ``document``."""
    if path[:1] == ("healthCheck",) and "healthCheck" not in document:
        return ("spec", *path)
    return path


def _set(document: Any, path: Path, value: Any) -> None:
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


# --- values of the wrong type -------------------------------------------------------------------------

_text = st.text(max_size=12)
_ints = st.integers(min_value=-(2**70), max_value=2**70)
_floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
_lists = st.lists(st.integers(), min_size=0, max_size=2)
_maps = st.dictionaries(st.sampled_from(["a", "b"]), st.integers(), max_size=2)
_bools = st.booleans()

WRONG_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "text": st.one_of(_ints, _floats, _bools, _lists, _maps),
    "int": st.one_of(_text, _floats, _bools, _lists, _maps, st.just(8080.0)),
    "float": st.one_of(_text, _bools, _lists, _maps),
    "enum": st.one_of(_ints, _bools, _lists, _maps, st.sampled_from(["", "HTTP", "Auto", "v2", "udp", " "])),
    "list": st.one_of(_text.filter(lambda t: t != ""), _ints, _maps, _bools),
    "mapping": st.one_of(_text, _ints, st.lists(st.integers(), min_size=1, max_size=2), _bools),
    "quantity": st.one_of(
        _lists, _maps, _bools, st.sampled_from(["", "12Qi", "-1", "1e3", "0.0001", "10**9"])
    ),
    # Variable and header values take any scalar as text; only structures are refused.
    "envvalue": st.one_of(st.sampled_from([[SECRET_PASSWORD], [SECRET_PASSWORD, "x"]]), _maps),
}


# Fields where null means "not given" (a default or nothing): null is no wrong type there.
NULLABLE: set[Path] = {
    ("spec", "command"), ("spec", "args"), ("spec", "ports", 0, "name"), ("spec", "resources", "cpu"),
    ("spec", "resources", "memory"), ("spec", "environment", 2, "key"), ("spec", "environment", 2, "field"),
    ("healthCheck",), ("healthCheck", "port"), ("scaling", "maxScaleOutStep"), ("scaling", "warmPool"),
}  # fmt: skip


def _wrong_type(path: Path, kind: str) -> st.SearchStrategy[Any]:
    wrong = WRONG_TYPES[kind]
    if path == ("spec", "environment"):
        # A mapping is environment's convenience form ({NAME: value}), which is valid.
        wrong = st.one_of(_text.filter(lambda t: t != ""), _ints, _bools)
    return wrong if path in NULLABLE else st.one_of(wrong, st.none())


def _out_of_range(path: Path) -> st.SearchStrategy[Any]:
    if path in POSITIVE:
        return st.one_of(st.sampled_from([0, 0.0, -1, -1e-9]), st.floats(max_value=0, allow_nan=False))
    low, high, low_inclusive = BOUNDS[path]
    is_int = any(kind == "int" for p, kind, _ in FIELDS if p == path)
    if is_int:
        below = st.integers(min_value=-(2**70), max_value=int(low) - 1)
        above = st.integers(min_value=int(high) + 1, max_value=2**70)
        return st.one_of(below, above, st.sampled_from([int(low) - 1, int(high) + 1, 10**30, -(10**30)]))
    below = st.floats(max_value=low, exclude_max=low_inclusive, allow_nan=False, allow_infinity=False)
    above = st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False)
    return st.one_of(below, above, st.sampled_from([float(high) + 1, 1e308]))


BAD_NAMES = ["Web", "wéb", "ｗｅｂ", "web\u200b", "web_1", "-web", "web-", "../etc", "we b", "web.shop", "😀",
             "a\x00b", "web\n", "\nweb"]  # fmt: skip

# Docker refuses each at create ("invalid reference format"), so the app could never start.
BAD_IMAGES = ["Orchestry/Demo", "Web", "image::tag", "a/", "/a", "a//b", ":tag", "a:", "a@sha256:1", "-a",
              "a..b", "a:é", "é", "a:" + "t" * 129, "a" * 256, "x\x00y"]  # fmt: skip

# --- the cases ----------------------------------------------------------------------------------------


RULES = [
    "wrong type", "missing", "out of range", "not finite", "unknown key", "duplicate env", "duplicate port",
    "min above max", "scale-in not below scale-out", "empty text", "bad name", "secret in the wrong place",
    "health port not declared", "NUL in text", "bad image reference",
]  # fmt: skip


@st.composite
def invalid_cases(draw: st.DrawFn, name: str = "web", rules: list[str] = RULES) -> Case:
    """One valid document (healthCheck at the top or under spec) with exactly one of ``rules`` broken."""
    under_spec = draw(st.booleans())
    document = valid_document(name, health_under_spec=under_spec)
    rule = draw(st.sampled_from(rules))
    path: Path
    if rule == "wrong type":
        path, kind, _ = draw(st.sampled_from(FIELDS))
        value = draw(_wrong_type(path, kind))
    elif rule == "missing":
        path = draw(
            st.sampled_from([p for p, _, required in FIELDS if required and p[:2] != ("metadata", "labels")])
        )
        where = _located(document, path)
        node = document
        for part in where[:-1]:
            node = node[part]
        if isinstance(where[-1], int):
            # A list entry cannot be "missing": send null in its place.
            node[where[-1]] = None
        else:
            del node[where[-1]]
        return Case(document, dotted(where), f"{rule} {dotted(where)}")
    elif rule == "out of range":
        path = draw(st.sampled_from(sorted([*BOUNDS, *POSITIVE], key=str)))
        value = draw(_out_of_range(path))
    elif rule == "not finite":
        path = draw(st.sampled_from(sorted([*POSITIVE, ("healthCheck", "periodSeconds")], key=str)))
        value = draw(st.sampled_from([float("inf"), float("-inf"), float("nan")]))
    elif rule == "unknown key":
        owner = draw(st.sampled_from(sorted(KNOWN_KEYS, key=str)))
        key = draw(
            st.text(min_size=1, max_size=16).filter(
                lambda k: k not in KNOWN_KEYS[owner] and k.strip() == k and k.isprintable()
            )
        )
        where = _located(document, owner)
        node = document
        for part in where:
            node = node[part]
        node[key] = draw(st.one_of(_text, _ints, st.none()))
        return Case(document, dotted((*where, key)), f"{rule} {key!r} in {dotted(where) or 'the document'}")
    elif rule == "duplicate env":
        entry = draw(st.integers(min_value=0, max_value=2))
        copy_of = copy.deepcopy(document["spec"]["environment"][entry])
        document["spec"]["environment"].append(copy_of)
        return Case(document, "spec.environment[3].name", rule)
    elif rule == "duplicate port":
        document["spec"]["ports"].append({"containerPort": 8080})
        return Case(document, "spec.ports[2].containerPort", rule)
    elif rule == "min above max":
        high = draw(st.integers(min_value=1, max_value=99))
        low = draw(st.integers(min_value=high + 1, max_value=100))
        document["scaling"].update(minReplicas=low, maxReplicas=high)
        return Case(document, "scaling.minReplicas", rule)
    elif rule == "scale-in not below scale-out":
        out = draw(st.floats(min_value=1, max_value=100))
        document["scaling"].update(scaleOutThresholdPct=out, scaleInThresholdPct=out)
        return Case(document, "scaling.scaleInThresholdPct", rule)
    elif rule == "empty text":
        path = draw(
            st.sampled_from(
                [
                    ("metadata", "name"), ("spec", "image"), ("spec", "ports", 0, "name"),
                    ("spec", "environment", 0, "name"), ("spec", "environment", 2, "key"),
                    ("spec", "environment", 2, "field"), ("healthCheck", "path"),
                    ("healthCheck", "headers", 0, "name"), ("spec", "resources", "cpu"),
                    ("spec", "resources", "memory"),
                ]
            )
        )  # fmt: skip
        value = draw(st.sampled_from(["", " ", "\t"]))
    elif rule == "bad name":
        path = ("metadata", "name")
        value = draw(
            st.one_of(
                # Too long for a DNS label (Docker's and nginx's names are built from it).
                st.integers(min_value=64, max_value=5000).map(lambda n: "a" * n),
                st.sampled_from(BAD_NAMES),
                st.text(min_size=1, max_size=20).filter(lambda t: not t.isascii()),
            )
        )  # fmt: skip
    elif rule == "secret in the wrong place":
        form = draw(
            st.sampled_from(["compose list", "compose text", "env name", "header line", "header text"])
        )
        spec = document["spec"]
        checks = spec.get("healthCheck") or document["healthCheck"]
        health = "spec.healthCheck" if "healthCheck" in spec else "healthCheck"
        if form == "compose list":
            spec["environment"][1] = f"DB_PASSWORD={SECRET_PASSWORD}"
            return Case(document, "spec.environment[1]", f"{rule}: {form}")
        if form == "compose text":
            spec["environment"] = f"DB_PASSWORD={SECRET_PASSWORD}"
            return Case(document, "spec.environment", f"{rule}: {form}")
        if form == "env name":
            spec["environment"][1] = {"name": f"DB_PASSWORD={SECRET_PASSWORD}", "value": ""}
            return Case(document, "spec.environment[1].name", f"{rule}: {form}")
        if form == "header line":
            checks["headers"][1] = f"Authorization: {SECRET_BEARER}"
            return Case(document, f"{health}.headers[1]", f"{rule}: {form}")
        checks["headers"][1] = {"name": f"Authorization: {SECRET_BEARER}", "value": ""}
        return Case(document, f"{health}.headers[1].name", f"{rule}: {form}")
    elif rule == "NUL in text":
        path = draw(
            st.sampled_from(
                [
                    ("spec", "command", 0), ("spec", "args", 0), ("spec", "environment", 0, "value"),
                    ("spec", "environment", 1, "value"), ("metadata", "labels", "team"),
                    ("healthCheck", "path"), ("healthCheck", "headers", 0, "value"),
                    ("spec", "environment", 2, "key"),
                ]
            )
        )  # fmt: skip
        value = draw(st.sampled_from(["\x00", "a\x00b", "/health\x00", "info\x00"]))
    elif rule == "bad image reference":
        path = ("spec", "image")
        value = draw(st.sampled_from(BAD_IMAGES))
    else:  # health port not declared
        path = ("healthCheck", "port")
        value = draw(st.integers(min_value=1, max_value=65535).filter(lambda p: p not in (8080, 9090)))
    where = _located(document, path)
    _set(document, where, value)
    return Case(document, dotted(where), f"{rule} {dotted(where)} = {value!r}"[:200])


@st.composite
def invalid_policy_changes(draw: st.DrawFn, max_replicas: int) -> tuple[dict[str, Any], str, str]:
    """A scaling change (PUT /api/v1/apps/NAME/scaling, POST /apps/NAME/policy) breaking one rule, for an
    app whose maxReplicas is ``max_replicas``: (change, field, what)."""
    keys = [(path[1], kind) for path, kind, _ in FIELDS if path[:1] == ("scaling",) and len(path) == 2]
    rule = draw(st.sampled_from(["wrong type", "out of range", "unknown key", "min above max"]))
    if rule == "wrong type":
        key, kind = draw(st.sampled_from(keys))
        value = draw(_wrong_type(("scaling", str(key)), kind))
    elif rule == "out of range":
        path = draw(st.sampled_from(sorted([p for p in [*BOUNDS, *POSITIVE] if p[0] == "scaling"], key=str)))
        key, value = path[1], draw(_out_of_range(path))
    elif rule == "unknown key":
        key = draw(
            st.text(min_size=1, max_size=16).filter(
                lambda k: k not in KNOWN_KEYS[("scaling",)] and k.strip() == k and k.isprintable()
            )
        )
        value = draw(st.one_of(_ints, _text))
    else:
        key, value = "minReplicas", draw(st.integers(min_value=max_replicas + 1, max_value=100))
    return {str(key): value}, f"scaling.{key}", f"{rule}: {key} = {value!r}"[:200]


def unfit_to_show(message: str) -> list[str]:
    """Why a refusal's message may not reach a person: a secret value in it, or pydantic's own words
    (an error type left untranslated, so no fix given). Empty when it is fit."""
    secrets = ["a secret value" for secret in SECRET_VALUES if secret in message]
    return secrets + [f"untranslated {words!r}" for words in UNTRANSLATED if words in message]


def has_sensitive_literals(document: dict[str, Any]) -> bool:
    return SECRET_PASSWORD in json.dumps(document)


@st.composite
def valid_documents(draw: st.DrawFn, name: str = "web") -> dict[str, Any]:
    """Valid documents that vary what a round trip could lose: optional blocks left out, aliases and the
    convenience forms (env, {NAME: value}), whole floats, a health check under spec, sensitive literal
    values (shown as "***") present or not."""
    document = valid_document(name, health_under_spec=draw(st.booleans()))
    spec = document["spec"]
    if not draw(st.booleans()):
        spec["environment"].pop(1)
        (spec.get("healthCheck") or document["healthCheck"])["headers"].pop(1)
    for key in draw(st.sets(st.sampled_from(["command", "args", "resources", "ports", "loadBalancing"]))):
        spec.pop(key, None)
    if "ports" not in spec:
        (spec.get("healthCheck") or document["healthCheck"]).pop("port")
    if draw(st.booleans()):
        document.pop("scaling")
    else:
        document["scaling"]["maxReplicas"] = draw(st.integers(min_value=1, max_value=100))
        document["scaling"]["minReplicas"] = draw(
            st.integers(min_value=0, max_value=document["scaling"]["maxReplicas"])
        )
        # Valid extremes too: the engine's reads must take whatever register took.
        positive = st.one_of(
            st.integers(min_value=1, max_value=10**6),
            st.floats(min_value=0.001, max_value=1e6),
            st.sampled_from([5e-324, 1e-300, 1e308, 2**53 + 1]),
        )
        percent = st.one_of(st.floats(min_value=1e-9, max_value=100), st.sampled_from([100, 5e-324]))
        scaling = document["scaling"]
        for key in ("targetRPSPerReplica", "maxP95LatencyMs", "maxConnPerReplica"):
            scaling[key] = draw(positive)
        for key in ("maxCPUPercent", "maxMemoryPercent"):
            scaling[key] = draw(percent)
        scaling["scaleOutThresholdPct"] = draw(st.floats(min_value=1e-6, max_value=100))
        scaling["scaleInThresholdPct"] = draw(
            st.floats(min_value=5e-324, max_value=scaling["scaleOutThresholdPct"], exclude_max=True)
        )
        scaling["windowSeconds"] = draw(st.sampled_from([5, 60, 3600]))
        scaling["cooldownSeconds"] = draw(st.sampled_from([0, 180, 86400]))
    environment = spec.pop("environment")
    form = draw(st.sampled_from(["list", "env alias", "mapping"]))
    if form == "mapping":
        spec["env"] = {
            entry["name"]: entry.get("value")
            if "value" in entry
            else {k: v for k, v in entry.items() if k != "name"}
            for entry in environment
        }
    else:
        spec["env" if form == "env alias" else "environment"] = environment
    spec["image"] = draw(
        st.sampled_from(["orchestry/demo:latest", "orchestry/demo", "registry:5000/a/b:1.0"])
    )
    document["metadata"]["labels"] = draw(
        st.dictionaries(
            st.from_regex(r"\A[a-z]([a-z0-9-]{0,8}[a-z0-9])?\Z"),
            st.text(max_size=20).filter(lambda t: "\n" not in t and "\x00" not in t),
            max_size=3,
        )
    )
    return document

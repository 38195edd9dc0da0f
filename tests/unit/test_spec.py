"""The app spec: every API.md example parses, every rule rejects with a message naming field and fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import SpecError
from core.spec import (
    AppSpec,
    ScalingPolicy,
    parse_app_spec,
    redact_document,
    validate_policy_update,
)
from core.units import format_memory, parse_cpu, parse_memory

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
API_MD_EXAMPLE = EXAMPLES / "api-md-example.yml"


def minimal(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web"}, "spec": {"image": "orchestry/demo:latest", **spec}}


def full_document() -> dict[str, Any]:
    return yaml.safe_load(API_MD_EXAMPLE.read_text())


def rejection(document: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_app_spec(document)
    return caught.value


# ---------------------------------------------------------------------------------------------- examples


def test_api_md_example_parses_with_every_value() -> None:
    spec = parse_app_spec(API_MD_EXAMPLE.read_text())

    assert spec.name == "web"
    assert spec.labels == {"team": "shop"}
    assert spec.container.image == "orchestry/demo:latest"
    assert spec.container.command == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    assert [(p.container_port, p.name) for p in spec.container.ports] == [(8080, "api")]
    assert spec.container.resources.cpu_millis == 500
    assert spec.container.resources.memory_bytes == 256 * 1024**2
    assert [(e.name, e.value, e.source) for e in spec.container.environment] == [
        ("LOG_LEVEL", "info", "value"),
        ("DATABASE_PASSWORD", None, "secret"),
    ]
    assert spec.container.environment[1].key == "db-credentials"
    assert spec.container.environment[1].field == "password"
    assert spec.container.load_balancing == "least_conn"
    assert spec.scaling.max_cpu_percent == 70
    assert spec.scaling.cooldown_seconds == 180
    assert spec.health_check is not None
    assert spec.health_check.initial_delay_seconds == 5
    assert [(h.name, h.value) for h in spec.health_check.headers] == [("X-Health-Check", "orchestry")]


def test_api_md_example_file_matches_api_md() -> None:
    api_md = Path("/work/shared/API.md")
    if not api_md.exists():  # the shared docs live outside the repo; the copy is what we test
        return
    text = api_md.read_text()
    block = text[text.index("```yaml\n") + len("```yaml\n") :]
    block = block[: block.index("```")]
    assert yaml.safe_load(block) == full_document()


def test_demo_example_parses() -> None:
    spec = parse_app_spec((EXAMPLES / "web.yml").read_bytes())
    assert spec.name == "web"


def test_minimal_register_body_gets_the_documented_defaults() -> None:
    body = json.dumps({"metadata": {"name": "shop"}, "spec": {"image": "orchestry/demo:latest"}})
    spec = parse_app_spec(body)

    assert (spec.api_version, spec.kind) == ("v1", "App")
    assert spec.container.type == "http"
    assert spec.container.load_balancing == "least_conn"
    assert spec.container.termination_grace_period_seconds == 30
    assert spec.health_check is None
    policy = spec.scaling
    assert (policy.mode, policy.min_replicas, policy.max_replicas) == ("auto", 1, 5)
    assert (policy.target_rps_per_replica, policy.max_p95_latency_ms, policy.max_conn_per_replica) == (
        50,
        250,
        80,
    )
    assert (policy.max_cpu_percent, policy.max_memory_percent) == (70, 75)
    assert (policy.scale_out_threshold_pct, policy.scale_in_threshold_pct) == (80, 30)
    assert (policy.window_seconds, policy.cooldown_seconds) == (60, 180)
    assert (policy.max_scale_out_step, policy.scale_in_step) == (None, 1)


def test_register_body_with_scaling_and_health_check_as_a_dict() -> None:
    body = {
        **minimal(ports=[{"containerPort": 8080}]),
        "scaling": {
            "mode": "manual",
            "minReplicas": 2,
            "maxReplicas": 4,
            "maxScaleOutStep": 2,
            "scaleInStep": 2,
        },
        "healthCheck": {"path": "/ready", "periodSeconds": 0.5},
    }
    spec = parse_app_spec(body)
    assert spec.scaling.mode == "manual"
    assert (spec.scaling.max_scale_out_step, spec.scaling.scale_in_step) == (2, 2)
    assert spec.health_check is not None and spec.health_check.period_seconds == 0.5
    assert spec.health_check_port == 8080  # no port given: the first container port


def test_worker_type_and_args_are_accepted() -> None:
    spec = parse_app_spec(minimal(type="worker", args=["--queue", "jobs"]))
    assert spec.container.type == "worker"
    assert spec.container.args == ["--queue", "jobs"]


def test_parse_does_not_change_the_callers_document() -> None:
    document = minimal(healthCheck={"path": "/health"})
    before = copy.deepcopy(document)
    parse_app_spec(document)
    assert document == before


# ---------------------------------------------------------------------------------------------- rules


def with_change(path: str, value: Any) -> dict[str, Any]:
    """The API.md example with one dotted-path key set (created if missing)."""
    document = full_document()
    node = document
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    if last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return document


RULES = [
    ("metadata.name", "A B", "metadata.name", "use lowercase letters, digits and '-' (a DNS label, max 63)"),
    ("metadata.name", "../../etc/x", "metadata.name", "is not a valid app name"),
    ("metadata.name", "a" * 64, "metadata.name", "max 63"),
    ("metadata.name", "-web", "metadata.name", "is not a valid app name"),
    ("metadata.labels", {"team": 5}, "metadata.labels.team", "must be text"),
    ("kind", "Deployment", "kind", "is not one of 'App'"),
    ("apiVersion", "v2", "apiVersion", "is not one of 'v1'"),
    ("spec.imag", "x", "spec.imag", "remove it or fix the spelling (did you mean 'image'?)"),
    ("spec.image", "", "spec.image", "name the image to run"),
    ("spec.image", 5, "spec.image", "must be text"),
    ("spec.type", "tcp", "spec.type", "is not one of 'http' or 'worker'"),
    ("spec.command", "httpd -f", "spec.command", "must be a list"),
    ("spec.args", [1], "spec.args[0]", "must be text"),
    ("spec.ports", [{"containerPort": 70000}], "spec.ports[0].containerPort", "at most 65535"),
    ("spec.ports", [{"containerPort": 0}], "spec.ports[0].containerPort", "at least 1"),
    (
        "spec.ports",
        [{"containerPort": 8080}, {"containerPort": 8080}],
        "spec.ports[1].containerPort",
        "list each port once",
    ),
    (
        "spec.ports",
        [{"containerPort": 8080, "name": "api"}, {"containerPort": 8081, "name": "api"}],
        "spec.ports[1].name",
        "give each port its own name",
    ),
    (
        "spec.ports",
        [{"containerPort": 8080, "protocol": "UDP"}],
        "spec.ports[0].protocol",
        "is not one of 'TCP'",
    ),
    (
        "spec.ports",
        [{"containerPort": "8080"}],
        "spec.ports[0].containerPort",
        "write the number without quotes",
    ),
    (
        "spec.resources.memory",
        "12Qi",
        "spec.resources.memory",
        "'12Qi' is not a memory size: use a number with Ki, Mi, Gi, K, M or G (e.g. 256Mi)",
    ),
    ("spec.resources.memory", "1Mi", "spec.resources.memory", "use between 4Mi and 256Gi"),
    ("spec.resources.memory", "300Gi", "spec.resources.memory", "use between 4Mi and 256Gi"),
    ("spec.resources.cpu", "5m", "spec.resources.cpu", "use between 10m and 64 cores"),
    ("spec.resources.cpu", 65, "spec.resources.cpu", "use between 10m and 64 cores"),
    ("spec.resources.cpu", "lots", "spec.resources.cpu", "use cores (e.g. 0.5"),
    ("spec.resources.gpu", 1, "spec.resources.gpu", "known keys: cpu, memory"),
    ("spec.environment.0.name", "1BAD", "spec.environment[0].name", "not a valid environment variable name"),
    ("spec.environment.1.key", None, "spec.environment[1].key", "name the secret"),
    ("spec.environment.1.field", None, "spec.environment[1].field", "name the secret's field"),
    ("spec.environment.1.value", "x", "spec.environment[1].value", "cannot be combined with source: secret"),
    ("spec.environment.1.source", "vault", "spec.environment[1].source", "is not one of 'value' or 'secret'"),
    (
        "spec.environment.0",
        {"name": "LOG_LEVEL"},
        "spec.environment[0].value",
        "add value: <text>, or use source: secret",
    ),
    (
        "spec.environment.0",
        {"name": "A", "value": "x", "key": "k"},
        "spec.environment[0].source",
        "add source: secret",
    ),
    ("spec.environment.1.name", "LOG_LEVEL", "spec.environment[1].name", "set each variable once"),
    ("spec.loadBalancing", "random", "spec.loadBalancing", "'least_conn', 'ip_hash' or 'round_robin'"),
    ("spec.terminationGracePeriodSeconds", 3601, "spec.terminationGracePeriodSeconds", "at most 3600"),
    ("spec.terminationGracePeriodSeconds", -1, "spec.terminationGracePeriodSeconds", "at least 0"),
    (
        "scaling.scaleInThresholdPct",
        85,
        "scaling.scaleInThresholdPct",
        "(85) must be below scaleOutThresholdPct (80)",
    ),
    ("scaling.minReplicas", 6, "scaling.minReplicas", "(6) must not exceed maxReplicas (5)"),
    ("scaling.minReplicas", -1, "scaling.minReplicas", "at least 0"),
    ("scaling.maxReplicas", 101, "scaling.maxReplicas", "at most 100"),
    ("scaling.maxReplicas", 0, "scaling.maxReplicas", "at least 1"),
    ("scaling.mode", "magic", "scaling.mode", "is not one of 'auto' or 'manual'"),
    ("scaling.maxCPUPercent", 0, "scaling.maxCPUPercent", "greater than 0"),
    ("scaling.maxMemoryPercent", 101, "scaling.maxMemoryPercent", "at most 100"),
    ("scaling.scaleOutThresholdPct", 150, "scaling.scaleOutThresholdPct", "at most 100"),
    ("scaling.targetRPSPerReplica", 0, "scaling.targetRPSPerReplica", "greater than 0"),
    ("scaling.maxP95LatencyMs", -5, "scaling.maxP95LatencyMs", "greater than 0"),
    ("scaling.maxConnPerReplica", 0, "scaling.maxConnPerReplica", "greater than 0"),
    ("scaling.targetRPSPerReplica", float("inf"), "scaling.targetRPSPerReplica", "finite number"),
    ("scaling.windowSeconds", 4, "scaling.windowSeconds", "at least 5"),
    ("scaling.cooldownSeconds", 86401, "scaling.cooldownSeconds", "at most 86400"),
    ("scaling.maxScaleOutStep", 0, "scaling.maxScaleOutStep", "at least 1"),
    ("scaling.scaleInStep", 0, "scaling.scaleInStep", "at least 1"),
    ("scaling.maxCpuPercent", 50, "scaling.maxCpuPercent", "did you mean 'maxCPUPercent'?"),
    ("scaling.minReplicas", "2", "scaling.minReplicas", "write the number without quotes"),
    ("scaling.minReplicas", True, "scaling.minReplicas", "must be a whole number"),
    ("healthCheck.path", "health", "healthCheck.path", "must start with '/'"),
    ("healthCheck.port", 9090, "healthCheck.port", "is not a containerPort of spec.ports (8080)"),
    ("healthCheck.periodSeconds", 0, "healthCheck.periodSeconds", "greater than 0"),
    ("healthCheck.timeoutSeconds", 0, "healthCheck.timeoutSeconds", "greater than 0"),
    ("healthCheck.failureThreshold", 0, "healthCheck.failureThreshold", "at least 1"),
    ("healthCheck.successThreshold", 0, "healthCheck.successThreshold", "at least 1"),
    ("healthCheck.initialDelaySeconds", -1, "healthCheck.initialDelaySeconds", "at least 0"),
    (
        "healthCheck.headers",
        [{"name": "Bad Header", "value": "x"}],
        "healthCheck.headers[0].name",
        "not a valid HTTP header name",
    ),
    ("healthCheck.headers", [{"name": "X-A"}], "healthCheck.headers[0].value", "is missing"),
    ("healthCheck.intervalSeconds", 5, "healthCheck.intervalSeconds", "remove it or fix the spelling"),
    ("metadata.namespace", "x", "metadata.namespace", "known keys: name, labels"),
    ("replicas", 3, "replicas", "remove it or fix the spelling"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "fix"), RULES, ids=[f"{r[0]}={r[1]!r}"[:60] for r in RULES]
)
def test_each_rule_names_the_field_and_the_fix(path: str, value: Any, field: str, fix: str) -> None:
    error = rejection(with_change(path, value))

    assert error.field == field
    assert str(error).startswith(field + " ")
    assert fix in str(error)
    assert error.errors == [str(error)]


def test_missing_required_fields_say_what_to_add() -> None:
    assert (
        str(rejection({"metadata": {"name": "web"}}))
        == "spec is missing: add a spec block with at least image"
    )
    error = rejection({"spec": {"image": "x"}})
    assert error.field == "metadata" and "add metadata: {name: <app name>}" in str(error)
    error = rejection({"metadata": {"name": "web"}, "spec": {}})
    assert str(error) == "spec.image is missing: add the image to run, e.g. image: orchestry/demo:latest"


def test_several_problems_are_all_reported_joined_by_semicolons() -> None:
    document = with_change("metadata.name", "A B")
    document["spec"]["imag"] = "typo"
    document["spec"]["resources"]["memory"] = "12Qi"
    error = rejection(document)

    assert len(error.errors) == 3
    assert str(error) == "; ".join(error.errors)
    assert error.field == "metadata.name"
    assert any(message.startswith("spec.imag is not a known key") for message in error.errors)
    assert any(message.startswith("spec.resources.memory '12Qi'") for message in error.errors)


def test_secret_values_are_not_echoed_in_errors() -> None:
    error = rejection(minimal(environment=[{"name": "DB_PASSWORD", "value": ["hunter2"]}]))
    assert error.field == "spec.environment[0].value"
    assert "hunter2" not in str(error)


def test_health_check_under_spec_is_reported_where_it_was_written() -> None:
    error = rejection(minimal(healthCheck={"path": "nope"}))
    assert error.field == "spec.healthCheck.path"


def test_health_check_at_root_and_under_spec_together_is_an_error() -> None:
    document = minimal(healthCheck={"path": "/a"})
    document["healthCheck"] = {"path": "/b"}
    error = rejection(document)
    assert error.field == "spec.healthCheck"
    assert "keep only one" in str(error)


def test_env_and_environment_together_is_an_error() -> None:
    error = rejection(minimal(env=[{"name": "A", "value": "1"}], environment=[{"name": "B", "value": "2"}]))
    assert error.field == "spec.env"
    assert "keep one of them" in str(error)


def test_yaml_boolean_keys_are_explained() -> None:
    error = rejection("metadata: {name: web}\nspec: {image: x}\non: true\n")
    assert "quote it" in str(error)


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("metadata: {name: web\n", "fix the syntax"),
        ("- a\n- b\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("just words", "must be a mapping"),
        (b"\xff\xfe\x00", "save the file as UTF-8"),
        ('{"metadata": [}', "line 1"),
        ("a: 1\n---\nb: 2\n", "fix the syntax"),
        ("[" * 500 + "]" * 500, "flatten it"),
        ("# " + "x" * 1_000_001, "keep it under"),
    ],
)
def test_unreadable_text_is_a_spec_error(text: str | bytes, fix: str) -> None:
    assert fix in str(rejection(text))


# ---------------------------------------------------------------------------------------------- hashes


def test_spec_hash_ignores_key_order() -> None:
    document = full_document()
    reordered = {key: document[key] for key in reversed(list(document))}
    reordered["spec"] = {key: document["spec"][key] for key in reversed(list(document["spec"]))}
    reordered["scaling"] = dict(sorted(document["scaling"].items()))

    assert parse_app_spec(reordered).spec_hash() == parse_app_spec(document).spec_hash()


def test_yaml_and_json_of_the_same_document_hash_alike() -> None:
    document = full_document()
    from_yaml = parse_app_spec(yaml.safe_dump(document))
    from_json = parse_app_spec(json.dumps(document, indent="\t"))
    assert from_yaml == from_json
    assert from_yaml.spec_hash() == from_json.spec_hash()


def test_env_alias_and_dict_form_equal_the_environment_list() -> None:
    listed = parse_app_spec(
        minimal(environment=[{"name": "A", "value": "1"}, {"name": "PORT", "value": "8080"}])
    )
    aliased = parse_app_spec(minimal(env=[{"name": "A", "value": "1"}, {"name": "PORT", "value": "8080"}]))
    mapped = parse_app_spec(minimal(env={"A": "1", "PORT": 8080}))

    assert listed == aliased == mapped
    assert listed.spec_hash() == aliased.spec_hash() == mapped.spec_hash()


def test_health_check_at_root_or_under_spec_is_the_same_spec() -> None:
    check = {"path": "/ready", "periodSeconds": 3}
    at_root = parse_app_spec({**minimal(), "healthCheck": check})
    under_spec = parse_app_spec(minimal(healthCheck=check))

    assert at_root == under_spec
    assert at_root.spec_hash() == under_spec.spec_hash()


def test_defaults_written_out_or_left_out_hash_alike() -> None:
    bare = parse_app_spec(minimal())
    explicit = parse_app_spec(
        {
            "apiVersion": "v1",
            "kind": "App",
            "metadata": {"name": "web", "labels": {}},
            "spec": {"image": "orchestry/demo:latest", "type": "http", "loadBalancing": "least_conn"},
            "scaling": {"minReplicas": 1, "maxCPUPercent": 70.0, "cooldownSeconds": 180},
        }
    )
    assert bare.spec_hash() == explicit.spec_hash()


def test_scaling_change_keeps_the_container_hash_but_changes_the_spec_hash() -> None:
    base = full_document()
    scaled = with_change("scaling.maxReplicas", 9)
    probed = with_change("healthCheck.periodSeconds", 3)
    new_image = with_change("spec.image", "orchestry/demo:v2")

    spec = parse_app_spec(base)
    for changed in (scaled, probed):
        other = parse_app_spec(changed)
        assert other.container_hash() == spec.container_hash()
        assert other.spec_hash() != spec.spec_hash()
    assert parse_app_spec(new_image).container_hash() != spec.container_hash()


def test_canonical_document_round_trips() -> None:
    spec = parse_app_spec(API_MD_EXAMPLE.read_text())
    document = spec.to_document()

    assert parse_app_spec(document) == spec
    assert parse_app_spec(json.dumps(document)).to_document() == document
    assert document["spec"]["resources"] == {"cpu": "500m", "memory": "256Mi"}
    assert document["scaling"]["maxCPUPercent"] == 70
    assert "healthCheck" in document and "healthCheck" not in document["spec"]


# ---------------------------------------------------------------------------------------------- policy


def test_policy_update_accepts_camel_and_snake_case() -> None:
    policy = ScalingPolicy()
    updated = validate_policy_update(policy, {"maxReplicas": 8, "min_replicas": 2, "mode": "manual"})

    assert (updated.min_replicas, updated.max_replicas, updated.mode) == (2, 8, "manual")
    assert policy.max_replicas == 5  # the original is untouched
    assert updated.cooldown_seconds == policy.cooldown_seconds


def test_policy_update_can_clear_the_scale_out_step() -> None:
    policy = validate_policy_update(ScalingPolicy(), {"maxScaleOutStep": 3})
    assert policy.max_scale_out_step == 3
    assert validate_policy_update(policy, {"maxScaleOutStep": None}).max_scale_out_step is None


@pytest.mark.parametrize(
    ("changes", "field", "fix"),
    [
        ({"minReplicas": 9}, "scaling.minReplicas", "(9) must not exceed maxReplicas (5)"),
        (
            {"scaleInThresholdPct": 90},
            "scaling.scaleInThresholdPct",
            "must be below scaleOutThresholdPct (80)",
        ),
        ({"maxReplica": 3}, "scaling.maxReplica", "did you mean 'maxReplicas'?"),
        ({"cooldownSeconds": "soon"}, "scaling.cooldownSeconds", "must be a whole number"),
        ({"mode": "auto-ish"}, "scaling.mode", "is not one of 'auto' or 'manual'"),
    ],
)
def test_policy_update_rejections_name_the_scaling_key(changes: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(SpecError) as caught:
        validate_policy_update(ScalingPolicy(), changes)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)
    assert fix in str(caught.value)


def test_policy_update_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        validate_policy_update(ScalingPolicy(), [1, 2])  # type: ignore[arg-type]


def test_policy_document_uses_the_api_md_keys() -> None:
    assert set(ScalingPolicy().to_document()) == {
        "mode",
        "minReplicas",
        "maxReplicas",
        "targetRPSPerReplica",
        "maxP95LatencyMs",
        "maxConnPerReplica",
        "maxCPUPercent",
        "maxMemoryPercent",
        "scaleOutThresholdPct",
        "scaleInThresholdPct",
        "windowSeconds",
        "cooldownSeconds",
        "scaleInStep",
    }


# ---------------------------------------------------------------------------------------------- redaction


def test_redaction_hides_secret_values_and_sensitive_literals() -> None:
    document = minimal(
        environment=[
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "API_TOKEN", "value": "tok-123"},
            {"name": "aws_secret_access_key", "value": "abc"},
            {"name": "DB_PASSWORD", "source": "secret", "key": "db", "field": "password", "value": "leak"},
        ]
    )
    document["healthCheck"] = {"headers": [{"name": "Authorization", "value": "Bearer xyz"}]}
    redacted = redact_document(document)
    text = json.dumps(redacted)

    for secret in ("tok-123", "abc", "leak", "Bearer xyz"):
        assert secret not in text
    environment = redacted["spec"]["environment"]
    assert environment[0] == {"name": "LOG_LEVEL", "value": "info"}
    assert environment[1]["value"] == "***"
    assert environment[3] == {"name": "DB_PASSWORD", "source": "secret", "key": "db", "field": "password"}
    assert document["spec"]["environment"][1]["value"] == "tok-123"  # a copy, not in place


def test_redaction_handles_the_dict_form_and_garbage() -> None:
    redacted = redact_document({"spec": {"env": {"CREDENTIALS_FILE": "/x", "A": "b"}}})
    assert redacted["spec"]["env"] == {"CREDENTIALS_FILE": "***", "A": "b"}
    assert redact_document({"spec": "nonsense"}) == {"spec": "nonsense"}


def test_canonical_document_of_the_example_redacts_cleanly() -> None:
    spec = parse_app_spec(API_MD_EXAMPLE.read_text())
    assert spec.redacted_document()["spec"]["environment"][1] == {
        "name": "DATABASE_PASSWORD",
        "source": "secret",
        "key": "db-credentials",
        "field": "password",
    }


# ---------------------------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("value", "millis"),
    [("500m", 500), (0.5, 500), ("2", 2000), (2, 2000), ("0.25", 250), ("10m", 10), (64, 64000)],
)
def test_cpu_quantities(value: object, millis: int) -> None:
    assert parse_cpu(value) == millis


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("256Mi", 256 * 1024**2),
        ("1G", 10**9),
        ("4Mi", 4 * 1024**2),
        ("1.5Gi", 3 * 2**29),
        ("8192K", 8_192_000),
        (2**26, 2**26),
    ],
)
def test_memory_quantities(value: object, size: int) -> None:
    assert parse_memory(value) == size
    assert parse_memory(format_memory(size)) == size


@pytest.mark.parametrize("value", ["", "m", "1.5.5", "-1", True, None, [1], "0.0001"])
def test_bad_cpu_quantities_say_what_is_accepted(value: object) -> None:
    with pytest.raises(ValueError, match=r"millicore|10m and 64 cores"):
        parse_cpu(value)


def test_an_app_spec_model_is_immutable() -> None:
    spec: AppSpec = parse_app_spec(minimal())
    with pytest.raises(ValueError):
        spec.scaling.max_replicas = 9  # type: ignore[misc]


def test_readable_memory_rounds_to_the_unit_people_read() -> None:
    from core.units import readable_memory

    assert readable_memory(23_5 * 2**30 // 10) == "23.5Gi"
    assert readable_memory(32 * 2**20) == "32Mi"
    assert readable_memory(12 * 2**10) == "12Ki"

"""``orchestry describe NAME``: every section of the spec under the spec's own key names, then status,
replicas and the last scaling decisions.

Operators grep it (the 1.0 guide: ``describe web | grep -A 20 environment``, ``grep -A 20 scaling``,
``grep -A 5 resources``), so the table form is plain indented text with one section header per spec
key and its entries right below it, not a boxed table whose borders would eat the grep's context lines.
Secret values never reach this module: the daemon answers with the spec already redacted, and an
environment entry fed from a secret is shown by its reference only.
"""

from __future__ import annotations

from typing import Any

from core.models import status_and_reason

# Spec sections in the order a user writes them; each is shown even when unset ("-"), so a grep for a
# section always finds its header.
SPEC_KEYS = ("image", "command", "args", "ports", "resources", "environment")
TAIL_KEYS = ("loadBalancing", "terminationGracePeriodSeconds")
LAST_DECISIONS = 5
INDENT = "  "


def _spec_body(spec_document: dict[str, Any]) -> dict[str, Any]:
    body = spec_document.get("spec")
    return body if isinstance(body, dict) else {}


def health_check(spec_document: dict[str, Any]) -> dict[str, Any] | None:
    """The health check may sit at the top of the document or under ``spec`` (API.md)."""
    found = spec_document.get("healthCheck") or _spec_body(spec_document).get("healthCheck")
    return found if isinstance(found, dict) else None


def environment_entries(environment: Any) -> list[dict[str, Any]]:
    """``[{name, value}]`` or ``[{name, source: secret, key, field}]`` from either spec form."""
    if isinstance(environment, dict):  # the {NAME: value} convenience form
        return [
            {**value, "name": name} if isinstance(value, dict) else {"name": name, "value": value}
            for name, value in environment.items()
        ]
    if isinstance(environment, list):
        return [entry for entry in environment if isinstance(entry, dict)]
    return []


def environment_value(entry: dict[str, Any]) -> str:
    if entry.get("source") == "secret":
        return f"from secret {entry.get('key')}.{entry.get('field')}"
    value = entry.get("value")
    return "" if value is None else str(value)


def decision_row(record: dict[str, Any]) -> dict[str, Any]:
    """A scaling record of the 1.0 ``/apps/{name}/metrics`` answer, under describe's names."""
    return {
        "timestamp": record.get("timestamp"),
        "from_replicas": record.get("from_replicas"),
        "to_replicas": record.get("to_replicas"),
        "reason": record.get("trigger_reason") or "",
    }


def describe_document(app: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON form: the 1.0-compatible app answer plus each spec section under its own key."""
    spec_document = app.get("spec") or {}
    body = _spec_body(spec_document)
    described = dict(app)
    described["metadata"] = spec_document.get("metadata") or {"name": app["name"], "labels": app["labels"]}
    for key in SPEC_KEYS:
        described[key] = body.get(key)
    described["environment"] = environment_entries(body.get("environment", body.get("env")))
    described["healthCheck"] = health_check(spec_document)
    described["scaling"] = spec_document.get("scaling") or app.get("policy") or {}
    for key in TAIL_KEYS:
        described[key] = body.get(key)
    described["decisions"] = [decision_row(r) for r in history[:LAST_DECISIONS]]
    return described


def _scalar(value: Any) -> str:
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return " ".join(str(v) for v in value)
    return str(value)


def _mapping_lines(mapping: dict[str, Any], depth: int) -> list[str]:
    width = max((len(str(k)) for k in mapping), default=0) + 1
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            lines.append(f"{INDENT * depth}{key}:")
            lines.extend(_mapping_lines(value, depth + 1))
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            lines.append(f"{INDENT * depth}{key}:")
            lines.extend(_list_lines(value, depth + 1))
        else:
            lines.append(f"{INDENT * depth}{f'{key}:':<{width}} {_scalar(value)}")
    return lines


def _list_lines(items: list[Any], depth: int) -> list[str]:
    return [
        f"{INDENT * depth}- "
        + ("  ".join(f"{k}: {_scalar(v)}" for k, v in item.items()) if isinstance(item, dict) else str(item))
        for item in items
    ]


def _section(key: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [f"{key}:", *_mapping_lines(value, 1)]
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return [f"{key}:", *_list_lines(value, 1)]
    return [f"{key}: {_scalar(value)}"]


def _environment_lines(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return ["environment: -"]
    width = max(len(str(e.get("name"))) for e in entries)
    return ["environment:"] + [
        f"{INDENT}{e.get('name')!s:<{width}}  {environment_value(e)}".rstrip() for e in entries
    ]


def describe_lines(described: dict[str, Any], clock: Any, ago: Any) -> list[str]:
    """The table form of ``describe_document``'s answer; ``clock``/``ago`` format epoch seconds."""
    word, reason = status_and_reason(
        described["status"], described["desired_replicas"], described["status_reason"]
    )
    status = word + (f" ({reason})" if reason else "")
    lines = [
        f"App {described['name']}",
        f"status: {status}",
        f"mode: {described['mode']}",
        f"replicas ready: {described['ready_replicas']}/{described['desired_replicas']}",
        f"created: {clock(described['created_at'])}",
        f"updated: {clock(described['updated_at'])}",
        f"last scaled: {clock(described['last_scaled_at'])}",
        "",
        *_section("metadata", described["metadata"]),
    ]
    for key in SPEC_KEYS:
        if key == "environment":
            lines.extend(_environment_lines(described["environment"]))
        else:
            lines.extend(_section(key, described[key]))
    lines.extend(_section("healthCheck", described["healthCheck"]))
    lines.extend(_section("scaling", described["scaling"]))
    for key in TAIL_KEYS:
        lines.extend(_section(key, described[key]))
    lines.append("")
    lines.append("replicas:" if described["replicas"] else "replicas: none running")
    for r in described["replicas"]:
        ready = "routed" if r["ready"] else "not ready"
        reason = f"  {r['reason']}" if r.get("reason") else ""
        lines.append(
            f"{INDENT}{r['name']}  {r['container_id'] or '-'}  {r['host']}:{r['port']}  state {r['state']}, "
            f"{ready}  restarts {r['restarts']}  age {ago(r['started_at'])}{reason}"
        )
    lines.append("decisions:" if described["decisions"] else "decisions: none yet")
    for d in described["decisions"]:
        lines.append(
            f"{INDENT}{clock(d['timestamp'])}  {d['from_replicas']} -> {d['to_replicas']}  {d['reason']}"
        )
    return lines

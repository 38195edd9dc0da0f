"""`orchestry nodes` and `orchestry node drain|activate NODE`."""

from __future__ import annotations

import argparse
import time
from typing import Any

from core.units import readable_memory
from orchestry_tui.cli import output
from orchestry_tui.client.http import ApiClient, path_part

POLL_SECONDS = 0.5
NODE_COLUMNS = (
    "ID",
    "HOSTNAME",
    "ADDRESS",
    "ROLE",
    "STATE",
    "AVAILABILITY",
    "TASKS",
    "CPU",
    "MEMORY",
    "NOTE",
)


def _size(value: int | None) -> str:
    return "-" if value is None else readable_memory(value)


def _cpu(node: dict[str, Any]) -> str:
    """Use of this installation's replicas over the node's cores, e.g. '12% of 2'."""
    cores = "-" if node["cpu_cores"] is None else f"{node['cpu_cores']:g}"
    return f"{output.percent(node['cpu_percent'])} of {cores}"


def _memory(node: dict[str, Any]) -> str:
    reserved = node["memory_reserved_bytes"]
    if reserved:
        return f"{_size(reserved)} reserved of {_size(node['memory_bytes'])}"
    return _size(node["memory_bytes"])


def node_rows(nodes: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            n["id"][:12],
            n["hostname"],
            n["address"],
            n["role"] + (" (leader)" if n["leader"] else ""),
            n["state"],
            n["availability"],
            n["tasks"],
            _cpu(n),
            _memory(n),
            n["reason"] or "",
        ]
        for n in nodes
    ]


def nodes(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.get("/api/v1/nodes")
    if getattr(args, "format", "table") == "json":
        output.print_json(answer)
        return 0
    output.print_table(NODE_COLUMNS, node_rows(answer["nodes"]))
    return 0


def _find(client: ApiClient, node_id: str) -> dict[str, Any] | None:
    return next((n for n in client.get("/api/v1/nodes")["nodes"] if n["id"] == node_id), None)


def node(client: ApiClient, args: argparse.Namespace) -> int:
    answer = client.post(f"/api/v1/nodes/{path_part(args.node)}/{args.action}")
    as_json = getattr(args, "format", "table") == "json"
    target = answer["node"]
    if args.action == "activate":
        if as_json:
            output.print_json(answer)
        else:
            output.say(f"node {target['hostname']} is active: it takes new replicas again")
        return 0
    if not as_json:
        output.say(
            f"draining node {target['hostname']}: {answer['moving']} replica(s) move to other nodes first"
            + (f" ({', '.join(answer['apps'])})" if answer["apps"] else "")
        )
    if args.no_wait:
        if as_json:
            output.print_json(answer)
        return 0
    started = time.monotonic()
    deadline = started + args.timeout
    while True:
        current = _find(client, target["id"])
        if current is not None and current["availability"] == "drain":
            break
        if time.monotonic() >= deadline:
            left = current["tasks"] if current else "?"
            output.error(
                f"node {target['hostname']} is not drained after {args.timeout:g} s ({left} replica(s) "
                "left): see `orchestry events --type cluster`"
            )
            return 1
        time.sleep(POLL_SECONDS)
    if as_json:
        output.print_json({**answer, "node": current, "seconds": round(time.monotonic() - started, 2)})
    else:
        output.say(f"node {target['hostname']} drained in {time.monotonic() - started:.1f} s")
    return 0

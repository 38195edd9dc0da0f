"""``orchestry backtest APP``: what the current and a candidate scaling policy would have done over the
app's recorded load (or a synthetic trace), as a summary table and a chart of both replica curves."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from core.documents import MAX_DOCUMENT_BYTES, DocumentError, read_document
from orchestry_tui.cli import output
from orchestry_tui.client.http import ApiClient, path_part

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# The figure drawn under the replica curves: the first with data, in this order.
CHART_LOAD = (("rps", "requests/s"), ("cpu_percent", "CPU %"), ("active_connections", "connections"))


class BadArgument(Exception):
    """A flag's value the daemon need not see: said in one line, exit code 1."""


def since_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise BadArgument(f"--since {text!r} is not a duration: write e.g. 90m, 6h or 2d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _scalar(text: str) -> Any:
    try:
        return read_document(text, "--set")
    except DocumentError:
        return text


def policy_changes(policy_file: str | None, settings: list[str] | None) -> dict[str, Any] | None:
    """The candidate's scaling keys from ``--policy FILE`` (scaling keys, or an app document whose
    ``scaling`` section is used) or from ``--set KEY=VALUE`` flags; the daemon validates them."""
    if policy_file is not None:
        path = Path(policy_file)
        try:
            if path.stat().st_size > MAX_DOCUMENT_BYTES:  # refused as the door would, without reading it
                raise BadArgument(
                    f"--policy {path}: {path.stat().st_size} bytes long: keep it under "
                    f"{MAX_DOCUMENT_BYTES} bytes (a file of scaling keys is a few lines)"
                )
            text = path.read_text()
        except OSError as exc:
            raise BadArgument(
                f"--policy: cannot read {path}: {exc.strerror or exc}: check the path"
            ) from None
        try:
            document = read_document(text, f"--policy {path}")  # the guarded door of every document
        except DocumentError as exc:
            raise BadArgument(str(exc)) from None
        if isinstance(document, dict) and isinstance(document.get("scaling"), dict):
            document = document["scaling"]
        if not isinstance(document, dict):
            raise BadArgument(
                f"--policy {path} must hold scaling keys (e.g. maxReplicas: 8) or an app document with a "
                "scaling section"
            )
        return document
    if not settings:
        return None
    changes: dict[str, Any] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadArgument(f"--set {item!r} must be KEY=VALUE, e.g. --set maxReplicas=8")
        changes[key.strip()] = _scalar(value)
    return changes


def run(client: ApiClient, args: argparse.Namespace) -> int:
    try:
        body: dict[str, Any] = {}
        changes = policy_changes(args.policy, args.set)
        if changes is not None:
            body["policy"] = changes
        since = since_seconds(args.since)
        if since is not None:
            body["since"] = since
        if args.trace:
            body["trace"] = args.trace
    except BadArgument as exc:
        output.error(str(exc))
        return 1
    answer = client.post(f"/api/v1/apps/{path_part(args.name)}/backtest", body)
    if getattr(args, "format", "table") == "json":
        output.print_json(answer)
        return 0
    print_comparison(answer)
    output.say(chart(answer))
    output.say(f"model: {answer['model']}")
    return 0


SUMMARY_ROWS = (
    ("scale events (out/in)", lambda s: f"{s['scale_events']} ({s['scale_outs']}/{s['scale_ins']})"),
    ("replica-minutes", lambda s: f"{s['replica_minutes']:.1f}"),
    ("under-provisioned min", lambda s: _under(s)),
    ("peak replicas", lambda s: str(s["peak_replicas"])),
    ("flaps", lambda s: f"{s['flaps']} (within {s['flap_horizon_seconds']:.0f} s)"),
)


def _under(summary: dict[str, Any]) -> str:
    by_metric = summary["under_provisioned_by_metric"]
    detail = ", ".join(f"{k} {v:.1f}" for k, v in by_metric.items())
    return f"{summary['under_provisioned_minutes']:.1f}" + (f" ({detail})" if detail else "")


def _changed_keys(answer: dict[str, Any]) -> list[str]:
    current, candidate = answer["current"]["policy"], answer["candidate"]["policy"]
    return [k for k in candidate if candidate.get(k) != current.get(k)]


def print_comparison(answer: dict[str, Any]) -> None:
    current, candidate = answer["current"], answer["candidate"]
    changed = _changed_keys(answer)
    rows = [(label, show(current["summary"]), show(candidate["summary"])) for label, show in SUMMARY_ROWS]
    rows += [(key, current["policy"].get(key), candidate["policy"].get(key)) for key in changed]
    minutes = answer["samples"] and (answer["end"] - answer["start"]) / 60
    source = answer["source"].replace("trace:", "synthetic trace ")
    output.print_table(
        ("", "CURRENT", "CANDIDATE"),
        rows,
        title=f"{answer['app']}: {answer['samples']} periods, {minutes:.0f} min of {source}",
    )
    if not changed:
        output.say(
            "no candidate given (--policy FILE or --set KEY=VALUE): both columns are the current policy"
        )


def chart(answer: dict[str, Any], width: int = 100, height: int = 22) -> str:
    """Both replica curves over the recorded load, as plotext text (no colours: fits any terminal)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    start = answer["start"] or 0.0
    for label, run, marker in (
        ("current", answer["current"], "dot"),
        ("candidate", answer["candidate"], "x"),
    ):
        points = run["replicas"]
        if points:
            plt.plot(
                [(t - start) / 60 for t, _ in points],
                [v for _, v in points],
                label=f"{label} replicas",
                marker=marker,
            )
    name, title = next(((k, t) for k, t in CHART_LOAD if answer["load"].get(k)), (None, ""))
    if name is not None:
        points = answer["load"][name]
        plt.plot(
            [(t - start) / 60 for t, _ in points],
            [v for _, v in points],
            label=title,
            marker="braille",
            yside="right",
        )
        plt.ylabel(title, yside="right")
    plt.ylabel("replicas")
    plt.xlabel("minutes from the first record")
    plt.title(f"{answer['app']}: replicas over the recorded {title or 'load'}")
    text = plt.build()
    plt.clear_figure()
    return _ANSI.sub("", str(text))

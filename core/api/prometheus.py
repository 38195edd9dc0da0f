"""Prometheus / OpenMetrics text exposition for ``GET /metrics``.

Written by hand rather than with prometheus_client: the figures already live in the engine's windows,
so all we need is a dozen gauge lines per scrape; prometheus_client would add a dependency and a
process-global registry that fights with several engines in one test process.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(frozen=True)
class AppSample:
    name: str
    desired_replicas: int
    ready_replicas: int
    rps: float
    p95_latency_ms: float
    cpu_percent: float
    memory_percent: float
    scaling_decisions: int


# (metric name, type, help, AppSample attribute)
_APP_GAUGES = (
    ("orchestry_app_replicas_desired", "Replicas the app should run", "desired_replicas"),
    (
        "orchestry_app_replicas_ready",
        "Replicas that pass their health check and take traffic",
        "ready_replicas",
    ),
    ("orchestry_app_requests_per_second", "Requests per second over the scaling window", "rps"),
    ("orchestry_app_latency_p95_milliseconds", "95th percentile upstream latency (ms)", "p95_latency_ms"),
    ("orchestry_app_cpu_percent", "Mean CPU of the app's replicas, percent of one core", "cpu_percent"),
    (
        "orchestry_app_memory_percent",
        "Mean memory of the app's replicas, percent of the limit",
        "memory_percent",
    ),
)


def wants_exposition(accept: str) -> bool:
    accept = accept.lower()
    return "text/plain" in accept or "application/openmetrics-text" in accept


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept.lower()


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def render(apps: Iterable[AppSample], is_leader: bool, term: int, openmetrics: bool = False) -> str:
    apps = sorted(apps, key=lambda a: a.name)
    lines: list[str] = []
    for metric, help_text, attribute in _APP_GAUGES:
        lines.append(f"# HELP {metric} {help_text}")
        lines.append(f"# TYPE {metric} gauge")
        for app in apps:
            lines.append(f'{metric}{{app="{_label_value(app.name)}"}} {_number(getattr(app, attribute))}')

    # OpenMetrics names the counter family without ``_total``; the 0.0.4 text format names it with.
    family = "orchestry_scaling_decisions" if openmetrics else "orchestry_scaling_decisions_total"
    lines.append(f"# HELP {family} Scaling decisions that changed an app's replica count")
    lines.append(f"# TYPE {family} counter")
    for app in apps:
        lines.append(
            f'orchestry_scaling_decisions_total{{app="{_label_value(app.name)}"}} {app.scaling_decisions}'
        )

    lines.append("# HELP orchestry_leader Whether this node holds the leader lease (1) or not (0)")
    lines.append("# TYPE orchestry_leader gauge")
    lines.append(f"orchestry_leader {1 if is_leader else 0}")
    lines.append("# HELP orchestry_leader_term Term of the newest leader lease this node knows")
    lines.append("# TYPE orchestry_leader_term gauge")
    lines.append(f"orchestry_leader_term {term}")
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"

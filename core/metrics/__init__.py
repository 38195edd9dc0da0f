"""Metrics: container stats, nginx access-log traffic and the rolling windows the scaler reads."""

from core.metrics.accesslog import AccessLogTailer, AccessRecord, parse_line
from core.metrics.collector import MetricsCollector, ReplicaTarget
from core.metrics.stats import StatsSampler
from core.metrics.window import MetricWindow, ReplicaMetrics, RollingMetrics

__all__ = [
    "AccessLogTailer",
    "AccessRecord",
    "MetricWindow",
    "MetricsCollector",
    "ReplicaMetrics",
    "ReplicaTarget",
    "RollingMetrics",
    "StatsSampler",
    "parse_line",
]

"""Counters, gauges and histograms for ``GET /metrics``, and their Prometheus / OpenMetrics text.

Events are counted where they happen (a request in the access log, a failed probe, a reload, a scaling
decision) through the instruments of ``core.metrics.instruments``; gauges that describe the present
(replicas desired and ready, leadership, the process's CPU and memory) are built at scrape time.

Written here rather than with prometheus_client: a scrape needs a few dozen families, and
prometheus_client's process-global default registry would also collect its own process/platform
collectors under names we want to control; this module is ~200 lines with no dependency.

Cardinality is bounded by construction: label values are app names (registered apps only; a deleted
app's series are dropped by ``forget``), replica slots (at most ``MAX_REPLICAS`` per app), status
classes (1xx-5xx), scaling directions and metric names. On top of that each family holds at most
``MAX_SERIES`` label sets; an observation that would add one more is dropped and counted in
``orchestry_metrics_series_dropped_total``, so a bug can never grow memory or a scrape without limit.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

MAX_SERIES = 5000
LabelValues = tuple[str, ...]

# Latencies of web requests: 5 ms to 10 s, the usual Prometheus client defaults.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A reconcile pass: ~1 ms when nothing changes, seconds when it starts replicas, up to its timeouts.
PASS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# A lease renewal: one UPDATE, ~1-10 ms; the leader steps down when it takes about TTL × 0.8 (≥ 2.4 s).
LEASE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class Family:
    """One metric family: a name, a help line, label names and one value per label set."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._values: dict[LabelValues, Any] = {}
        self.dropped = 0

    def _key(self, labels: dict[str, object]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _room_for(self, key: LabelValues) -> bool:
        if key in self._values or len(self._values) < MAX_SERIES:
            return True
        self.dropped += 1
        return False

    def forget(self, label: str, value: str) -> None:
        """Drop every series whose ``label`` is ``value`` (an app was deleted)."""
        if label not in self.labelnames:
            return
        index = self.labelnames.index(label)
        with self._lock:
            for key in [k for k in self._values if k[index] == value]:
                del self._values[key]

    def keep_only(self, label: str, values: set[str]) -> None:
        """Drop every series whose ``label`` is none of ``values`` (apps deleted while another node
        led, so this node's ``forget`` never ran)."""
        if label not in self.labelnames:
            return
        index = self.labelnames.index(label)
        with self._lock:
            for key in [k for k in self._values if k[index] not in values]:
                del self._values[key]

    def samples(self, openmetrics: bool) -> list[str]:
        raise NotImplementedError

    def render(self, openmetrics: bool) -> list[str]:
        # OpenMetrics names a counter family without its _total suffix; the 0.0.4 format with it.
        family = self.name.removesuffix("_total") if openmetrics and self.kind == "counter" else self.name
        return [f"# HELP {family} {self.help}", f"# TYPE {family} {self.kind}", *self.samples(openmetrics)]


class Counter(Family):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        super().__init__(name, help_text, labelnames)
        if not self.labelnames:
            self._values[()] = 0.0  # its only series, at 0 from the start (see ``start``)

    def start(self, **labels: object) -> None:
        """Export this label set at 0 until it is counted: a series born with its first event hides that
        event from ``increase()`` and ``rate()``, which need a sample before it."""
        key = self._key(labels)
        with self._lock:
            if key not in self._values and self._room_for(key):
                self._values[key] = 0.0

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            if self._room_for(key):
                self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: object) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self, openmetrics: bool) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class Gauge(Family):
    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            if self._room_for(key):
                self._values[key] = float(value)

    def samples(self, openmetrics: bool) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in items]


class ScrapeCounter(Gauge):
    """A counter whose value is read at scrape time (process CPU seconds): set, not incremented."""

    kind = "counter"


class Histogram(Family):
    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = ()
    ) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets or REQUEST_BUCKETS))
        if not self.labelnames:
            self._values[()] = ([0] * (len(self.buckets) + 1), [0.0])  # at 0 from the start, as counters
        # per label set: ([count per bucket (not cumulative)..., +Inf count], [sum])

    def observe(self, value: float, **labels: object) -> None:
        self.observe_many((value,), **labels)

    def observe_many(self, values: Iterable[float], **labels: object) -> None:
        """Each of ``values`` observed under the same labels (one label check and lock for them all)."""
        key = self._key(labels)
        buckets = self.buckets
        with self._lock:
            if not self._room_for(key):
                return
            counts, total = self._values.setdefault(key, ([0] * (len(buckets) + 1), [0.0]))
            for value in values:
                # The first bound ≥ value (Prometheus buckets are "le"); past the last one, +Inf.
                counts[bisect_left(buckets, value)] += 1
                total[0] += value

    def count(self, **labels: object) -> int:
        found = self._values.get(self._key(labels))
        return sum(found[0]) if found else 0

    def samples(self, openmetrics: bool) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), s[0])) for k, (c, s) in self._values.items())
        lines: list[str] = []
        for key, (counts, total) in items:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                le = f'le="{_number(bound)}"' if not math.isinf(bound) else 'le="+Inf"'
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {running}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {running}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(total)}")
        return lines


class Registry:
    """The families one process counts into; rendered together with scrape-time families."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}

    def _add(self, family: Family) -> None:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is registered twice")
        self._families[family.name] = family

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        counter = Counter(name, help_text, labelnames)
        self._add(counter)
        return counter

    def histogram(
        self, name: str, help_text: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = ()
    ) -> Histogram:
        histogram = Histogram(name, help_text, labelnames, buckets)
        self._add(histogram)
        return histogram

    def families(self) -> list[Family]:
        return list(self._families.values())

    def forget(self, label: str, value: str) -> None:
        for family in self._families.values():
            family.forget(label, value)

    def keep_only(self, label: str, values: set[str]) -> None:
        for family in self._families.values():
            family.keep_only(label, values)

    def dropped_series(self) -> int:
        return sum(f.dropped for f in self._families.values())


def render(families: Iterable[Family], openmetrics: bool = False) -> str:
    lines: list[str] = []
    for family in sorted(families, key=lambda f: f.name):
        lines.extend(family.render(openmetrics))
    if openmetrics:
        lines.append("# EOF")
    return "\n".join(lines) + "\n"

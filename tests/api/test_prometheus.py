"""Prometheus text exposition: parseable, one sample per app per metric, leader and term."""

from __future__ import annotations

from core.api.prometheus import AppSample, render, wants_exposition, wants_openmetrics


def sample(name: str) -> AppSample:
    return AppSample(name, 3, 2, 12.5, 80.0, 40.0, 10.0, 4)


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_exposition_has_every_app_figure_leader_and_term() -> None:
    text = render([sample("web"), sample("api")], is_leader=True, term=7)
    values = _samples(text)
    assert values['orchestry_app_replicas_desired{app="web"}'] == 3
    assert values['orchestry_app_replicas_ready{app="api"}'] == 2
    assert values['orchestry_app_requests_per_second{app="web"}'] == 12.5
    assert values['orchestry_app_latency_p95_milliseconds{app="web"}'] == 80
    assert values['orchestry_app_cpu_percent{app="web"}'] == 40
    assert values['orchestry_app_memory_percent{app="web"}'] == 10
    assert values['orchestry_scaling_decisions_total{app="web"}'] == 4
    assert values["orchestry_leader"] == 1 and values["orchestry_leader_term"] == 7
    assert "# TYPE orchestry_scaling_decisions_total counter" in text
    assert text.endswith("\n") and "# EOF" not in text


def test_openmetrics_variant_ends_with_eof_and_names_counter_family() -> None:
    text = render([], is_leader=False, term=0, openmetrics=True)
    assert text.rstrip().endswith("# EOF")
    assert "# TYPE orchestry_scaling_decisions counter" in text
    assert "orchestry_leader 0" in text


def test_content_negotiation() -> None:
    assert wants_exposition("text/plain; version=0.0.4")
    assert wants_exposition("application/openmetrics-text; version=1.0.0")
    assert wants_openmetrics("application/openmetrics-text")
    assert not wants_exposition("application/json")
    assert not wants_exposition("")

"""Prometheus text exposition: base units, _total counters, cumulative histograms, bounded series,
accepted by promtool (the Debian prometheus package's linter)."""

from __future__ import annotations

import subprocess

import pytest

from core.metrics import instruments
from core.metrics.exposition import (
    AppSample,
    exposed_series,
    render_exposition,
    wants_exposition,
    wants_openmetrics,
)
from core.metrics.registry import MAX_SERIES, Counter, Histogram, Registry, render


def sample(name: str) -> AppSample:
    return AppSample(name, 3, 2, 12.5, 80.0, 40.0, 10.0)


def _samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            found[key] = float(value)
    return found


def test_scrape_time_gauges_are_in_base_units() -> None:
    values = _samples(render_exposition([sample("web"), sample("api")], is_leader=True, term=7))
    assert values['orchestry_app_replicas_desired{app="web"}'] == 3
    assert values['orchestry_app_replicas_ready{app="api"}'] == 2
    assert values['orchestry_app_window_requests_per_second{app="web"}'] == 12.5
    assert values['orchestry_app_window_latency_p95_seconds{app="web"}'] == 0.08
    assert values['orchestry_app_window_cpu_ratio{app="web"}'] == 0.4
    assert values['orchestry_app_window_memory_ratio{app="web"}'] == 0.1
    assert values["orchestry_is_leader"] == 1 and values["orchestry_leader_term"] == 7
    assert values["process_cpu_seconds_total"] > 0 and values["process_resident_memory_bytes"] > 1e6


def test_counted_events_appear_as_total_counters_and_cumulative_histograms() -> None:
    app = "prom-unit"
    instruments.REQUESTS.inc(app=app, status_class="2xx")
    instruments.REQUESTS.inc(app=app, status_class="5xx")
    for seconds in (0.004, 0.02, 0.02, 30.0):
        instruments.REQUEST_DURATION.observe(seconds, app=app)
    text = render_exposition([], is_leader=False, term=0)
    values = _samples(text)
    assert values[f'orchestry_app_requests_total{{app="{app}",status_class="5xx"}}'] == 1
    assert "# TYPE orchestry_app_requests_total counter" in text
    bucket = "orchestry_app_request_duration_seconds_bucket"
    assert values[f'{bucket}{{app="{app}",le="0.005"}}'] == 1
    assert values[f'{bucket}{{app="{app}",le="0.025"}}'] == 3
    assert values[f'{bucket}{{app="{app}",le="10"}}'] == 3
    assert values[f'{bucket}{{app="{app}",le="+Inf"}}'] == 4
    assert values[f'orchestry_app_request_duration_seconds_count{{app="{app}"}}'] == 4
    assert values[f'orchestry_app_request_duration_seconds_sum{{app="{app}"}}'] == pytest.approx(30.044)
    instruments.forget_app(app)
    assert app not in render_exposition([], is_leader=False, term=0)


def test_observed_together_or_one_by_one_a_histogram_counts_alike() -> None:
    """The access log's requests are observed in a batch per app: the same buckets (a value equal to
    a bound counts in it, "le"), count and sum as observing each."""
    values = [0.0, 0.005, 0.0050001, 0.025, 2.5, 10.0, 10.5, 1e9]
    one, many = "prom-one", "prom-many"
    for value in values:
        instruments.REQUEST_DURATION.observe(value, app=one)
    instruments.REQUEST_DURATION.observe_many(values, app=many)
    samples = _samples(render_exposition([], is_leader=False, term=0))
    ones = {k.replace(one, "X"): v for k, v in samples.items() if f'"{one}"' in k}
    manys = {k.replace(many, "X"): v for k, v in samples.items() if f'"{many}"' in k}
    assert ones == manys and ones
    bucket = "orchestry_app_request_duration_seconds_bucket"
    assert manys[f'{bucket}{{app="X",le="0.005"}}'] == 2
    assert manys[f'{bucket}{{app="X",le="10"}}'] == 6
    assert manys[f'{bucket}{{app="X",le="+Inf"}}'] == 8
    instruments.forget_app(one)
    instruments.forget_app(many)


def test_openmetrics_names_counter_families_without_total_and_ends_with_eof() -> None:
    text = render_exposition([], is_leader=False, term=0, openmetrics=True)
    assert text.rstrip().endswith("# EOF")
    assert "# TYPE orchestry_scaling_decisions counter" in text
    assert "orchestry_is_leader 0" in text


def test_promtool_accepts_the_page() -> None:
    instruments.SCALING_DECISIONS.inc(app="prom-lint", direction="up", metric="rps")
    instruments.RECONCILE_DURATION.observe(0.2)
    text = render_exposition([sample("prom-lint")], is_leader=True, term=1)
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    instruments.forget_app("prom-lint")


def test_a_family_holds_at_most_max_series_label_sets() -> None:
    counter = Counter("t_things_total", "things", ("app",))
    for index in range(MAX_SERIES + 10):
        counter.inc(app=f"a{index}")
    assert len(counter.samples(False)) == MAX_SERIES and counter.dropped == 10
    counter.inc(app="a0")  # an existing series still counts
    assert counter.value(app="a0") == 2


def test_registry_refuses_bad_names_labels_and_duplicates() -> None:
    registry = Registry()
    registry.counter("t_ok_total", "ok")
    with pytest.raises(ValueError, match="registered twice"):
        registry.counter("t_ok_total", "ok")
    with pytest.raises(ValueError, match="_total"):
        Counter("t_bad", "no suffix")
    histogram = Histogram("t_seconds", "h", ("app",), (0.1, 1.0))
    with pytest.raises(ValueError, match="takes labels"):
        histogram.observe(0.5, slot=1)
    assert render([histogram]).startswith("# HELP t_seconds h\n# TYPE t_seconds histogram")


def test_exposed_series_lists_counters_histogram_parts_and_scrape_gauges() -> None:
    series = exposed_series()
    assert series["orchestry_app_requests_total"] == ("app", "status_class")
    assert series["orchestry_app_request_duration_seconds_bucket"] == ("app", "le")
    assert "orchestry_app_replicas_ready" in series and "process_cpu_seconds_total" in series


def test_content_negotiation() -> None:
    assert wants_exposition("text/plain; version=0.0.4")
    assert wants_exposition("application/openmetrics-text; version=1.0.0")
    assert wants_openmetrics("application/openmetrics-text")
    assert not wants_exposition("application/json")
    assert not wants_exposition("")


def test_build_info_names_the_version_each_node_runs() -> None:
    """A rolling upgrade of a cluster leaves nodes on different versions: ``count by (version)
    (orchestry_build_info) > 1`` is how an SRE finds them."""
    from core import __version__

    values = _samples(render_exposition([], is_leader=False, term=0))
    assert values[f'orchestry_build_info{{version="{__version__}"}}'] == 1


def test_the_apps_load_balancer_being_down_is_on_the_page() -> None:
    """Every app is unreachable while the apps' nginx is down: the leader, which drives it, says so."""
    running = _samples(render_exposition([], is_leader=True, term=1, nginx={"running": True}))
    down = _samples(render_exposition([], is_leader=True, term=1, nginx={"running": False}))
    assert running["orchestry_nginx_up"] == 1 and down["orchestry_nginx_up"] == 0
    assert "orchestry_nginx_up" not in _samples(render_exposition([], is_leader=False, term=1))


def test_open_files_can_be_compared_with_the_limit() -> None:
    """``process_open_fds / process_max_fds > 0.8`` is the usual alert before a controller runs out of
    file descriptors (sockets to Docker, nginx, PostgreSQL, API clients): the limit was not exported."""
    import resource

    values = _samples(render_exposition([], is_leader=False, term=0))
    assert values["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert 0 < values["process_open_fds"] < values["process_max_fds"]


def test_the_window_latency_says_what_it_measures() -> None:
    """The scaler's p95 is nginx's $request_time (what a client waits, nginx included), the same figure
    as orchestry_app_request_duration_seconds: its help said "upstream latency", which is a different
    nginx field (the replica's time alone), so an SRE comparing the two would think one is wrong."""
    text = render_exposition([sample("web")], is_leader=True, term=1)
    help_line = next(
        line for line in text.splitlines() if line.startswith("# HELP orchestry_app_window_latency_p95")
    )
    assert "$request_time" in help_line and "upstream" not in help_line

"""/metrics of a real daemon serving a real app under traffic: promtool accepts the page, the counted
events are there, and a real Prometheus server (Debian's package) scrapes it and answers PromQL."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Daemon, start_daemon, stop_daemon
from tests.cli.test_cli_commands import wait_ready
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port

TEXT = {"Accept": "text/plain; version=0.0.4"}
RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "orchestry-alerts.yml"
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def _get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> str:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.read().decode()


class Traffic:
    """Requests through the app's load balancer until stopped, some of them 404s."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in ("", "health", "no-such-page"):
                try:
                    _get(f"{self.base}{path}", timeout=5)
                except OSError:
                    pass  # a 404 is an answer nginx logs: that is the point
                self.sent += 1
            self._stop.wait(0.05)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon of this module's own: its counters (scaling decisions, reloads) count this module's
    actions only, not those of the other modules that share one."""
    running = start_daemon(tmp_path_factory.mktemp("daemon"))
    try:
        yield running
    finally:
        stop_daemon(running)


@pytest.fixture(scope="module")
def served_app(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    name = unique_name("prom")
    path = tmp_path_factory.mktemp("prom") / "app.yml"
    path.write_text(yaml.safe_dump(demo_app(name)))
    daemon.ok("apply", str(path))
    daemon.ok("scale", name, "2")
    wait_ready(daemon, name, 2)
    yield name
    daemon.ok("delete", name, "-f")


def _value(page: str, series: str) -> float:
    for line in page.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_promtool_accepts_a_real_daemons_page_with_traffic(daemon: Daemon, served_app: str) -> None:
    with Traffic(f"http://{daemon.lb}/{served_app}/") as traffic:
        deadline = time.monotonic() + 60
        page = ""
        while time.monotonic() < deadline:
            page = _get(f"{daemon.url}/metrics", TEXT)
            ok = _value(page, f'orchestry_app_requests_total{{app="{served_app}",status_class="2xx"}}')
            missing = _value(page, f'orchestry_app_requests_total{{app="{served_app}",status_class="4xx"}}')
            if ok > 0 and missing > 0:
                break
            time.sleep(0.5)
    assert traffic.sent > 0
    assert _value(page, f'orchestry_app_requests_total{{app="{served_app}",status_class="4xx"}}') > 0, page
    assert _value(page, f'orchestry_app_request_duration_seconds_count{{app="{served_app}"}}') > 0
    assert _value(page, f'orchestry_app_replicas_ready{{app="{served_app}"}}') == 2
    assert _value(page, f'orchestry_replica_requests_total{{app="{served_app}",slot="1"}}') > 0
    direction = f'app="{served_app}",direction="up",metric="manual"'
    assert _value(page, f"orchestry_scaling_decisions_total{{{direction}}}") == 1
    assert _value(page, "orchestry_nginx_reloads_total") >= 1
    assert _value(page, "orchestry_reconcile_duration_seconds_count") > 0
    assert _value(page, "orchestry_is_leader") == 1 and _value(page, "process_resident_memory_bytes") > 1e6
    assert _value(page, 'orchestry_leader_changes_total{state="leader"}') >= 1  # won its first term
    assert _value(page, "orchestry_leader_term") >= 1 and _value(page, "process_cpu_seconds_total") > 0
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=page, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert _get(f"{daemon.url}/metrics", OPENMETRICS).rstrip().endswith("# EOF")
    assert json.loads(_get(f"{daemon.url}/metrics"))["apps"]["total"] >= 1  # 1.0 clients: JSON


@pytest.fixture
def prometheus(daemon: Daemon, tmp_path: Path) -> Iterator[str]:
    """A Prometheus server in its own temp dir, on 127.0.0.1, scraping the daemon every second."""
    binary = shutil.which("prometheus")
    assert binary, "install Debian's prometheus package (scripts/bootstrap.sh does)"
    port = free_port()
    target = daemon.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    shutil.copy(RULES, tmp_path / RULES.name)
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [RULES.name],
                "scrape_configs": [{"job_name": "orchestry", "static_configs": [{"targets": [target]}]}],
            }
        )
    )
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _query(prometheus: str, promql: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        answer = json.loads(_get(url))
    except OSError:
        return []  # not up yet
    return answer["data"]["result"] if answer.get("status") == "success" else []


def test_a_real_prometheus_scrapes_the_daemon_and_answers_promql(
    daemon: Daemon, served_app: str, prometheus: str
) -> None:
    rate = f'sum(rate(orchestry_app_requests_total{{app="{served_app}"}}[5s])) > 0'
    with Traffic(f"http://{daemon.lb}/{served_app}/"):
        deadline = time.monotonic() + 90
        result: list[dict] = []
        while time.monotonic() < deadline and not result:
            result = _query(prometheus, rate)
            time.sleep(1)
    assert result, f"Prometheus never answered {rate!r} with a value"
    assert float(result[0]["value"][1]) > 0
    targets = json.loads(_get(f"{prometheus}/api/v1/targets"))["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"], targets
    buckets = f'orchestry_app_request_duration_seconds_bucket{{app="{served_app}"}}'
    p95 = _query(prometheus, f"histogram_quantile(0.95, sum by (le) (rate({buckets}[10s])))")
    assert p95 and 0 <= float(p95[0]["value"][1]) < 10
    ready = _query(prometheus, f'orchestry_app_replicas_ready{{app="{served_app}"}}')
    assert ready and float(ready[0]["value"][1]) == 2


def test_the_example_alert_rules_evaluate_on_a_real_daemons_page(
    daemon: Daemon, served_app: str, prometheus: str
) -> None:
    """examples/prometheus/orchestry-alerts.yml loaded by a real Prometheus scraping a real daemon: every
    rule evaluates without error on the page as served, and a healthy daemon with a healthy app fires
    nothing but the informational first election."""
    deadline = time.monotonic() + 60
    rules: list[dict] = []
    while time.monotonic() < deadline:
        try:
            groups = json.loads(_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
        except OSError:
            groups = []
        rules = [rule for group in groups for rule in group["rules"]]
        if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules):
            if _query(prometheus, 'up{job="orchestry"} == 1'):
                time.sleep(3)  # a few evaluations with the page scraped
                break
        time.sleep(1)
    groups = json.loads(_get(f"{prometheus}/api/v1/rules"))["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) >= 18
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    alerts = json.loads(_get(f"{prometheus}/api/v1/alerts"))["data"]["alerts"]
    assert [a["labels"]["alertname"] for a in alerts if a["labels"]["severity"] != "info"] == [], alerts

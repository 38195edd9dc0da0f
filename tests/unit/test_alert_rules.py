"""examples/prometheus/: the scrape config and alert rules an SRE copies. promtool (Debian's prometheus
package) accepts both, the rules' unit tests pass, and every series the rules read is one /metrics
serves (a renamed family would otherwise leave an alert that can never fire)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from core.metrics.exposition import exposed_series

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "prometheus"
RULES = EXAMPLES / "orchestry-alerts.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "install Debian's prometheus package (scripts/bootstrap.sh does)"
    return subprocess.run([binary, *args], cwd=EXAMPLES, capture_output=True, text=True, check=False)


def test_promtool_accepts_the_scrape_config_and_the_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = promtool("check", "rules", RULES.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_unit_tests_pass() -> None:
    tested = promtool("test", "rules", "orchestry-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((EXAMPLES / "orchestry-alerts.test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts - fired == set()


def test_the_rules_read_only_series_the_page_serves() -> None:
    served = set(exposed_series()) | {"up"}
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            names = set(re.findall(r"\b((?:orchestry|process)_[a-z0-9_]+|up)\b", rule["expr"]))
            assert names, rule["alert"]
            assert names <= served, f"{rule['alert']} reads {names - served}, which /metrics does not serve"


def test_the_troubleshooting_guide_names_every_alert() -> None:
    """The operator paged by an alert finds it in docs/troubleshooting.md's "An alert fired" table."""
    guide = (EXAMPLES.parents[1] / "docs" / "troubleshooting.md").read_text()
    table = guide[guide.index("## An alert fired") : guide.index("## 1. Is the service up?")]
    rules = yaml.safe_load(RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {alert for alert in alerts if f"`{alert}`" not in table} == set()

"""examples/grafana-dashboard.json: valid JSON, valid PromQL (promtool), and every query names only
series /metrics exports, with only the labels those series carry."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from core.metrics.exposition import exposed_series

DASHBOARD = Path(__file__).resolve().parents[2] / "examples" / "grafana-dashboard.json"
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every scraped series
SERIES = re.compile(r"\b((?:orchestry|process)_[a-z0-9_]+)\b(\{[^}]*\})?")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$app": ".*", "$job": ".*"}


def _expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["panels"], "the dashboard has no panel"
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(found) and len(found) >= len(dashboard["panels"])
    return found


def test_every_query_names_only_exported_series_and_their_labels() -> None:
    exported = exposed_series()
    for expr in _expressions():
        named = SERIES.findall(expr)
        assert named, f"{expr!r} names no Orchestry series"
        labels_in_query: set[str] = set(TARGET_LABELS)
        for name, selector in named:
            assert name in exported, f"{expr!r} names {name}, which /metrics does not export"
            labels_in_query |= set(exported[name])
            for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|!~|=)", selector):
                assert label in set(exported[name]) | TARGET_LABELS, f"{name} has no label {label}"
        for group in GROUPING.findall(expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels_in_query, f"{expr!r} groups by {label}, which its series lack"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = []
    for index, expr in enumerate(_expressions()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

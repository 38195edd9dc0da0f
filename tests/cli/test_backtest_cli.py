"""`orchestry backtest` against a real daemon: the comparison table, the chart, JSON, and one clear
line with exit code 1 for each kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.conftest import Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app


def registered(daemon: Daemon, tmp_path: Path) -> str:
    name = unique_name("btc")
    doc = demo_app(name)
    doc["scaling"] = {**doc["scaling"], "mode": "auto", "maxReplicas": 6}
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(path))
    return name


def test_table_and_chart_compare_both_policies(daemon: Daemon, tmp_path: Path) -> None:
    name = registered(daemon, tmp_path)
    out = daemon.ok(
        "backtest", name, "--trace", "step", "--set", "maxReplicas=2", "--set", "cooldownSeconds=60"
    )
    assert "CURRENT" in out and "CANDIDATE" in out and "synthetic trace step" in out
    assert "peak replicas" in out and "replica-minutes" in out and "under-provisioned" in out
    table_row = next(line for line in out.splitlines() if "maxReplicas" in line)
    assert "6" in table_row and "2" in table_row
    assert "current replicas" in out and "candidate replicas" in out  # the chart's legend
    assert "\x1b[" not in out
    assert "model: Load is what was served" in out

    answer = json.loads(daemon.ok("backtest", name, "--trace", "ramp", "--format", "json"))
    assert answer["source"] == "trace:ramp" and answer["candidate"] == answer["current"]


def test_a_policy_file_holds_scaling_keys_or_a_whole_app(daemon: Daemon, tmp_path: Path) -> None:
    name = registered(daemon, tmp_path)
    keys = tmp_path / "candidate.yml"
    keys.write_text("maxReplicas: 3\nscaleOutThresholdPct: 60\n")
    answer = json.loads(
        daemon.ok("backtest", name, "--trace", "spike", "--policy", str(keys), "--format", "json")
    )
    assert answer["candidate"]["policy"]["maxReplicas"] == 3
    assert answer["candidate"]["policy"]["scaleOutThresholdPct"] == 60
    app = tmp_path / "app.yml"
    app.write_text(yaml.safe_dump({**demo_app(name), "scaling": {"maxReplicas": 4}}))
    answer = json.loads(
        daemon.ok("backtest", name, "--trace", "spike", "--policy", str(app), "--format", "json")
    )
    assert answer["candidate"]["policy"]["maxReplicas"] == 4


def test_bad_input_is_one_line_and_exit_1(daemon: Daemon, tmp_path: Path) -> None:
    name = registered(daemon, tmp_path)
    cases = {
        ("--set", "maxReplica=3", "--trace", "step"): "scaling.maxReplica is not a known key",
        ("--set", "minReplicas=9", "--trace", "step"): "minReplicas",
        ("--set", "maxReplicas", "--trace", "step"): "must be KEY=VALUE",
        ("--since", "soon"): "is not a duration",
        ("--policy", str(tmp_path / "missing.yml")): "cannot read",
        (): "no recorded metric history",
    }
    for flags, message in cases.items():
        result = daemon.cli("backtest", name, *flags)
        assert result.returncode == 1, (flags, result.stdout, result.stderr)
        assert message in result.stderr, (flags, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    unknown = daemon.cli("backtest", unique_name("none"), "--trace", "step")
    assert unknown.returncode == 1 and "is not registered" in unknown.stderr

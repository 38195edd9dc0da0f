"""`orchestry spec APP > app.yml`, edit, `orchestry apply app.yml`: the shown spec has the values of
sensitive variables as "***"; applying it back used to store "***" as the value (the next replicas ran
with API_KEY=***) without a word. It is refused, naming the variable and the fix, and nothing changes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.cli.conftest import Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app


def test_applying_a_spec_with_a_redacted_value_back_is_refused_naming_the_variable(
    daemon: Daemon, tmp_path: Path
) -> None:
    name = unique_name("rt")
    doc = demo_app(name)
    doc["spec"]["environment"] = [{"name": "API_KEY", "value": "sk-live-real-value"}]
    first = tmp_path / "app.yml"
    first.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(first))
    try:
        before = daemon.json("spec", name, "--format", "json")
        shown = daemon.ok("spec", name)
        assert "sk-live-real-value" not in shown and "***" in shown
        back = tmp_path / "shown.yml"
        back.write_text(shown)
        result = daemon.cli("apply", str(back))
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "API_KEY" in result.stderr and "***" in result.stderr and "real value" in result.stderr
        assert daemon.json("spec", name, "--format", "json") == before  # not updated
    finally:
        daemon.cli("delete", name)

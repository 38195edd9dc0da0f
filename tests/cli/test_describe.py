"""``orchestry describe`` through the real CLI against a real daemon: every spec section under its own
key, found by the 1.0 guide's greps, secrets shown by reference only."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.cli.conftest import Daemon
from tests.cli.test_cli_commands import wait_ready
from tests.conftest import unique_name
from tests.integration.harness import demo_app


def _grep_after(text: str, word: str, after: int) -> str:
    """What ``orchestry describe NAME | grep -A AFTER WORD`` prints."""
    result = subprocess.run(
        ["grep", "-A", str(after), word], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"grep -A {after} {word} found nothing in:\n{text}"
    return re.sub(r" +", " ", result.stdout)  # values are aligned in columns: compare words


def test_describe_shows_every_section_the_user_wrote(daemon: Daemon, tmp_path: Path) -> None:
    secret = unique_name("creds")
    secret_value = "Pl4nted-" + secret + "-pw"
    literal_token = "lit-" + unique_name("tok")
    daemon.ok("secret", "set", secret, f"password={secret_value}")
    name = unique_name("desc")
    doc = demo_app(name)
    doc["metadata"]["labels"] = {"team": "shop"}
    doc["spec"].update(
        {
            "args": ["--verbose"],
            "resources": {"cpu": "250m", "memory": "64Mi"},
            "environment": [
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "DATABASE_PASSWORD", "source": "secret", "key": secret, "field": "password"},
                {"name": "API_TOKEN", "value": literal_token},
            ],
            "loadBalancing": "ip_hash",
        }
    )
    doc["spec"]["command"] = ["/bin/serve"]
    doc["scaling"] = {"mode": "manual", "minReplicas": 1, "maxReplicas": 4, "targetRPSPerReplica": 33}
    path = tmp_path / "desc.yml"
    path.write_text(yaml.safe_dump(doc))
    daemon.ok("register", str(path))
    daemon.ok("up", name)
    wait_ready(daemon, name, 1)
    daemon.ok("scale", name, "2")

    text = daemon.ok("describe", name)
    environment = _grep_after(text, "environment", 20)
    assert "LOG_LEVEL" in environment and "debug" in environment
    assert f"DATABASE_PASSWORD from secret {secret}.password" in environment
    assert "API_TOKEN" in environment and "***" in environment
    scaling = _grep_after(text, "scaling", 20)
    assert "targetRPSPerReplica: 33" in scaling and "maxReplicas:" in scaling and "POLICY" not in text
    resources = _grep_after(text, "resources", 5)
    assert "cpu:" in resources and "250m" in resources and "memory: 64Mi" in resources
    flat = re.sub(r" +", " ", text)
    for line in ("image: orchestry/demo:latest", "command: /bin/serve", "args: --verbose",
                 "loadBalancing: ip_hash", "terminationGracePeriodSeconds: 5", "team: shop",
                 "path: /health", "containerPort: 8080"):  # fmt: skip
        assert line in flat, f"{line!r} missing from describe:\n{text}"
    assert "1 -> 2 manual scale to 2" in _grep_after(text, "decisions", 5)
    assert f"{name}-1" in _grep_after(text, "replicas:", 3)

    described = daemon.json("describe", name)
    assert described["metadata"]["labels"] == {"team": "shop"}
    assert described["resources"] == {"cpu": "250m", "memory": "64Mi"}
    assert described["scaling"]["targetRPSPerReplica"] == 33 and "policy" in described
    assert described["healthCheck"]["path"] == "/health"
    assert described["loadBalancing"] == "ip_hash" and described["terminationGracePeriodSeconds"] == 5
    assert described["command"] == ["/bin/serve"] and described["args"] == ["--verbose"]
    by_name = {e["name"]: e for e in described["environment"]}
    assert by_name["LOG_LEVEL"]["value"] == "debug"
    assert by_name["DATABASE_PASSWORD"]["key"] == secret and "value" not in by_name["DATABASE_PASSWORD"]
    assert described["decisions"][0]["to_replicas"] == 2
    assert len(described["replicas"]) >= 1 and "spec" not in described

    for output in (text, str(described), daemon.ok("describe", name, "--show-spec")):
        assert secret_value not in output and literal_token not in output
    daemon.ok("delete", name, "-f")
    daemon.ok("secret", "rm", secret)


def test_describe_unknown_app_is_one_line(daemon: Daemon) -> None:
    result = daemon.cli("describe", "no-such-app")
    assert result.returncode == 1 and result.stdout == ""
    assert "no-such-app" in result.stderr and "Traceback" not in result.stderr

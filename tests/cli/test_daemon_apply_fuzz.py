"""`orchestry daemon --apply FILE` with a bad file: the daemon refuses to start (exit 2, bad input), says
which file and which field, shows no secret and no traceback, and stores nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from core.store import Store
from tests.api.conftest import stop_nginx_left_serving
from tests.cli.conftest import ORCHESTRY
from tests.conftest import unique_name
from tests.integration.harness import demo_app, free_port
from tests.support.spec_cases import SECRET_PASSWORD


def test_a_bad_apply_file_is_named_and_nothing_is_stored(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRY_")}
    document = demo_app(unique_name("dap"))
    document["spec"]["environment"] = [f"DB_PASSWORD={SECRET_PASSWORD}"]
    app_file = tmp_path / "app.yml"
    app_file.write_text(yaml.safe_dump(document))
    port = free_port()
    try:
        result = subprocess.run(
            [ORCHESTRY, "daemon", "--port", str(port), "--lb-listen", f"127.0.0.1:{free_port()}",
             "--state-dir", str(tmp_path / "s"), "--node-id", f"bad-{port}", "--apply", str(app_file)],
            env={**env, "HOME": str(tmp_path)}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        stop_nginx_left_serving(tmp_path / "s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and SECRET_PASSWORD not in result.stderr
    assert f"--apply {app_file}: spec.environment[0]" in result.stderr, result.stderr
    store = Store.open(f"sqlite:///{tmp_path / 's' / 'orchestry.db'}", upgrade=False)
    try:
        assert store.apps.list() == []
    finally:
        store.close()

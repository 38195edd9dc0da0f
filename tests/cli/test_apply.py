"""``orchestry apply`` against a real daemon: directories, multi-document YAML, stdin, and a bad input
that applies nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.conftest import Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app


def api(daemon: Daemon, path: str) -> Any:
    with urllib.request.urlopen(daemon.url + path, timeout=10) as response:
        return json.loads(response.read())


def registered(daemon: Daemon) -> set[str]:
    return {a["name"] for a in api(daemon, "/api/v1/apps")["apps"]}


def through_lb(daemon: Daemon, name: str) -> int:
    with urllib.request.urlopen(f"http://{daemon.lb}/{name}/", timeout=10) as response:
        return response.status


def results(answer: dict[str, Any]) -> dict[str, str]:
    return {row["app"]: row["result"] for row in answer["apps"]}


def applied(daemon: Daemon, *args: str, stdin: str | None = None) -> dict[str, Any]:
    result = daemon.cli("apply", *args, "--format", "json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_apply_directory_created_unchanged_updated(daemon: Daemon, tmp_path: Path) -> None:
    web, api_app = unique_name("apw"), unique_name("apa")
    folder = tmp_path / "apps"
    folder.mkdir()
    (folder / "web.yml").write_text(yaml.safe_dump(demo_app(web)))
    (folder / "api.json").write_text(json.dumps(demo_app(api_app)))
    (folder / "notes.txt").write_text("not an app: ignored, as kubectl ignores it")
    try:
        first = applied(daemon, str(folder), "--wait")
        assert results(first) == {web: "created", api_app: "created"}
        assert first["wait"]["complete"] is True
        for name in (web, api_app):
            assert through_lb(daemon, name) == 200

        again = daemon.ok("apply", str(folder))
        rows = {line.split()[1]: line.split()[3] for line in again.splitlines() if line.startswith("│")}
        assert rows == {web: "unchanged", api_app: "unchanged"}

        before = {r["container_id"] for r in api(daemon, f"/api/v1/apps/{web}")["replicas"]}
        changed = demo_app(web)
        changed["spec"]["environment"] = [{"name": "GREETING", "value": "hello"}]
        (folder / "web.yml").write_text(yaml.safe_dump(changed))
        third = applied(daemon, str(folder), "--wait")
        assert results(third) == {web: "updated", api_app: "unchanged"}
        # --wait returned: every replica of the changed app runs the new spec and serves.
        now = api(daemon, f"/api/v1/apps/{web}")
        assert now["ready_replicas"] == now["desired_replicas"] == 1
        assert {r["container_id"] for r in now["replicas"]}.isdisjoint(before)
        assert now["spec"]["spec"]["environment"][0]["name"] == "GREETING"
        assert through_lb(daemon, web) == 200
    finally:
        for name in (web, api_app):
            daemon.cli("delete", name, "-f")


def test_one_bad_file_applies_nothing(daemon: Daemon, tmp_path: Path) -> None:
    good, bad = unique_name("apg"), unique_name("apb")
    folder = tmp_path / "apps"
    folder.mkdir()
    (folder / "good.yml").write_text(yaml.safe_dump(demo_app(good)))
    typo = demo_app(bad)
    typo["spec"]["replicas"] = 3  # not a spec key: replicas belong to scaling
    (folder / "bad.yml").write_text(yaml.safe_dump(typo))

    result = daemon.cli("apply", str(folder))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"{folder / 'bad.yml'}, document 1 (app {bad}): spec.replicas is not a known key" in result.stderr
    assert "nothing was applied" in result.stderr
    assert registered(daemon).isdisjoint({good, bad})

    as_json = daemon.cli("apply", str(folder), "--format", "json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["apps"] == []
    assert registered(daemon).isdisjoint({good, bad})


def test_bad_inputs_name_file_document_and_fix(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("apd")
    first, second = tmp_path / "one.yml", tmp_path / "two.yml"
    first.write_text(yaml.safe_dump(demo_app(name)))
    second.write_text(yaml.safe_dump(demo_app(name)))
    duplicate = daemon.cli("apply", str(first), str(second))
    assert duplicate.returncode == 2
    assert (
        f"app '{name}' is defined twice: in {first} (document 1) and in {second} (document 1)"
        in duplicate.stderr
    )

    broken = tmp_path / "broken.yaml"
    broken.write_text("metadata:\n  name: [x\n")
    syntax = daemon.cli("apply", str(broken))
    assert syntax.returncode == 2 and f"{broken}, document 1: not valid YAML or JSON at line" in syntax.stderr

    secret_user = demo_app(name)
    secret_user["spec"]["environment"] = [
        {"name": "DB_PASSWORD", "source": "secret", "key": "no-such-secret", "field": "password"}
    ]
    missing = daemon.cli("apply", "-", stdin=yaml.safe_dump(secret_user))
    assert missing.returncode == 2
    assert "DB_PASSWORD" in missing.stderr
    assert "orchestry secret set no-such-secret password=" in missing.stderr

    absent = daemon.cli("apply", str(tmp_path / "nowhere"))
    assert absent.returncode == 2 and "no such file or directory" in absent.stderr
    assert name not in registered(daemon)


def test_multi_document_yaml_from_stdin(daemon: Daemon) -> None:
    one, two = unique_name("apm"), unique_name("apn")
    text = "---\n" + yaml.safe_dump(demo_app(one)) + "---\n" + yaml.safe_dump(demo_app(two)) + "---\n"
    try:
        answer = applied(daemon, "-", stdin=text)
        rows = {row["app"]: row for row in answer["apps"]}
        assert rows[one]["source"] == rows[two]["source"] == "<stdin>"
        assert (rows[one]["document"], rows[two]["document"]) == (1, 2)
        assert results(answer) == {one: "created", two: "created"}
        assert {one, two} <= registered(daemon)
        assert results(applied(daemon, "-", stdin=text)) == {one: "unchanged", two: "unchanged"}

        wrong = demo_app(two, scaling={"minReplicas": 5, "maxReplicas": 2})
        bad_text = yaml.safe_dump(demo_app(one)) + "---\n" + yaml.safe_dump(wrong)
        refused = daemon.cli("apply", "-", stdin=bad_text)
        assert refused.returncode == 2
        assert f"<stdin>, document 2 (app {two}): scaling" in refused.stderr
        assert api(daemon, f"/api/v1/apps/{two}")["policy"]["maxReplicas"] == 10  # nothing applied
    finally:
        for name in (one, two):
            daemon.cli("delete", name, "-f")


def test_validate_route_registers_nothing(daemon: Daemon) -> None:
    """The dry run changes nothing: validating a new app does not register it."""
    name = unique_name("apv")
    request = urllib.request.Request(
        daemon.url + "/api/v1/validate",
        data=json.dumps(demo_app(name)).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        preview = json.loads(response.read())
    assert preview["app"] == name and preview["change"] == "created" and preview["missing_secrets"] == []
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(daemon, f"/api/v1/apps/{name}")
    assert refused.value.code == 404


def test_a_missing_image_is_found_by_the_dry_run_and_applies_nothing(daemon: Daemon, tmp_path: Path) -> None:
    """One app of a directory names an image that is neither on the Docker engine nor in a registry:
    apply refused it up front, instead of registering the lot and leaving that app registered but never
    started (exit 1 after the others changed)."""
    good, bad = unique_name("aig"), unique_name("aim")
    image = f"orchestry-test/no-such-image-{bad}:1"
    folder = tmp_path / "apps"
    folder.mkdir()
    (folder / "good.yml").write_text(yaml.safe_dump(demo_app(good)))
    missing = demo_app(bad)
    missing["spec"]["image"] = image
    (folder / "missing.yml").write_text(yaml.safe_dump(missing))
    try:
        refused = daemon.cli("apply", str(folder))
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr and refused.stdout == ""
        assert (
            f"error: {folder / 'missing.yml'}, document 1 (app {bad}): spec.image '{image}' is not on this "
            "Docker engine and no registry it can reach has it: build, pull or load it (`docker images` "
            "lists the images there), or fix spec.image; or pass --allow-missing-images"
        ) in refused.stderr
        assert "nothing was applied" in refused.stderr
        assert registered(daemon).isdisjoint({good, bad})

        # Asked to go on: the others apply and start; the one whose image is missing is registered only.
        anyway = daemon.cli("apply", str(folder), "--allow-missing-images", "--format", "json")
        assert anyway.returncode == 1, anyway.stderr
        assert f"warning: {folder / 'missing.yml'}, document 1 (app {bad}): spec.image '{image}'" in (
            anyway.stderr
        )
        rows = {row["app"]: row for row in json.loads(anyway.stdout)["apps"]}
        assert rows[good]["error"] == "" and rows[good]["replicas"] == 1
        assert rows[bad]["result"] == "created" and "not started" in rows[bad]["error"]
    finally:
        for name in (good, bad):
            daemon.cli("delete", name, "-f")

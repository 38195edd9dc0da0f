"""`orchestry apply` with bad documents among good ones, against a real daemon: exit code 2, one line per
bad document naming its file, document and field, no traceback, no secret value; and nothing applied:
not the good new app, not the good change to the running app, whose replica keeps running untouched.

Cases: tests/support/spec_cases.py, one document per rule in each run (the API-level fuzz,
tests/api/test_spec_fuzz.py, covers each rule in depth; this covers the CLI door around it)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from tests.cli.conftest import Daemon
from tests.conftest import unique_name
from tests.integration.harness import demo_app
from tests.support.spec_cases import RULES, SECRET_PASSWORD, SECRET_VALUES, invalid_cases


def api(daemon: Daemon, path: str) -> Any:
    with urllib.request.urlopen(daemon.url + path, timeout=10) as response:
        return json.loads(response.read())


def state(daemon: Daemon, prior: str) -> tuple[set[str], Any, Any, list[str]]:
    """The registered names, the running app's spec and raw document, and its containers."""
    described = api(daemon, f"/api/v1/apps/{prior}")
    names = {app["name"] for app in api(daemon, "/api/v1/apps")["apps"]}
    containers = sorted(replica["container_id"] for replica in described["replicas"])
    return names, described["spec"], described["raw"], containers


@pytest.fixture(scope="module")
def prior(daemon: Daemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An app running on the daemon, a sensitive literal among its values."""
    name = unique_name("cp")
    document = demo_app(name)
    document["spec"]["environment"] = [{"name": "DB_PASSWORD", "value": SECRET_PASSWORD}]
    path = tmp_path_factory.mktemp("prior") / "prior.yml"
    path.write_text(yaml.safe_dump(document))
    daemon.ok("apply", str(path), "--wait")
    return name


# Each example is one CLI process applying 15 documents: a few examples cover the door, and a failure is
# reported as found (each assertion names its case) rather than shrunk one CLI run at a time.
@settings(max_examples=4, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(data=st.data())
def test_apply_with_bad_documents_applies_nothing_and_names_each_field(
    daemon: Daemon, prior: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    folder = tmp_path_factory.mktemp("apply")
    before = state(daemon, prior)
    assert before[3], "the running app has no replica"
    changed = demo_app(prior)  # a valid change to the running app: must not be applied either
    changed["spec"]["environment"] = [{"name": "DB_PASSWORD", "value": SECRET_PASSWORD + "-new"}]
    newcomer = demo_app(unique_name("cn"))
    good = [changed, newcomer]
    cases = [data.draw(invalid_cases(name=f"bad-{index}", rules=[rule])) for index, rule in enumerate(RULES)]
    (folder / "good.yml").write_text(yaml.safe_dump_all(good))
    # JSON: some cases hold inf/NaN, which YAML writes but JSON spells as a JavaScript literal.
    (folder / "bad.json").write_text("\n".join(json.dumps(case.document) for case in cases[:1]))
    (folder / "bad.yml").write_text(
        yaml.safe_dump_all([case.document for case in cases[1:]], allow_unicode=True)
    )

    result = daemon.cli("apply", str(folder / "good.yml"), str(folder / "bad.json"), str(folder / "bad.yml"))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert not any(secret in result.stdout + result.stderr for secret in SECRET_VALUES), result.stderr
    assert f"nothing was applied: fix the {len(cases)} problem(s) above" in result.stderr, result.stderr
    # One "error: " per problem (a refused name may hold a newline, so not one per line).
    problems = result.stderr.split("error: ")
    for index, case in enumerate(cases):
        where = "bad.json, document 1" if index == 0 else f"bad.yml, document {index}"
        mine = [problem for problem in problems if where in problem]
        assert any(case.field in problem for problem in mine), (case.what, case.field, mine or result.stderr)
    assert state(daemon, prior) == before

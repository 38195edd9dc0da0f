"""What a kubectl user types first, against a real daemon: `apply -f`, `-o json|yaml`, `--output`, a
name in the wrong case, `logs -f --until`. Each was an argparse error or a message in the API's words."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.conftest import Daemon
from tests.cli.test_cli_commands import write_app
from tests.conftest import unique_name


def test_apply_f_and_output_json_and_yaml(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("kub")
    path = write_app(tmp_path, name)
    try:
        applied = daemon.cli("apply", "-f", str(path), "-o", "json")
        assert applied.returncode == 0, applied.stderr
        assert [(row["app"], row["result"]) for row in json.loads(applied.stdout)["apps"]] == [
            (name, "created")
        ]

        listed = json.loads(daemon.ok("list", "-o", "json"))
        assert name in {app["name"] for app in listed["apps"]}
        status = yaml.safe_load(daemon.ok("status", name, "--output", "yaml"))
        assert status["name"] == name and status["desired_replicas"] == 1
        assert (
            yaml.safe_load(daemon.ok("list", "--format", "yaml"))["apps"]
            == json.loads(daemon.ok("list", "--format", "json"))["apps"]
        )

        nothing = daemon.cli("apply")
        assert nothing.returncode == 2 and "Traceback" not in nothing.stderr
        assert nothing.stderr == (
            "error: name what to apply: `orchestry apply PATH...` or `-f PATH` (a file, a directory, or -)\n"
        )
    finally:
        daemon.cli("delete", name, "-f")


def test_a_name_in_capitals_names_the_app_meant(daemon: Daemon, tmp_path: Path) -> None:
    # Letters only: digits, equal in both cases, made WEB-1 close enough to web-1 before.
    name = unique_name("kuc").translate(str.maketrans("0123456789", "ghijklmnop"))
    daemon.ok("register", str(write_app(tmp_path, name)))
    try:
        wrong = daemon.cli("status", name.upper())
        assert wrong.returncode == 1
        assert wrong.stderr == (
            f"error: app '{name.upper()}' is not registered: did you mean '{name}'? (orchestry list)\n"
        )
    finally:
        daemon.cli("delete", name, "-f")


def test_follow_with_until_is_refused_in_the_flags_words(daemon: Daemon) -> None:
    refused = daemon.cli("logs", "web", "-f", "--until", "1m")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == (
        "error: --until cannot be combined with --follow (a follow has no end): drop one of them\n"
    )


def test_register_names_the_file_and_one_replica_is_singular(daemon: Daemon, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("metadata: {name: x}\n")
    refused = daemon.cli("register", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {bad}: spec is missing"), refused.stderr  # which file

    name = unique_name("kus")
    daemon.ok("register", str(write_app(tmp_path, name)))
    try:
        assert daemon.ok("up", name) == f"{name}: 1 replica (1 started, 0 adopted)\n"
        assert daemon.ok("scale", name, "1") == f"{name}: already at 1 replica\n"
        assert daemon.ok("down", name) == f"{name}: stopped 1 container\n"
    finally:
        daemon.cli("delete", name, "-f")


def test_scale_replicas_flag_and_delete_of_several_apps(daemon: Daemon, tmp_path: Path) -> None:
    one, two, missing = unique_name("kd1"), unique_name("kd2"), unique_name("kdx")
    for name in (one, two):
        daemon.ok("register", str(write_app(tmp_path, name)))
    try:
        assert daemon.json("scale", one, "--replicas=2")["replicas"] == 2
        assert daemon.json("scale", two, "--replicas", "0")["replicas"] == 0
        neither = daemon.cli("scale", one)
        assert neither.returncode == 2
        assert (
            neither.stderr == f"error: name the replica count: `orchestry scale {one} N` or `--replicas N`\n"
        )

        partly = daemon.cli("delete", one, missing, "-f")
        assert partly.returncode == 1
        assert partly.stdout == f"deleted {one}\n"
        assert partly.stderr.startswith(f"error: app '{missing}' is not registered")
        both = json.loads(daemon.ok("delete", two, "-o", "json", "-f"))
        assert both == {"status": "deleted", "app": two}  # one name: the same answer as before
        assert one not in daemon.ok("list") and two not in daemon.ok("list")
    finally:
        for name in (one, two):
            daemon.cli("delete", name, "-f")


def test_status_without_a_name_lists_every_app(daemon: Daemon, tmp_path: Path) -> None:
    name = unique_name("kls")
    daemon.ok("register", str(write_app(tmp_path, name)))
    try:
        assert json.loads(daemon.ok("status", "-o", "json")) == json.loads(daemon.ok("list", "-o", "json"))
        assert name in daemon.ok("status")
    finally:
        daemon.cli("delete", name, "-f")


def test_a_flag_the_command_does_not_take_is_reported_by_that_command(daemon: Daemon) -> None:
    wrong = daemon.cli("delete", "web", "--now")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert wrong.stderr.startswith("usage: orchestry delete ")  # not the top level's daemon flags
    assert wrong.stderr.endswith(
        "orchestry delete: error: unrecognized arguments: --now (`orchestry delete --help` lists what it "
        "takes)\n"
    )


def test_cluster_alone_shows_the_cluster_status(daemon: Daemon) -> None:
    assert json.loads(daemon.ok("cluster", "-o", "json"))["node_id"] == daemon.node_id
    assert daemon.node_id in daemon.ok("cluster")

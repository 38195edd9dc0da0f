"""What the README shows as a file or a key works: every example app validates through the one guarded
reader and the spec parser, the README's YAML and TOML snippets are accepted, and the console keys it
lists are the console's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from core.documents import read_documents
from core.spec import parse_app_spec
from orchestry_tui.console.actions import ACTIONS, KEY_SYMBOLS
from orchestry_tui.console.layout import PANES
from orchestry_tui.console.preferences import load

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yml", ".yaml"))


def fenced(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.M | re.S)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_app_validates(path: Path) -> None:
    documents = read_documents(path.read_text(), str(path))
    assert documents, f"{path} holds no document"
    for document in documents:
        parse_app_spec(document)


def test_make_run_applies_an_example_that_exists() -> None:
    applied = re.findall(r"--apply (\S+)", (ROOT / "Makefile").read_text())
    assert applied and all((ROOT / path).is_file() for path in applied)
    assert "examples/web.yml" in README


def test_the_placement_snippet_is_a_valid_spec_part() -> None:
    (snippet,) = [block for block in fenced("yaml") if "placement:" in block]
    document = yaml.safe_load((ROOT / "examples" / "web.yml").read_text())
    document["spec"].update(yaml.safe_load(snippet)["spec"])

    spec = parse_app_spec(document)

    assert spec.container.placement is not None
    assert spec.container.placement.constraints == ["node.role==worker", "node.labels.zone!=edge"]
    assert [p.spread for p in spec.container.placement.preferences] == ["node.labels.zone"]


def test_the_console_preferences_snippet_loads_without_a_problem(tmp_path: Path) -> None:
    (snippet,) = [block for block in fenced("toml") if "[console]" in block]
    path = tmp_path / "config.toml"
    path.write_text(snippet)

    prefs = load(path)

    assert prefs.problems == []
    assert prefs.theme == "textual-light"
    assert prefs.layout.hidden == {"cluster"}
    binding_ids = {f"orchestry.{action.id}" for action in ACTIONS}
    assert set(prefs.keymap) <= binding_ids, set(prefs.keymap) - binding_ids


def test_the_binding_ids_given_as_examples_exist() -> None:
    sentence = README[README.index("Every binding id is") :].split(").", 1)[0]
    named = re.findall(r"`([a-z_.]+)`", sentence.split("for example", 1)[1])
    assert named and set(named) <= {action.id for action in ACTIONS}


def key_of(action_id: str) -> list[str]:
    action = next(a for a in ACTIONS if a.id == action_id)
    return [KEY_SYMBOLS.get(key, key) for key in action.keys.split(",")]


# The console keys of the README's quick start and key table, with the action each is said to run.
KEYS = [
    ("s", "scale"),
    ("r", "restart"),
    ("R", "restart_replica"),
    ("l", "logs"),
    ("d", "describe"),
    ("m", "mode"),
    ("u", "up"),
    ("x", "down"),
    ("/", "filter"),
    (":", "palette"),
    ("ctrl+s", "snapshot"),
    ("?", "help"),
    ("q", "quit"),
    ("Q", "quit_and_stop"),
    ("L", "step_down"),
    ("ctrl+t", "theme"),
    ("+", "taller"),
    ("-", "shorter"),
    (">", "wider"),
    ("<", "narrower"),
]


@pytest.mark.parametrize(("key", "action_id"), KEYS)
def test_a_key_the_readme_gives_runs_that_action(key: str, action_id: str) -> None:
    assert f"`{key}`" in README, f"the README no longer names the key {key}"
    assert key in key_of(action_id)


def test_the_pane_keys_are_in_the_order_the_readme_gives() -> None:
    row = re.search(r"^\| `1`…`6` \| show or hide ([a-z, ]+) \|$", README, re.M)
    assert row is not None
    assert [name.strip() for name in row.group(1).split(",")] == [title for _, _, title in PANES]
    assert [key for _, key, _ in PANES] == ["1", "2", "3", "4", "5", "6"]

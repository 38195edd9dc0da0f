"""The console's preferences in the config file's ``[console]`` table: theme, keymap and layout.

    [console]
    theme = "textual-light"

    [console.keymap]            # binding id = keys, as Textual's App.set_keymap takes them
    "orchestry.scale" = "S"

    [console.layout]            # written by the console when panes are toggled or resized
    hidden = ["cluster"]
    bottom_height = 8

The console rewrites only its own tables when it saves; every other line of the file is kept.  A bad
value is reported once (naming the key) and the defaults are used: preferences never stop the console.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestry_tui.console.layout import Layout, LayoutError

TABLE = "console"
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Preferences:
    theme: str | None = None
    keymap: dict[str, str] = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)
    problems: list[str] = field(default_factory=list)


def config_path() -> Path:
    """Where preferences are read and saved: ``ORCHESTRY_CONFIG``, else the XDG config file."""
    from core.settings import CONFIG_ENV, default_config_path

    explicit = os.environ.get(CONFIG_ENV)
    return Path(explicit).expanduser() if explicit else default_config_path()


def load(path: Path) -> Preferences:
    prefs = Preferences()
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle).get(TABLE) or {}
    except FileNotFoundError:
        return prefs
    except (OSError, tomllib.TOMLDecodeError) as exc:
        prefs.problems.append(f"{path}: console preferences not read ({exc}): fix the file")
        return prefs
    if not isinstance(table, dict):
        prefs.problems.append(f"{path}: [{TABLE}] must be a table")
        return prefs
    for key, value in table.items():
        if key == "theme":
            if isinstance(value, str) and value:
                prefs.theme = value
            else:
                prefs.problems.append(f'{path}: [console] theme must be a theme name, e.g. "textual-light"')
        elif key == "keymap":
            if isinstance(value, dict) and all(isinstance(v, str) and v for v in value.values()):
                prefs.keymap = {str(k): v for k, v in value.items()}
            else:
                prefs.problems.append(
                    f'{path}: [console.keymap] maps binding ids to keys, e.g. "orchestry.scale" = "S"'
                )
        elif key == "layout":
            try:
                prefs.layout = Layout.from_config(value if isinstance(value, dict) else {"?": value})
            except LayoutError as exc:
                prefs.problems.append(f"{path}: {exc}")
        else:
            prefs.problems.append(
                f"{path}: [console] {key!r} is not a console preference: known are theme, keymap, layout"
            )
    return prefs


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def render(prefs: Preferences) -> str:
    lines = [f"[{TABLE}]"]
    if prefs.theme:
        lines.append(f"theme = {_value(prefs.theme)}")
    if prefs.keymap:
        lines += ["", f"[{TABLE}.keymap]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in sorted(prefs.keymap.items())]
    lines += ["", f"[{TABLE}.layout]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in prefs.layout.to_config().items()]
    return "\n".join(lines) + "\n"


def without_console_tables(text: str) -> str:
    """``text`` minus the [console] and [console.*] tables (everything else kept as written)."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            name = header.group(1).strip().strip('"')
            inside = name == TABLE or name.startswith(f"{TABLE}.")
        if not inside:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + ("\n" if kept else "")


def save(path: Path, prefs: Preferences) -> None:
    """Rewrite the console's tables of ``path`` (created if missing), atomically."""
    try:
        before = path.read_text()
    except FileNotFoundError:
        before = ""
    rest = without_console_tables(before)
    text = (rest + "\n" if rest else "") + render(prefs)
    tomllib.loads(text)  # never write a file the next start cannot read
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    temporary.replace(path)

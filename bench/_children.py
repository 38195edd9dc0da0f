"""One bench measurement in a child process, run in the checkout it measures (``--tree``, ``--baseline``).

bench/fleet.py and bench/console_fleet.py measure each size in a process of its own, and can measure
another checkout beside this one.  The bench script is always this checkout's (what is measured and how
stays the same); the engine, console and every module they import come from the measured tree:

- the child's working directory is the tree: the store's migrations used to put the working directory
  first on sys.path (alembic.ini's ``prepend_sys_path = .``), so modules imported after the engine
  started came from wherever the bench was started;
- ``PYTHONPATH`` starts with the tree, and so does ``sys.path`` once the child calls :func:`enter_tree`
  (before the script's own directory, and before the editable install's finder, which points at one
  checkout whatever is measured);
- the child reports what it really ran (:func:`ran_from`): the tree its ``core`` came from, that tree's
  commit, and any project module loaded from elsewhere.  The bench prints tree and commit in the child's
  header line (:func:`ran_line`), and :func:`run_child` refuses a run whose modules came from elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Packages of the project: each must come from the measured tree.
PROJECT_PACKAGES = ("core", "orchestry_tui", "testkit")


def add_tree_arguments(parser: argparse.ArgumentParser, baseline_help: str) -> None:
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="the checkout whose engine (and console) run (default: this one)",
    )
    parser.add_argument("--baseline", type=Path, help=baseline_help)


def commit_of(tree: Path) -> str:
    """The tree's short commit, ``+dirty`` when tracked files differ from it; ``?`` outside git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(tree), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return head + ("+dirty" if dirty else "")


def enter_tree(tree: Path) -> None:
    """In the child, before anything of the project is imported: the tree first on sys.path."""
    sys.path.insert(0, str(tree.resolve()))


def ran_from(tree: Path) -> dict[str, Any]:
    """In the child, after the measurement: where the project's modules really came from."""
    tree = tree.resolve()
    strays = sorted(
        name
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in PROJECT_PACKAGES
        and getattr(module, "__file__", None)
        and not Path(module.__file__).resolve().is_relative_to(tree)  # type: ignore[arg-type]
    )
    core = sys.modules.get("core")
    core_tree = Path(core.__file__).resolve().parents[1] if core is not None and core.__file__ else None
    return {
        "tree": str(core_tree or "?"),
        "commit": commit_of(core_tree) if core_tree is not None else "?",
        "strays": strays[:5],
        "stray_count": len(strays),
    }


def ran_line(result: dict[str, Any]) -> str:
    """For the child's header line: the tree and commit it ran."""
    return f"{result['ran']['tree']} at {result['ran']['commit']}"


def run_child(script: Path, tree: Path, args: list[str], what: str) -> dict[str, Any]:
    """Run ``script --tree TREE ARGS`` in ``tree``; its last stdout line is its JSON result, whose
    ``ran`` (from :func:`ran_from`) must name ``tree`` (SystemExit otherwise, or when it failed)."""
    tree = tree.resolve()
    pythonpath = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": str(tree) + (os.pathsep + pythonpath if pythonpath else "")}
    command = [sys.executable, str(script), "--tree", str(tree), *args]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tree, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {what} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    ran = result["ran"]
    if Path(ran["tree"]) != tree or ran["stray_count"]:
        raise SystemExit(
            f"the {what} run was asked to measure {tree} but imported core from {ran['tree']}"
            f" and {ran['stray_count']} project module(s) from elsewhere (e.g. {', '.join(ran['strays'])})"
        )
    return result

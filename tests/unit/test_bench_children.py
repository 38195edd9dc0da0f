"""bench/_children.py: a bench child runs in the checkout it measures (cwd, PYTHONPATH, sys.path), says
which tree and commit it ran, and a child whose project modules came from another checkout is refused."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def children() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_children", BENCH / "_children.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git(tree: Path, *args: str) -> str:
    command = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def a_tree(path: Path) -> Path:
    """A checkout of its own with a ``core`` package, committed."""
    (path / "core").mkdir(parents=True)
    (path / "core" / "__init__.py").write_text("")
    git(path, "init", "-q")
    git(path, "add", "core/__init__.py")
    git(path, "commit", "-q", "-m", "a tree")
    return path


def a_child(path: Path, before_core: str = "") -> Path:
    """A bench script, outside the tree as bench scripts are: enters the tree, imports core, reports."""
    path.write_text(
        textwrap.dedent(
            f"""
            import argparse, json, sys
            from pathlib import Path
            sys.path.insert(0, {str(BENCH)!r})
            from _children import enter_tree, ran_from
            parser = argparse.ArgumentParser()
            parser.add_argument("--tree", type=Path)
            args = parser.parse_args()
            enter_tree(args.tree)
            {before_core}
            import core
            print(json.dumps({{"answer": 42, "ran": ran_from(args.tree)}}))
            """
        )
    )
    return path


def test_the_child_runs_the_named_tree_and_says_at_which_commit(tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    module = children()
    result = module.run_child(a_child(tmp_path / "child.py"), tree, [], "fake")
    assert result["answer"] == 42
    assert result["ran"]["tree"] == str(tree.resolve())
    assert result["ran"]["commit"] == git(tree, "rev-parse", "--short", "HEAD")
    assert module.ran_line(result) == f"{tree.resolve()} at {result['ran']['commit']}"
    (tree / "core" / "__init__.py").write_text("# changed\n")
    assert module.commit_of(tree).endswith("+dirty")


def test_a_child_that_imported_core_from_another_checkout_is_refused(tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    other = a_tree(tmp_path / "other")
    # As the store's migrations once did with the working directory: another checkout put first.
    child = a_child(tmp_path / "child.py", before_core=f"sys.path.insert(0, {str(other)!r})")
    wrong = f"asked to measure {tree.resolve()} but imported core from {other.resolve()}"
    with pytest.raises(SystemExit, match=re.escape(wrong)):
        children().run_child(child, tree, [], "fake")


def test_a_failed_child_says_so_with_its_stderr(tmp_path: Path) -> None:
    tree = a_tree(tmp_path / "tree")
    child = a_child(tmp_path / "child.py", before_core="raise RuntimeError('no fleet today')")
    with pytest.raises(SystemExit, match=r"the fake run failed:(.|\n)*no fleet today"):
        children().run_child(child, tree, [], "fake")

"""Every file or folder of this repository the README and docs/ name exists, and the modules the
README's layout table lists under a folder are in that folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("core", "orchestry_tui", "tests", "bench", "scripts", "templates", "examples", "docs", "testkit")
TOP += ("screenshots", "alembic")
REPO_PATH = re.compile(rf"`((?:{'|'.join(TOP)})/[^` ]*)`")


def named_paths() -> list[tuple[str, str]]:
    found = {(path.name, match) for path in DOCS for match in REPO_PATH.findall(path.read_text())}
    return sorted(found)


@pytest.mark.parametrize(("doc", "path"), named_paths())
def test_a_named_path_exists(doc: str, path: str) -> None:
    path = path.split("#", 1)[0]
    matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path] if (ROOT / path).exists() else []
    assert matches, f"{doc} names {path}, which is not in the repository"


def layout_rows() -> list[tuple[str, list[str]]]:
    """(folder, the modules its "what" cell lists after a colon) for the layout table's one-folder rows."""
    text = (ROOT / "README.md").read_text()
    start = text.index("| path | what |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        path_cell, what = line.strip("|").split("|", 1)
        folders = re.findall(r"`([^`]+/)`", path_cell)
        if len(folders) == 1 and path_cell.count("`") == 2:
            listed = what.split(": ", 1)[1] if ": " in what else ""
            rows.append((folders[0], re.findall(r"`([a-z_]+\*?/?)`", listed)))
    return rows


def test_the_layout_table_is_found() -> None:
    assert {folder for folder, _ in layout_rows()} >= {"core/services/", "core/lb/", "core/runtime/"}


@pytest.mark.parametrize(("folder", "names"), layout_rows())
def test_the_modules_a_layout_row_lists_are_in_its_folder(folder: str, names: list[str]) -> None:
    for name in names:
        if name.endswith("/"):
            assert (ROOT / folder / name).is_dir(), f"the layout table lists {folder}{name}, not a folder"
        else:
            assert list((ROOT / folder).glob(f"{name}.py")) or list((ROOT / folder).glob(f"{name}")), (
                f"the layout table lists {name} under {folder}, which holds no such module"
            )


def test_every_top_level_folder_is_in_the_layout_table() -> None:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| path | what |") :].split("\n\n", 1)[0]
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    folders -= {"build", "dist"} | {p.name for p in ROOT.glob("*.egg-info")}  # build output
    missing = {folder for folder in folders if f"`{folder}/" not in table}
    assert missing == set(), f"the README's layout table does not say what {sorted(missing)} hold"

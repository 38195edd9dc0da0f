"""Every module the product imports exists, including imports made inside functions (loaded only when
that path runs): a module moved without its lazy importers updated failed only when a user reached it
(the console's step-down of a remote leader imported a client module that had moved)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "orchestry_tui", "testkit")


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except ModuleNotFoundError:
        return True


@pytest.mark.parametrize("package", PACKAGES)
def test_every_import_in_the_product_resolves(package: str) -> None:
    missing = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in _imported_modules(path)
        if _missing(module)
    ]
    assert missing == []

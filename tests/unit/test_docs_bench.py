"""Every bench script the README and docs/ run exists, and takes each flag they give it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `fleet.py --sizes 100`, or a shell line `.venv/bin/python bench/scale_out.py  # ... (--cold-only)`
RUN = re.compile(r"(?:bench/)?\b([a-z_]+\.py)\b([^`\n]*)")
SHARED = ROOT / "bench" / "_children.py"  # --tree and --baseline, for the benches that take a tree


def bench_runs() -> list[tuple[str, str, str]]:
    """(doc, script, flag) for each flag given to a bench script in a code span or a shell line."""
    found = set()
    for doc in DOCS:
        text = doc.read_text()
        sources = re.findall(r"`([^`\n]+)`", text) + [line for line in text.splitlines() if "bench/" in line]
        for source in sources:
            for script, rest in RUN.findall(source):
                if not (ROOT / "bench" / script).is_file():
                    continue
                found |= {
                    (doc.name, script, flag) for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest)
                }
    return sorted(found)


def named_scripts() -> list[tuple[str, str]]:
    found = set()
    for doc in DOCS:
        found |= {(doc.name, script) for script in re.findall(r"bench/([a-z_]+\.py)", doc.read_text())}
    return sorted(found)


RUNS = bench_runs()


def test_the_docs_give_bench_flags_at_all() -> None:
    assert len(RUNS) >= 15, RUNS


@pytest.mark.parametrize(("doc", "script"), named_scripts())
def test_a_named_bench_script_exists(doc: str, script: str) -> None:
    assert (ROOT / "bench" / script).is_file(), f"{doc} names bench/{script}, which does not exist"


@pytest.mark.parametrize(("doc", "script", "flag"), RUNS, ids=[f"{d}: {s} {f}" for d, s, f in RUNS])
def test_a_bench_takes_the_flag_the_docs_give_it(doc: str, script: str, flag: str) -> None:
    source = (ROOT / "bench" / script).read_text()
    if flag in ("--tree", "--baseline") and "add_tree_arguments" in source:
        source = SHARED.read_text()
    assert f'"{flag}"' in source, f"{doc} runs {script} {flag}, which {script} does not take"

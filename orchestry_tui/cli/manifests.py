"""Read the app documents that ``orchestry apply`` was pointed at: files, directories and stdin.

A file may hold several YAML documents separated by ``---`` (JSON is YAML too).  Every problem found
here is collected, not raised, so one run reports all of them, each naming the file and the document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STDIN = "-"
STDIN_LABEL = "<stdin>"
SUFFIXES = (".yml", ".yaml", ".json")


@dataclass
class Document:
    source: str  # the file as the user named it, or <stdin>
    index: int  # 1-based position among the file's ---separated documents
    body: dict[str, Any]

    @property
    def name(self) -> str | None:
        """metadata.name when it is a string (the daemon validates it properly)."""
        metadata = self.body.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return name if isinstance(name, str) else None

    def where(self, app: str | None = None) -> str:
        label = f"{self.source}, document {self.index}"
        app = app or self.name
        return f"{label} (app {app})" if app else label


@dataclass
class Inputs:
    documents: list[Document]
    problems: list[str]


def _files(path_text: str, problems: list[str]) -> list[Path]:
    path = Path(path_text)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not found:
            problems.append(
                f"{path_text}: no .yml, .yaml or .json file in this directory: "
                "point at the app files or at another directory"
            )
        return found
    if not path.exists():
        problems.append(f"{path_text}: no such file or directory: check the path")
        return []
    return [path]


def _type_name(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def parse_text(source: str, text: str, problems: list[str]) -> list[Document]:
    """Every non-empty document of one file, read through the guarded door the daemon uses (size,
    depth, aliases); a syntax error names its document, line and column."""
    from core.documents import DocumentError, read_documents  # only when there is something to parse

    documents: list[Document] = []
    try:
        bodies = read_documents(text, source)
    except DocumentError as exc:
        problems.append(str(exc))  # "<file>, document N: <problem>: <fix>"
        return documents
    for index, body in enumerate(bodies, start=1):
        if body is None:
            continue  # an empty document, e.g. after a trailing ---
        document = Document(source, index, body if isinstance(body, dict) else {})
        if not isinstance(body, dict):
            problems.append(
                f"{document.where()}: must be an app document (a mapping with metadata and spec), "
                f"not {_type_name(body)}: see examples/web.yml"
            )
            continue
        try:
            json.dumps(body)
        except (TypeError, ValueError) as exc:
            problems.append(
                f"{document.where()}: holds a value that JSON cannot carry ({exc}): "
                "quote dates, times and other special values"
            )
            continue
        documents.append(document)
    return documents


def read_inputs(paths: list[str], read_stdin: Callable[[], str]) -> Inputs:
    documents: list[Document] = []
    problems: list[str] = []
    stdin_read = False
    seen: set[Path] = set()  # a file named twice (directly and through its directory) is read once
    for path_text in paths:
        if path_text == STDIN:
            if stdin_read:
                problems.append("- (stdin) is named more than once: name it once")
                continue
            stdin_read = True
            documents += parse_text(STDIN_LABEL, read_stdin(), problems)
            continue
        for path in _files(path_text, problems):
            if path.resolve() in seen:
                continue
            seen.add(path.resolve())
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                problems.append(f"{path}: cannot be read ({reason}): check the file and its permissions")
                continue
            documents += parse_text(str(path), text, problems)
    if not documents and not problems:
        problems.append(f"no app document in {', '.join(paths)}: nothing to apply")
    return Inputs(documents, problems)

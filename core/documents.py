"""The one door every document enters by: YAML or JSON text → Python values, with the guards.

API request bodies (``core/api/params.json_body``), app specs given as text (``core.spec``, the engine's
``register`` as the console's ``--apply`` calls it), ``orchestry register FILE`` and ``orchestry apply``
all read text here, so each guard holds everywhere and each problem is worded the same way:

- size: more than :data:`MAX_DOCUMENT_BYTES` is refused before any parsing;
- depth: more than :data:`MAX_DEPTH` nested mappings/lists (PyYAML and ``json`` recurse per level);
- aliases: more than :data:`MAX_ALIASES` YAML aliases, or aliases that expand to more than
  :data:`MAX_EXPANDED_VALUES` values (a "billion laughs" document is a few hundred bytes of text but
  billions of values for whoever walks it), or an alias that contains itself;
- syntax: the line and column of the first error.

Every refusal is a :class:`DocumentError` (a ``SpecError``, answered 400: the text could not be read
as a document at all) whose message is "<the document>: <the problem>: <the fix>".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from core.errors import SpecError

MAX_DOCUMENT_BYTES = 1_000_000  # an app document is a page of YAML; a request body a few lines of JSON
MAX_DEPTH = 64  # an app spec nests about six levels
MAX_FLOW_DEPTH = 100  # brackets, counted before PyYAML sees them: it takes seconds on thousands
MAX_ALIASES = 100
MAX_EXPANDED_VALUES = 100_000


class DocumentError(SpecError):
    """Text that cannot be read as a document: too large, too deep, an alias bomb, bad syntax."""

    http_status = 400

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index  # 1-based position among the text's ---separated documents, when known


def read_document(source: str | bytes, what: str = "the document") -> Any:
    """The one YAML or JSON document of ``source`` (None when it is empty); DocumentError otherwise.

    ``what`` names the document in messages: "the app spec", "request body", a file name."""
    text = _text(source, what)
    if text.lstrip().startswith("{"):
        # JSON first: YAML 1.1 rejects valid JSON that is indented with tabs.
        try:
            return check_value(json.loads(text), what, shared=False)
        except RecursionError:
            raise _too_deep(what) from None
        except ValueError:
            pass
    documents = list(_documents(text, what))
    if len(documents) > 1:
        raise DocumentError(
            f"{what}: holds {len(documents)} documents separated by ---, where one is expected: "
            "fix the syntax (`orchestry apply` takes several apps in one file)"
        )
    return documents[0] if documents else None


def read_documents(source: str | bytes, what: str = "the document") -> list[Any]:
    """Every ``---``-separated YAML document of ``source`` (JSON is YAML too), empty ones as None.

    A problem inside a document names it: "<what>, document N: ..."."""
    text = _text(source, what)
    return list(_documents(text, what, numbered=True))


def read_json(raw: bytes | str, what: str = "request body") -> Any:
    """JSON text only (API request bodies), under the same size and depth guards."""
    _check_size(len(raw) if isinstance(raw, bytes) else len(raw.encode()), what)
    try:
        value = json.loads(raw)
    except RecursionError:
        raise _too_deep(what) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocumentError(f"{what}: not valid JSON ({exc}): send a JSON object") from None
    return check_value(value, what, shared=False)


def check_value(value: Any, what: str = "the document", shared: bool = True) -> Any:
    """``value`` unchanged, once its depth is within the limit and, when parts of it may be shared
    (YAML aliases; not JSON), its size with shared parts counted each time they appear is too and
    nothing in it contains itself."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    # Iterative post-order walk: a document may be deep (that is what this checks) or a DAG of aliases.
    stack: list[tuple[Any, int, bool]] = [(value, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key = id(node)
        if children_done:
            in_progress.discard(key)
            children = node.values() if isinstance(node, dict) else node
            size = 1 + sum(sizes.get(id(child), 1) for child in children)
            if shared and size > MAX_EXPANDED_VALUES:
                raise DocumentError(
                    f"{what}: expands to more than {MAX_EXPANDED_VALUES} values through YAML aliases "
                    "(*name) of aliases, a 'billion laughs' document: write the values out"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise DocumentError(
                f"{what}: contains itself through a YAML alias (*name inside its own &name): "
                "write the value out"
            )
        if depth > MAX_DEPTH:
            raise _too_deep(what)
        in_progress.add(key)
        stack.append((node, depth, True))
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1, False) for child in children)
    return value


# --- internals ---------------------------------------------------------------------------------------


class _GuardedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting aliases and nesting while it composes (before any value exists)."""

    def __init__(self, stream: str, what: str) -> None:
        super().__init__(stream)
        self.what = what
        self.aliases = 0
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise DocumentError(
                    f"{self.what}: uses more than {MAX_ALIASES} YAML aliases (*name): write the values out"
                )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _too_deep(self.what)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _documents(text: str, what: str, numbered: bool = False) -> Iterator[Any]:
    index = 1
    subject = f"{what}, document 1" if numbered else what
    try:
        loader = _GuardedLoader(text, subject)  # already reads: refuses non-printable characters
    except yaml.YAMLError as exc:
        raise DocumentError(f"{subject}: not valid YAML or JSON ({exc}): fix the text", index) from None
    try:
        while loader.check_data():
            yield check_value(loader.get_data(), loader.what)
            index += 1
            loader.what = f"{what}, document {index}" if numbered else what
    except DocumentError as exc:
        exc.index = index
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "unreadable text"
        # An editor's tab in the indentation: PyYAML's words do not say that YAML indents with spaces only.
        fix = "indent with spaces, not tabs" if "'\\t'" in problem else "fix the syntax there"
        raise DocumentError(
            f"{loader.what}: not valid YAML or JSON{where}: {problem}: {fix}", index
        ) from None
    except RecursionError:
        raise _too_deep(loader.what) from None
    except Exception as exc:  # yaml's constructors also raise ValueError (dates, numbers), …
        detail = f"{exc.__class__.__name__}: {str(exc)[:120]}"
        raise DocumentError(
            f"{loader.what}: not valid YAML or JSON ({detail}): fix the syntax", index
        ) from None
    finally:
        loader.dispose()


def _text(source: str | bytes, what: str) -> str:
    if isinstance(source, bytes | bytearray):
        _check_size(len(source), what)
        try:
            return bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(
                f"{what}: not UTF-8 text (bad byte at offset {exc.start}): save the file as UTF-8"
            ) from None
    if not isinstance(source, str):
        raise DocumentError(
            f"{what}: must be YAML or JSON text, not {type(source).__name__}: pass the file's text"
        )
    # Characters first: a text of more characters than the limit has more bytes too, without encoding.
    if len(source) > MAX_DOCUMENT_BYTES:
        _check_size(len(source), what, unit="characters")
    _check_size(len(source.encode("utf-8", "surrogatepass")), what)
    if _flow_depth(source) > MAX_FLOW_DEPTH:
        raise DocumentError(f"{what}: nests brackets more than {MAX_FLOW_DEPTH} deep: flatten it")
    return source


def _check_size(size: int, what: str, unit: str = "bytes") -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{what}: {size} {unit} long: keep it under {MAX_DOCUMENT_BYTES} bytes "
            "(an app document is a page of YAML)"
        )


def _too_deep(what: str) -> DocumentError:
    return DocumentError(f"{what}: nests more than {MAX_DEPTH} levels deep: flatten it")


def _flow_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest

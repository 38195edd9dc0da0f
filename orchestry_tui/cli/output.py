"""Print answers for people (rich tables) or scripts (``--format json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

# What print_json writes: the answer as JSON, or (``--format yaml``) the same answer as YAML.
_structured = "json"


def use_structured(kind: str) -> None:
    """``json`` or ``yaml``: every command's ``--format json`` output is then written in that form."""
    global _structured
    _structured = kind


def print_json(data: Any) -> None:
    if _structured == "yaml":
        print_yaml(data)
        return
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


def print_record(data: Any) -> None:
    """One item of a stream (a followed log line): a JSON line, or a YAML document."""
    if _structured == "yaml":
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, explicit_start=True))
    else:
        sys.stdout.write(json.dumps(data) + "\n")


def print_yaml(data: Any) -> None:
    import yaml

    sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def _console() -> Any:
    from rich.console import Console  # rich costs ~50 ms: import it only to draw a table

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    _console().print(table)


def print_fields(fields: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in fields:
        table.add_row(key, "" if value is None else str(value))
    _console().print(table)


def say(message: str) -> None:
    sys.stdout.write(message + "\n")


def note(message: str) -> None:
    """A remark beside the output (stderr: `orchestry logs web | grep x` keeps only the lines)."""
    sys.stderr.write(message + "\n")


def error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def clock(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def ago(epoch: float | None, now: float | None = None) -> str:
    if not epoch:
        return "-"
    seconds = max(0, int((now or time.time()) - epoch))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"

"""The Textual console (``orchestry`` with no subcommand): an engine in-process, shown and steered."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings


def run_console(settings: Settings, apply_files: list[Path], readonly: bool = False) -> int:
    """Run the console until the operator quits; returns the process exit code.

    The engine starts after the first frame, so a broken Docker or database shows in the console,
    not as a traceback.  Quitting leaves apps running and nginx serving."""
    from orchestry_tui.console.app import OrchestryConsole
    from orchestry_tui.console.engine_backend import EngineBackend

    console = OrchestryConsole(EngineBackend(settings, apply_files), readonly=readonly)
    result = console.run()
    if console.start_error:
        sys.stderr.write(f"orchestry: the engine could not start: {console.start_error}\n")
        return 2
    return result if isinstance(result, int) else console.return_code or 0


__all__ = ["run_console"]

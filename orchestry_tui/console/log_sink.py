"""Where log records go while the console owns the terminal.

Textual takes over stdout and stderr, so without a handler the embedded engine's warnings (Docker gone,
the store failing, nginx refusing a config) were lost.  Every record goes, redacted, to
``<state dir>/console.log`` (rotated); warnings and errors also reach the events pane.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
from collections.abc import Callable
from pathlib import Path

from core.redaction import RedactingFilter

LOG_FILE_NAME = "console.log"
LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 2
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class WarningTap(logging.Handler):
    """Hands each WARNING-or-worse record (already redacted) to ``deliver`` on the console's loop;
    records come from any thread (the Docker executor logs too)."""

    def __init__(self, deliver: Callable[[logging.LogRecord], None], loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(logging.WARNING)
        self._deliver = deliver
        self._loop = loop
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, record)
        except RuntimeError:  # the loop closed between the check and the call
            pass


class ConsoleLog:
    """Attach on mount, detach on unmount: the file handler and the warning tap on the root logger."""

    def __init__(self, state_dir: Path, deliver: Callable[[logging.LogRecord], None]) -> None:
        self.path = state_dir / LOG_FILE_NAME
        self._deliver = deliver
        self._handlers: list[logging.Handler] = []
        self._root_level = logging.NOTSET

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        root = logging.getLogger()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            to_file: logging.Handler = logging.handlers.RotatingFileHandler(
                self.path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
            )
            to_file.setFormatter(logging.Formatter(FORMAT))
            to_file.addFilter(RedactingFilter())
            to_file.setLevel(logging.INFO)
            self._handlers.append(to_file)
        except OSError as exc:  # an unwritable state dir still leaves the events pane
            logging.getLogger(__name__).warning("cannot write %s: %s", self.path, exc)
        self._handlers.append(WarningTap(self._deliver, loop))
        for handler in self._handlers:
            root.addHandler(handler)
        self._root_level = root.level
        if root.level == logging.NOTSET or root.level > logging.INFO:
            root.setLevel(logging.INFO)

    def detach(self) -> None:
        root = logging.getLogger()
        for handler in self._handlers:
            root.removeHandler(handler)
            handler.close()
        self._handlers.clear()
        root.setLevel(self._root_level)

"""The controller's own recent log, kept in memory for the support bundle (``controller.log``).

A bounded ring of formatted lines (the newest ``CAPACITY``), redacted as they arrive, so a bundle can
say what the controller did and complained about even when nobody kept its stderr (the console).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from core.redaction import RedactingFilter

CAPACITY = 2000
FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# Loggers whose INFO lines are worth keeping even where nothing else configured logging (the console
# leaves the root logger at WARNING with no handler; INFO records then reach only this ring).
OWN_LOGGERS = ("core", "orchestry", "orchestry_tui")


class RecentLogHandler(logging.Handler):
    def __init__(self, capacity: int = CAPACITY) -> None:
        super().__init__(logging.INFO)
        self._lines: deque[str] = deque(maxlen=capacity)
        self._lines_lock = threading.Lock()
        self.setFormatter(logging.Formatter(FORMAT))
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken record must not break the code that logged it
            return
        with self._lines_lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lines_lock:
            return list(self._lines)


_installed: RecentLogHandler | None = None
_install_lock = threading.Lock()


def install() -> RecentLogHandler:
    """Attach the one process-wide handler to the root logger (idempotent)."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = RecentLogHandler()
            logging.getLogger().addHandler(_installed)
            for name in OWN_LOGGERS:
                own = logging.getLogger(name)
                if own.getEffectiveLevel() > logging.INFO:
                    own.setLevel(logging.INFO)
        return _installed


def recent_lines() -> list[str]:
    return _installed.lines() if _installed is not None else []

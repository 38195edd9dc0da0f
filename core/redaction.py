"""Scrub known secret values from text, nested objects and log records.

Every secret value Orchestry sets or resolves is registered here; anything that leaves the process
(logs, events, API answers, snapshots) passes through ``redact``.  Values shorter than four characters
are not registered: replacing "1" or "on" everywhere would mangle ordinary text without hiding
anything worth hiding.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

MASK = "***"
MIN_SECRET_LENGTH = 4


class Redactor:
    """A thread-safe set of secret values and a matcher that replaces each with ``***``."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret that contains another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __len__(self) -> int:
        return len(self._values)

    def any_contains(self, fragments: tuple[str, ...]) -> bool:
        """Whether some secret value contains one of ``fragments``.  Text cut into pieces is masked
        piece by piece exactly as it would be whole when no value contains the two characters either
        side of any cut (no match can then cross one)."""
        with self._lock:
            values = tuple(self._values)
        return any(fragment in value for value in values for fragment in fragments)

    def redact(self, text: str) -> str:
        pattern = self._pattern  # a snapshot: add() swaps the whole pattern, never mutates it
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_obj(self, obj: Any) -> Any:
        """A copy of ``obj`` with every string (keys included) redacted, through dicts, lists, tuples."""
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.redact_obj(item) for item in obj]
        return obj


class RedactingFilter(logging.Filter):
    """Attach to log handlers: renders each record's message and scrubs it (args and tracebacks too).

    Filters on a handler see records from every logger that propagates to it, unlike logger filters.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor or default_redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = self._redactor.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redactor.redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None, redactor: Redactor | None = None) -> None:
    """Add a RedactingFilter to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))


default_redactor = Redactor()


def register_controller_secrets(
    redactor: Redactor, database_url: str, api_token: str | None, secret_key: bytes | None
) -> None:
    """The controller's own secrets (the database password in its URL, the API token, the key that
    encrypts secrets at rest) are masked wherever they might be echoed: logs, errors, the support bundle."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(database_url).password
    except ValueError:
        password = None
    for value in (password, unquote(password) if password else None, api_token):
        if value:
            redactor.add(value)
    if secret_key:
        redactor.add(secret_key.decode(errors="replace"))

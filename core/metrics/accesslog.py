"""nginx's JSON access log: parse one line, and tail the file incrementally.

The nginx side writes (``log_format orchestry escape=json``)::

    {"t":$msec,"app":"$orchestry_app","status":$status,"rt":$request_time,"ua":"$upstream_addr",
     "us":"$upstream_status","urt":"$upstream_response_time","m":"$request_method","bytes":$body_bytes_sent}

On retries the upstream fields are lists (``"a, b"``, with ``" : "`` between internal-redirect groups); the
last item is the replica that answered.  ``-`` means no upstream was contacted.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from pathlib import Path
from typing import BinaryIO, NamedTuple

log = logging.getLogger(__name__)

# One read never takes more than this, so a huge backlog is consumed over several samples instead of
# stalling one of them.
MAX_READ_BYTES = 8 * 1024 * 1024

# A line longer than this can only be garbage (a real one is ~200 bytes); dropping it keeps the
# partial-line buffer bounded when something writes binary junk without newlines.
MAX_LINE_BYTES = 64 * 1024


class AccessRecord(NamedTuple):
    """One request nginx served (a named tuple: one per request, made on every sample's read)."""

    timestamp: float  # $msec: when nginx finished the request
    app: str  # "" for requests that matched no app
    status: int  # status nginx returned to the client
    request_time_ms: float  # $request_time, client-visible latency
    upstream: str | None  # "host:port" of the replica that answered, None when none was contacted
    upstream_status: int | None
    upstream_time_ms: float | None  # of the answering replica
    method: str
    body_bytes: int


def last_item(field: str) -> str | None:
    """The last element of an nginx upstream list ("a, b : c" → "c"); None for "-" or empty."""
    if " " not in field:  # one item (no list has an item without its separator's space)
        item = field
    else:
        item = field.replace(" : ", ", ").rsplit(",", 1)[-1].strip()
    if item in ("", "-"):
        return None
    return item


def _seconds_to_ms(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) * 1000.0 if math.isfinite(value) else None
    if isinstance(value, str):
        item = last_item(value)
        if item is None:
            return None
        try:
            seconds = float(item)
        except ValueError:
            return None
        return seconds * 1000.0 if math.isfinite(seconds) else None
    return None


def _status(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        item = last_item(value)
        if item is not None and item.isdigit():
            return int(item)
    return None


# A line exactly as the template's log_format writes it (fields in its order, plain numbers, no escaped
# characters): read by this pattern at a third of json.loads's cost, the same record as the JSON
# reading gives.  Any other line (an external nginx's format, an escape, an exponent) is read as JSON.
_NUMBER = r"(\d+(?:\.\d+)?)"
_PLAIN = r'"([^"\\]*)"'
_TEMPLATE_LINE = re.compile(
    r'\{"t":'
    + _NUMBER
    + r',"app":'
    + _PLAIN
    + r',"status":(\d+),"rt":'
    + _NUMBER
    + r',"ua":'
    + _PLAIN
    + r',"us":'
    + _PLAIN
    + r',"urt":'
    + _PLAIN
    + r',"m":'
    + _PLAIN
    + r',"bytes":(\d+)\}\s*'
)


def parse_line(line: str) -> AccessRecord | None:
    """One log line → record; None for anything that is not a complete, well-formed record."""
    match = _TEMPLATE_LINE.fullmatch(line)
    if match is not None:
        timestamp, app, status, request_seconds, upstream, upstream_status, upstream_seconds, method, size = (
            match.groups()
        )
        return AccessRecord(
            timestamp=float(timestamp),
            app=app,
            status=int(status),
            request_time_ms=float(request_seconds) * 1000.0,
            upstream=last_item(upstream),
            upstream_status=_status(upstream_status),
            upstream_time_ms=_seconds_to_ms(upstream_seconds),
            method=method,
            body_bytes=int(size),
        )
    return _parse_json(line)


def _parse_json(line: str) -> AccessRecord | None:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    timestamp = data.get("t")
    status = _status(data.get("status"))
    request_ms = _seconds_to_ms(data.get("rt"))
    app = data.get("app", "")
    if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
        return None
    if status is None or request_ms is None or not isinstance(app, str):
        return None
    upstream_field = data.get("ua", "-")
    upstream = last_item(upstream_field) if isinstance(upstream_field, str) else None
    method = data.get("m", "")
    body_bytes = data.get("bytes", 0)
    return AccessRecord(
        timestamp=float(timestamp),
        app=app,
        status=status,
        request_time_ms=request_ms,
        upstream=upstream,
        upstream_status=_status(data.get("us", "-")),
        upstream_time_ms=_seconds_to_ms(data.get("urt", "-")),
        method=method if isinstance(method, str) else "",
        body_bytes=body_bytes if isinstance(body_bytes, int) and not isinstance(body_bytes, bool) else 0,
    )


class AccessLogTailer:
    """Reads what nginx appended since the last call.

    Keeps the file open with a byte offset.  A file that does not exist yet reads as empty.  A file that
    shrank below the offset (``copytruncate``) is read again from its start.  After a rotation (the
    path now names a new file: rename + ``nginx -s reopen``), the old file is read to its end first -
    nginx's workers keep writing it until they have reopened - and only then the new one from its start,
    so rotation loses nothing.  An incomplete last line is kept until its newline arrives.

    Blocking file I/O: call ``read_new`` through ``asyncio.to_thread``, one call at a time.
    """

    def __init__(
        self, path: Path, max_read_bytes: int = MAX_READ_BYTES, start_backlog: int | None = None
    ) -> None:
        """``start_backlog``: on the first open of an existing file, read at most this many bytes from
        its end (None = the whole file), so a restart does not spend minutes on an old log."""
        self.path = path
        self._max_read = max_read_bytes
        self._start_backlog = start_backlog
        self._handle: BinaryIO | None = None
        self._offset = 0
        self._partial = b""
        self._first_open = True
        self._skip_to_newline = False

    @property
    def exists(self) -> bool:
        """Whether a log file has been found (no file = no traffic source yet)."""
        return self._handle is not None

    def read_new(self) -> list[AccessRecord]:
        return [record for line in self.read_new_lines() if (record := parse_line(line)) is not None]

    def read_new_lines(self) -> list[str]:
        try:
            if self._handle is None and not self._open():
                return []
            lines = self._read()
            if not lines and self._rotated():
                self._close()  # the old file is drained: its cut last line can never complete
                if self._open():
                    lines = self._read()
            return lines
        except OSError as error:
            log.warning("cannot read the nginx access log %s: %s", self.path, error)
            self._close()
            return []

    def close(self) -> None:
        self._close()

    def _open(self) -> bool:
        try:
            # Kept open across calls: after a rotation the old file must still be readable to its end.
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return False
        self._handle = handle
        self._offset = 0
        self._partial = b""
        self._skip_to_newline = False
        size = os.fstat(handle.fileno()).st_size
        if self._first_open and self._start_backlog is not None and size > self._start_backlog:
            self._offset = size - self._start_backlog
            self._skip_to_newline = True  # the first line read is cut: drop it
        if not self._first_open:
            log.info("nginx access log %s was rotated; reading the new file from its start", self.path)
        self._first_open = False
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _rotated(self) -> bool:
        assert self._handle is not None
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            return False  # renamed away, not recreated yet: nginx still writes the old file
        mine = os.fstat(self._handle.fileno())
        return (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev)

    def _read(self) -> list[str]:
        assert self._handle is not None
        if os.fstat(self._handle.fileno()).st_size < self._offset:
            log.info("nginx access log %s was truncated; reading it from its start", self.path)
            self._offset = 0
            self._partial = b""
        self._handle.seek(self._offset)
        chunk = self._handle.read(self._max_read)
        self._offset += len(chunk)
        return self._split(chunk)

    def _split(self, chunk: bytes) -> list[str]:
        if not chunk:
            return []
        data = self._partial + chunk
        if self._skip_to_newline:
            newline = data.find(b"\n")
            if newline < 0:
                self._partial = b""
                return []
            data = data[newline + 1 :]
            self._skip_to_newline = False
        lines = data.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
        return [line.decode("utf-8", "replace") for line in lines if line.strip()]

"""Thread → asyncio hand-over for blocking streams (Docker's events and followed logs): reader
threads put items, one async consumer takes them, with back-pressure and a clean stop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger(__name__)

STREAM_QUEUE_SIZE = 1000

_END = object()


class _StreamBridge:
    """Carries items from reader threads to one async consumer through a bounded queue.

    The readers block when the consumer falls behind (the queue is the back-pressure); ``stop()`` from
    the consumer's side closes the open Docker streams so a reader blocked in a socket read wakes up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, readers: int = 1) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[object] = asyncio.Queue(maxsize=STREAM_QUEUE_SIZE)
        self.stopped = threading.Event()
        self._open: set[Any] = set()
        self._lock = threading.Lock()
        self._readers_left = readers

    def put(self, item: object) -> bool:
        """From a reader thread: hand one item over; False once the consumer has gone."""
        put = self.queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self.loop)
        except RuntimeError:  # the loop is closed
            put.close()  # never scheduled: closed here, not reported as "never awaited" when collected
            return False
        while True:
            try:
                future.result(timeout=0.5)
                return True
            except FutureTimeout:
                if self.stopped.is_set():
                    future.cancel()
                    return False
            except Exception:
                return False

    def reader_done(self) -> None:
        with self._lock:
            self._readers_left -= 1
            last = self._readers_left == 0
        if last:
            self.put(_END)

    def track(self, stream: Any) -> None:
        with self._lock:
            self._open.add(stream)
        if self.stopped.is_set():
            _close_quietly(stream)

    def untrack(self, stream: Any) -> None:
        with self._lock:
            self._open.discard(stream)

    def stop(self) -> None:
        self.stopped.set()
        with self._lock:
            streams = list(self._open)
        for stream in streams:
            _close_quietly(stream)

    async def items(self) -> AsyncIterator[Any]:
        try:
            while True:
                item = await self.queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop()


async def relay(
    bridges: set[_StreamBridge], bridge: _StreamBridge, readers: Iterable[threading.Thread]
) -> AsyncIterator[Any]:
    """Starts the reader threads and yields what they hand over; the bridge is kept in ``bridges``
    while it runs, so the runtime's ``close()`` can stop it."""
    bridges.add(bridge)
    for reader in readers:
        reader.start()
    try:
        async for item in bridge.items():
            yield item
    finally:
        bridges.discard(bridge)


def _close_quietly(closable: Any) -> None:
    try:
        closable.close()
    except Exception:  # closing a stream whose socket is already gone
        log.debug("closing a docker stream failed", exc_info=True)


def _lines(chunks: Iterable[bytes]) -> Iterable[str]:
    """Reassembles whole lines from stream frames (a long line may span frames)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace").rstrip("\r")
    if pending:
        yield pending.decode(errors="replace").rstrip("\r")

"""Every app's record as the lease holder last read or wrote it, for readers that ask often.

The API's lists and the scaling loop read every record many times a minute; a store round trip each time
costs a thread hop and a query per read for records that change a few times a minute.  Only the lease
holder writes apps (API writes reach it, a follower refuses them), and each of its writes moves
``AppRepository.changes`` after it commits; another node can only have written during another term.
So the leader keeps what it read while (term, changes) stays the same: its own write or a new term (a
follower that takes over, or a leader that got its lease back after another node held it) reads again.
A follower always reads the store, where the leader writes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.store import AppRecord, Store


class KeptAppRecords:
    def __init__(self, store: Store, leadership: Any) -> None:
        """``leadership``: ``is_leader()`` and ``term`` (the term this node last won; a new one when
        it wins again after another node led)."""
        self._store = store
        self._leadership = leadership
        self._records: list[AppRecord] = []
        self._key: tuple[int | None, int] | None = None

    def key(self) -> tuple[int | None, int]:
        return (getattr(self._leadership, "term", None), self._store.apps.changes)

    def kept(self) -> list[AppRecord] | None:
        """The kept records when they are still current (on the leader), else None.  Never waits."""
        if not self._leadership.is_leader() or self._key != self.key():
            return None
        return self._records

    async def current(self) -> list[AppRecord]:
        """Every app's record, by name: the kept list on the leader while nothing changed it, else
        read from the store.  Callers share the list and its records: they must not change them."""
        kept = self.kept()
        if kept is not None:
            return kept
        if not self._leadership.is_leader():
            return await asyncio.to_thread(self._store.apps.list)
        key = self.key()  # taken before the read: a write that lands during it makes the next call read
        records = await asyncio.to_thread(self._store.apps.list)
        self._records, self._key = records, key
        return records

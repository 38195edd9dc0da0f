"""Every app's record as the lease holder last read or wrote it, for readers that ask often.

The API's lists and the scaling loop read every record many times a minute; a store round trip each time
costs a thread hop and a query per read for records that change a few times a minute.  Only the lease
holder writes apps (API writes reach it, a follower refuses them), and each of its writes moves
``AppRepository.changes`` after it commits; another node can only have written during another term.
So the leader keeps what it read while (term, changes) stays the same.  After its own writes it takes
the rows they committed (the repository keeps each app's last committed row) and splices them in place
without a read: a scale writes one app several times (its count, then each status on the way) and
every reader, the reconciler's passes included, would otherwise wait on the store after each.  A write
whose row is not known (it failed, or two writes of one app overlapped) re-reads only the apps written;
a new term (a follower that takes over, or a leader that got its lease back after another node held
it), a new app (its place in the store's order is the store's to say) or more writes than are
remembered read the whole list again.  A follower always reads the store, where the leader writes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.store import AppRecord, Store

# Past this many apps written since the last read, one read of the whole list is cheaper.
FEW_APPS = 16


class KeptAppRecords:
    def __init__(self, store: Store, leadership: Any) -> None:
        """``leadership``: ``is_leader()`` and ``term`` (the term this node last won; a new one when
        it wins again after another node led)."""
        self._store = store
        self._leadership = leadership
        self._records: list[AppRecord] = []
        self._key: tuple[int | None, int] | None = None
        self._index: tuple[list[AppRecord] | None, dict[str, AppRecord]] = (None, {})
        # One refresh at a time: the clients that find the records out of date together (every
        # poller, right after a write) wait for the one read instead of each reading every record.
        self._refreshing = asyncio.Lock()

    def key(self) -> tuple[int | None, int]:
        return (getattr(self._leadership, "term", None), self._store.apps.changes)

    def kept(self) -> list[AppRecord] | None:
        """The kept records when they are still current (on the leader), else None.  Never waits:
        after this leader's own writes it splices the rows they committed (see ``_caught_up``)."""
        if not self._leadership.is_leader():
            return None
        if self._key != self.key():
            return self._caught_up()
        return self._records

    async def get(self, name: str) -> AppRecord | None:
        """``name``'s record (None: no such app): the kept one on the leader while the kept records
        are current, without waiting; else read from the store."""
        records = self.kept()
        if records is None:
            return await self._store.read(self._store.apps.get, name)
        if self._index[0] is not records:
            self._index = (records, {record.name: record for record in records})
        return self._index[1].get(name)

    def _caught_up(self) -> list[AppRecord] | None:
        """The kept list with the rows this leader's writes since it was read spliced in, as they
        committed them: a scale writes its app several times (its count, then each status on the
        way), and every reader would otherwise wait on the store after each.  None when a row is not
        known (a failed write, two writes of one app at once), an app is new, or the term changed."""
        term = getattr(self._leadership, "term", None)
        if self._key is None or self._key[0] != term:
            return None
        fresh = self._store.apps.fresh_since(self._key[1])
        if fresh is None:
            return None
        changes, rows = fresh
        records = self._spliced(rows)
        if records is None:
            return None
        self._records, self._key = records, (term, changes)
        return records

    async def current(self) -> list[AppRecord]:
        """Every app's record, by name: the kept list on the leader while nothing changed it, else
        read from the store.  Callers share the list and its records: they must not change them."""
        kept = self.kept()
        if kept is not None:
            return kept
        if not self._leadership.is_leader():
            return await self._store.read(self._store.apps.list)
        async with self._refreshing:
            kept = self.kept()
            return kept if kept is not None else await self._refresh()

    async def _refresh(self) -> list[AppRecord]:
        term = getattr(self._leadership, "term", None)
        if self._key is not None and self._key[0] == term:
            written = self._store.apps.written_since(self._key[1])
            if written is not None and len(written[1]) <= FEW_APPS:
                changes, names = written
                fresh = await self._store.read(self._read, names)
                records = self._spliced(fresh)
                if records is not None:
                    self._records, self._key = records, (term, changes)
                    return records
        key = self.key()  # taken before the read: a write that lands during it makes the next call read
        records = await self._store.read(self._store.apps.list)
        self._records, self._key = records, key
        return records

    def _read(self, names: set[str]) -> dict[str, AppRecord | None]:
        return {name: self._store.apps.get(name) for name in names}

    def _spliced(self, fresh: dict[str, AppRecord | None]) -> list[AppRecord] | None:
        """The kept list with ``fresh`` records in their places and deleted apps left out; None when
        an app is new to the list."""
        known = {record.name for record in self._records}
        if any(record is not None and name not in known for name, record in fresh.items()):
            return None
        spliced = []
        for record in self._records:
            if record.name not in fresh:
                spliced.append(record)
            elif (now := fresh[record.name]) is not None:
                spliced.append(now)
        return spliced

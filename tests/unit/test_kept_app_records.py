"""The leader's kept app records: no store read while nothing changed them, a read of just the apps it
wrote after its own writes, the whole list after a new term (another node may have written meanwhile),
and always a read on a follower."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import Conflict
from core.services.app_records import KeptAppRecords
from core.store import AppRecord, Store
from core.store.repositories import WRITTEN_NAMES_KEPT


class Lease:
    def __init__(self) -> None:
        self.leading = True
        self.term: int | None = 1

    def is_leader(self) -> bool:
        return self.leading


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """This node's store and another node's, on one database."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ours, theirs = Store.open(url), Store.open(url)
    try:
        yield ours, theirs
    finally:
        ours.database.dispose()
        theirs.database.dispose()


def record(name: str) -> AppRecord:
    return AppRecord(name=name, spec={}, raw={}, spec_hash=name)


class Reads:
    """The store reads of apps this node makes: whole lists, and single apps by name."""

    def __init__(self, store: Store) -> None:
        self.lists = 0
        self.gets: list[str] = []
        real_list, real_get = store.apps.list, store.apps.get

        def listing() -> list[AppRecord]:
            self.lists += 1
            return real_list()

        def getting(name: str) -> AppRecord | None:
            self.gets.append(name)
            return real_get(name)

        store.apps.list = listing  # type: ignore[method-assign]
        store.apps.get = getting  # type: ignore[method-assign]


async def test_the_leader_reads_only_what_it_wrote_and_everything_after_a_new_term(
    stores: tuple[Store, Store],
) -> None:
    ours, theirs = stores
    lease = Lease()
    kept = KeptAppRecords(ours, lease)
    reads = Reads(ours)
    for name in ("a", "c", "d"):
        ours.apps.create(record(name))
    assert [r.name for r in await kept.current()] == ["a", "c", "d"]
    assert [r.name for r in await kept.current()] == ["a", "c", "d"] and reads.lists == 1

    # Its own writes to known apps: the rows they committed, in their places, without a read.
    ours.apps.scale("c", 3, "operator")
    ours.apps.update("c", status="running", status_reason="3/3 replicas ready")
    ours.apps.delete("d")
    listed = kept.kept()
    assert listed is not None and [(r.name, r.desired_replicas, r.status) for r in listed] == [
        ("a", 1, "stopped"),
        ("c", 3, "running"),
    ]
    assert listed == theirs.apps.list() and await kept.get("c") == theirs.apps.get("c")
    assert await kept.get("d") is None
    assert reads.lists == 1 and reads.gets == []

    # A write that failed leaves its app's row unknown: that app alone is read again.
    with pytest.raises(Conflict):
        ours.apps.create(record("c"))
    assert kept.kept() is None
    assert [r.name for r in await kept.current()] == ["a", "c"]
    assert reads.lists == 1 and reads.gets == ["c"]

    # A new app's place is the store's to say: the whole list is read.
    ours.apps.create(record("b"))
    assert [r.name for r in await kept.current()] == ["a", "b", "c"] and reads.lists == 2

    # Another node leads for a while and writes; this node then wins a new term.
    lease.leading = False
    theirs.apps.create(record("e"))
    assert [r.name for r in await kept.current()] == ["a", "b", "c", "e"]  # a follower reads the store
    theirs.apps.scale("a", 5, "the other leader")
    lease.leading, lease.term = True, 3
    listed = await kept.current()
    assert [(r.name, r.desired_replicas) for r in listed] == [("a", 5), ("b", 1), ("c", 3), ("e", 1)]
    assert kept.kept() is listed


async def test_many_writes_read_the_whole_list_once(stores: tuple[Store, Store]) -> None:
    ours, _theirs = stores
    kept = KeptAppRecords(ours, Lease())
    ours.apps.create(record("a"))
    await kept.current()
    reads = Reads(ours)
    for count in range(2, WRITTEN_NAMES_KEPT + 3):  # more writes than the repository remembers
        ours.apps.scale("a", count, "operator")
    assert [r.desired_replicas for r in await kept.current()] == [WRITTEN_NAMES_KEPT + 2]
    assert reads.lists == 1 and reads.gets == []


async def test_clients_that_find_the_records_out_of_date_together_share_one_read(
    stores: tuple[Store, Store],
) -> None:
    ours, _theirs = stores
    kept = KeptAppRecords(ours, Lease())
    reads = Reads(ours)
    ours.apps.create(record("a"))
    answers = await asyncio.gather(*(kept.current() for _ in range(8)))
    assert all(a is answers[0] for a in answers) and reads.lists == 1


async def test_a_follower_never_keeps(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    lease = Lease()
    lease.leading = False
    kept = KeptAppRecords(ours, lease)
    assert await kept.current() == [] and kept.kept() is None
    theirs.apps.create(record("c"))
    assert [r.name for r in await kept.current()] == ["c"]

"""The leader's kept app records: no store read while nothing changed them, a read after its own write
or after a new term (another node may have written meanwhile), and always a read on a follower."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.services.app_records import KeptAppRecords
from core.store import AppRecord, Store


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


def counting(store: Store) -> list[int]:
    reads: list[int] = []
    real = store.apps.list
    store.apps.list = lambda: reads.append(1) or real()  # type: ignore[method-assign]
    return reads


async def test_the_leader_reads_again_after_its_own_write_and_after_a_new_term(
    stores: tuple[Store, Store],
) -> None:
    ours, theirs = stores
    lease = Lease()
    kept = KeptAppRecords(ours, lease)
    reads = counting(ours)
    ours.apps.create(record("a"))
    assert [r.name for r in await kept.current()] == ["a"]
    assert [r.name for r in await kept.current()] == ["a"] and len(reads) == 1

    ours.apps.scale("a", 3, "operator")
    assert [r.desired_replicas for r in await kept.current()] == [3] and len(reads) == 2

    # Another node leads for a while and writes; this node then wins a new term.
    lease.leading = False
    theirs.apps.create(record("b"))
    assert [r.name for r in await kept.current()] == ["a", "b"]  # a follower reads the store
    theirs.apps.scale("a", 5, "the other leader")
    lease.leading, lease.term = True, 3
    listed = await kept.current()
    assert [(r.name, r.desired_replicas) for r in listed] == [("a", 5), ("b", 1)]
    assert kept.kept() is listed


async def test_a_follower_never_keeps(stores: tuple[Store, Store]) -> None:
    ours, theirs = stores
    lease = Lease()
    lease.leading = False
    kept = KeptAppRecords(ours, lease)
    assert await kept.current() == [] and kept.kept() is None
    theirs.apps.create(record("c"))
    assert [r.name for r in await kept.current()] == ["c"]

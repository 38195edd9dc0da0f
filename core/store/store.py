"""The ``Store``: one database, migrated on open, with a repository per table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from core.store.db import Database, WriteFence, upgrade_database
from core.store.lanes import StoreLanes
from core.store.lease_notices import LeaseNotices
from core.store.metric_history import MetricHistoryRepository
from core.store.repositories import (
    AppRepository,
    EventRepository,
    IdentityRepository,
    InstanceRepository,
    LeaseRepository,
    NodeRepository,
    ScalingRepository,
    SecretRepository,
)

T = TypeVar("T")


class Store:
    """Synchronous; asyncio code runs its methods on the store's own threads: ``await
    store.read(store.apps.get, name)``, ``await store.write(store.apps.save, record)`` (see lanes.py)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.lanes = StoreLanes(database.dialect)
        self.apps = AppRepository(database)
        self.instances = InstanceRepository(database)
        self.events = EventRepository(database)
        self.scaling = ScalingRepository(database)
        self.leases = LeaseRepository(database)
        self.nodes = NodeRepository(database)
        self.secrets = SecretRepository(database)
        self.identity = IdentityRepository(database)
        self.history = MetricHistoryRepository(database)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect to ``url`` (sqlite:///PATH or postgresql://...) and migrate it to the newest schema."""
        database = Database(url)
        try:
            if upgrade:
                upgrade_database(database)
        except BaseException:
            database.dispose()
            raise
        return cls(database)

    async def read(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` on the read lane: for calls that only read."""
        return await self.lanes.read(call, *args, **kwargs)

    async def write(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``call(*args, **kwargs)`` on the write lane: for every call that may write."""
        return await self.lanes.write(call, *args, **kwargs)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.database.dialect

    def fence_writes(self, term: Callable[[], int | None], node_id: str, margin: float) -> None:
        """From now on, leader-only writes (apps, instances, scaling and metric history, secrets) must
        carry the term this node leads and are refused in the database once that term is over."""
        self.database.fence = WriteFence(term=term, node_id=node_id, margin=margin)

    def lease_notices(self) -> LeaseNotices | None:
        """Wake-ups when a peer releases or takes the lease; None on SQLite (one node, nobody to wake)."""
        return LeaseNotices(self.database.engine) if self.dialect == "postgresql" else None

    def ping(self) -> None:
        """Raise StoreError when the database does not answer."""
        self.database.ping()

    def now(self) -> float:
        """The database clock, epoch seconds."""
        return self.database.now()

    def close(self) -> None:
        self.database.dispose()

"""One repository per table.  Each method is one short transaction (see ``db.Database``)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.errors import Conflict, NotFound, StoreError
from core.models import APP_STOPPED
from core.store import models as t
from core.store.db import Database, IntegrityViolation
from core.store.lease_notices import notify_sql
from core.store.records import (
    AppRecord,
    EventRecord,
    InstanceRecord,
    LeaseRecord,
    NodeRecord,
    ScalingRecord,
)


def _upsert(
    database: Database, table: sa.Table, values: dict[str, Any], keys: list[str], update: dict[str, Any]
) -> sa.Insert:
    """INSERT … ON CONFLICT (keys) DO UPDATE, in whichever dialect the store runs on."""
    insert = (postgresql.insert if database.dialect == "postgresql" else sqlite.insert)(table)
    return insert.values(**values).on_conflict_do_update(index_elements=keys, set_=update)


# How many recent writes' app names are remembered (a reader further behind reads every record).
WRITTEN_NAMES_KEPT = 256


class AppRepository:
    _FIELDS = frozenset(f.name for f in fields(AppRecord))
    _STORE_OWNED = frozenset({"name", "created_at", "updated_at", "generation"})

    def __init__(self, database: Database) -> None:
        self._db = database
        self._changes = 0
        self._changes_lock = threading.Lock()
        self._written: deque[str] = deque(maxlen=WRITTEN_NAMES_KEPT)  # the app of each recent write
        # Each app's row as its last committed write left it (None: deleted), so a reader that kept
        # the list catches up without a read; absent when not known (a write that failed, and others
        # of that app in flight with it).
        self._fresh: dict[str, AppRecord | None] = {}
        # The order in which writes read back their rows, inside their transactions: two writes of one
        # app at once (a scale's status saves) commit in that order, as the database holds the row's
        # lock (SQLite: its one write turn) from the write to the commit.  Their commits' Python sides
        # may finish in either order; the row with the later number is the one that stays.
        self._read_back = 0
        self._fresh_at: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._failed: set[str] = set()  # apps with a failed write while others of theirs are in flight

    @property
    def changes(self) -> int:
        """How many writes this process made to the apps table: a reader that kept what ``list`` said
        may keep using it while this number stays the same (only the lease holder writes apps)."""
        return self._changes

    def written_since(self, changes: int) -> tuple[int, set[str]] | None:
        """(``changes`` now, the apps this process wrote since ``changes`` was the count), so a reader
        that kept the list re-reads only those; None when that is no longer known (too many writes)."""
        with self._changes_lock:
            return self._written_since(changes)

    def _written_since(self, changes: int) -> tuple[int, set[str]] | None:
        behind = self._changes - changes
        if behind < 0 or behind > len(self._written):
            return None
        return self._changes, set(list(self._written)[len(self._written) - behind :])

    def fresh_since(self, changes: int) -> tuple[int, dict[str, AppRecord | None]] | None:
        """(``changes`` now, the row of each app this process wrote since ``changes`` as its last
        write committed it, None for a deleted app), so a reader that kept the list catches up without
        reading; None when some of them are not known (see ``written_since``)."""
        with self._changes_lock:
            written = self._written_since(changes)
            if written is None or any(name not in self._fresh for name in written[1]):
                return None
            return written[0], {name: self._fresh[name] for name in written[1]}

    @contextmanager
    def _write(self, what: str, name: str) -> Iterator[sa.Connection]:
        with self._changes_lock:
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
        row: list[tuple[int, AppRecord | None]] = []
        committed = False
        try:
            with self._db.leader_write(what) as conn:
                yield conn
                # Still inside the transaction: the row as this write leaves it (one more select).
                selected = self._select(conn, name)
                with self._changes_lock:
                    self._read_back += 1
                    row.append((self._read_back, selected))
            committed = True
        finally:
            # After the commit (or the failure): a reader that saw the old number re-reads.
            with self._changes_lock:
                self._changes += 1
                self._written.append(name)
                self._in_flight[name] -= 1
                if not committed:
                    # It may have committed all the same (a connection lost at the commit): the row is
                    # not known until every write of the app in flight with it is over.
                    self._failed.add(name)
                    self._fresh.pop(name, None)
                    self._fresh_at.pop(name, None)
                elif name not in self._failed and row[0][0] > self._fresh_at.get(name, 0):
                    self._fresh_at[name], self._fresh[name] = row[0]
                if not self._in_flight[name]:
                    del self._in_flight[name]
                    self._failed.discard(name)
                if len(self._fresh) > 2 * WRITTEN_NAMES_KEPT:  # only names still remembered matter
                    remembered = set(self._written)
                    self._fresh = {n: r for n, r in self._fresh.items() if n in remembered}
                    self._fresh_at = {n: at for n, at in self._fresh_at.items() if n in remembered}

    @staticmethod
    def _from_row(row: sa.Row[Any]) -> AppRecord:
        return AppRecord(**row._mapping)

    def _select(self, conn: sa.Connection, name: str) -> AppRecord | None:
        row = conn.execute(sa.select(t.applications).where(t.applications.c.name == name)).first()
        return self._from_row(row) if row else None

    def get(self, name: str) -> AppRecord | None:
        with self._db.read(f"reading app '{name}'") as conn:
            return self._select(conn, name)

    def list(self) -> list[AppRecord]:
        with self._db.read("listing apps") as conn:
            rows = conn.execute(sa.select(t.applications).order_by(t.applications.c.name))
            return [self._from_row(row) for row in rows]

    def create(self, rec: AppRecord) -> AppRecord:
        """Insert a new app; Conflict when the name is taken."""
        try:
            with self._write(f"creating app '{rec.name}'", rec.name) as conn:
                now = conn.execute(sa.select(self._db.now_sql)).scalar_one()
                values = asdict(rec) | {"created_at": now, "updated_at": now, "generation": 1}
                conn.execute(sa.insert(t.applications).values(**values))
                return AppRecord(**values)
        except IntegrityViolation:
            raise Conflict(
                f"app '{rec.name}' already exists: register with replace to update it, or delete it first"
            ) from None

    def save(self, rec: AppRecord) -> AppRecord:
        """Insert or replace the app's desired state; the generation moves on when the spec changes."""
        with self._write(f"saving app '{rec.name}'", rec.name) as conn:
            now = conn.execute(sa.select(self._db.now_sql)).scalar_one()
            current = self._select(conn, rec.name)
            values = asdict(rec) | {"updated_at": now}
            if current is None:
                values |= {"created_at": now, "generation": 1}
                conn.execute(sa.insert(t.applications).values(**values))
            else:
                changed = current.spec_hash != rec.spec_hash
                values |= {
                    "created_at": current.created_at,
                    "generation": current.generation + (1 if changed else 0),
                }
                conn.execute(
                    sa.update(t.applications).where(t.applications.c.name == rec.name).values(**values)
                )
            return AppRecord(**values)

    def update(self, name: str, **changes: Any) -> AppRecord:
        """Change some fields of an existing app; NotFound when it does not exist."""
        unknown = set(changes) - (self._FIELDS - self._STORE_OWNED)
        if unknown:
            raise TypeError(f"AppRepository.update() cannot set {sorted(unknown)}")
        with self._write(f"updating app '{name}'", name) as conn:
            current = self._select(conn, name)
            if current is None:
                raise NotFound(f"app '{name}' does not exist: register it first")
            values = dict(changes)
            values["updated_at"] = conn.execute(sa.select(self._db.now_sql)).scalar_one()
            if "spec_hash" in changes and changes["spec_hash"] != current.spec_hash:
                values["generation"] = current.generation + 1
            conn.execute(sa.update(t.applications).where(t.applications.c.name == name).values(**values))
            return AppRecord(**(asdict(current) | values))

    def save_status(self, name: str, status: str, reason: str) -> bool:
        """Save a status the reconciler computed, unless the operator stopped the app meanwhile.

        One conditional statement: a ``down`` that lands between the pass's read of the app and this
        write must never be overwritten (the next pass would bring the stopped app back to life).
        False when the app is stopped or gone."""
        with self._write(f"saving the status of app '{name}'", name) as conn:
            now = conn.execute(sa.select(self._db.now_sql)).scalar_one()
            result = conn.execute(
                sa.update(t.applications)
                .where(t.applications.c.name == name, t.applications.c.status != APP_STOPPED)
                .values(status=status, status_reason=reason, updated_at=now)
            )
            return result.rowcount > 0

    def scale(
        self,
        name: str,
        target: int,
        reason: str,
        metrics: dict[str, Any] | None = None,
        expect: tuple[int, float | None] | None = None,
    ) -> tuple[int, float] | None:
        """Set the desired count and add its scaling history row, in one transaction.

        ``expect`` (desired replicas, last scaled at): the state a decision was made on; when the app
        no longer is in it (another scale landed meanwhile), nothing is written and None is returned.
        Otherwise returns (the desired count replaced, the database time of the change).
        NotFound when the app does not exist."""
        apps = t.applications
        with self._write(f"scaling app '{name}'", name) as conn:
            row = conn.execute(
                sa.select(apps.c.desired_replicas, apps.c.last_scaled_at).where(apps.c.name == name)
            ).first()
            if row is None:
                raise NotFound(f"app '{name}' does not exist: register it first")
            if expect is not None and (row.desired_replicas, row.last_scaled_at) != expect:
                return None
            now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
            conn.execute(
                sa.update(apps)
                .where(apps.c.name == name)
                .values(desired_replicas=target, last_scaled_at=now, updated_at=now)
            )
            conn.execute(
                sa.insert(t.scaling_history).values(
                    app=name,
                    from_replicas=row.desired_replicas,
                    to_replicas=target,
                    reason=reason,
                    metrics=metrics or {},
                    timestamp=now,
                )
            )
            return int(row.desired_replicas), now

    def delete(self, name: str) -> bool:
        """Remove the app with its instances, scaling and metric history (events are kept)."""
        with self._write(f"deleting app '{name}'", name) as conn:
            result = conn.execute(sa.delete(t.applications).where(t.applications.c.name == name))
            # Not a foreign key (a period may be written while the app is being deleted): a new app of
            # the same name must not inherit the old one's load.
            conn.execute(sa.delete(t.metric_samples).where(t.metric_samples.c.app == name))
            return result.rowcount > 0


class InstanceRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def list(self, app: str | None = None) -> list[InstanceRecord]:
        query = sa.select(t.instances).order_by(t.instances.c.app, t.instances.c.slot)
        if app is not None:
            query = query.where(t.instances.c.app == app)
        with self._db.read("listing instances") as conn:
            return [InstanceRecord(**row._mapping) for row in conn.execute(query)]

    def upsert(self, rec: InstanceRecord) -> InstanceRecord:
        """Insert or replace the row of (app, slot); NotFound when the app is not registered."""
        try:
            with self._db.leader_write(f"saving instance {rec.app}-{rec.slot}") as conn:
                now = conn.execute(sa.select(self._db.now_sql)).scalar_one()
                values = asdict(rec) | {"updated_at": now}
                changes = {k: v for k, v in values.items() if k not in ("app", "slot")}
                conn.execute(_upsert(self._db, t.instances, values, ["app", "slot"], changes))
                return InstanceRecord(**values)
        except IntegrityViolation:
            raise NotFound(f"app '{rec.app}' does not exist: register it before recording replicas") from None

    def delete(self, app: str, slot: int) -> bool:
        with self._db.leader_write(f"deleting instance {app}-{slot}") as conn:
            result = conn.execute(
                sa.delete(t.instances).where(t.instances.c.app == app, t.instances.c.slot == slot)
            )
            return result.rowcount > 0

    def delete_app(self, app: str) -> int:
        with self._db.leader_write(f"deleting the instances of app '{app}'") as conn:
            return conn.execute(sa.delete(t.instances).where(t.instances.c.app == app)).rowcount


class EventRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self,
        app: str | None,
        category: str,
        kind: str,
        message: str,
        details: dict[str, Any] | None,
        timestamp: float,
    ) -> int:
        values = {
            "app": app,
            "category": category,
            "kind": kind,
            "message": message,
            "details": details or {},
            "timestamp": timestamp,
        }
        with self._db.write(f"recording event '{kind}'") as conn:
            return int(
                conn.execute(sa.insert(t.events).values(**values).returning(t.events.c.id)).scalar_one()
            )

    def query(
        self,
        app: str | None = None,
        category: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Newest first (ties broken by id, newest first)."""
        query = sa.select(t.events).order_by(t.events.c.timestamp.desc(), t.events.c.id.desc())
        if app is not None:
            query = query.where(t.events.c.app == app)
        if category is not None:
            query = query.where(t.events.c.category == category)
        if since is not None:
            query = query.where(t.events.c.timestamp >= since)
        with self._db.read("reading events") as conn:
            return [EventRecord(**row._mapping) for row in conn.execute(query.limit(max(limit, 0)))]

    def prune(self, keep: int = 100_000) -> int:
        """Delete all but the newest ``keep`` events; returns how many went."""
        with self._db.write("pruning old events") as conn:
            boundary = conn.execute(
                sa.select(t.events.c.id).order_by(t.events.c.id.desc()).offset(keep).limit(1)
            ).scalar()
            if boundary is None:
                return 0
            return conn.execute(sa.delete(t.events).where(t.events.c.id <= boundary)).rowcount


class ScalingRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def add(
        self,
        app: str,
        from_replicas: int,
        to_replicas: int,
        reason: str,
        metrics: dict[str, Any] | None,
        timestamp: float,
    ) -> int:
        values = {
            "app": app,
            "from_replicas": from_replicas,
            "to_replicas": to_replicas,
            "reason": reason,
            "metrics": metrics or {},
            "timestamp": timestamp,
        }
        try:
            with self._db.leader_write(f"recording a scaling decision of app '{app}'") as conn:
                statement = sa.insert(t.scaling_history).values(**values).returning(t.scaling_history.c.id)
                return int(conn.execute(statement).scalar_one())
        except IntegrityViolation:
            raise NotFound(f"app '{app}' does not exist: register it before recording scaling") from None

    def list(self, app: str, limit: int = 50) -> list[ScalingRecord]:
        """Newest first."""
        query = (
            sa.select(t.scaling_history)
            .where(t.scaling_history.c.app == app)
            .order_by(t.scaling_history.c.timestamp.desc(), t.scaling_history.c.id.desc())
            .limit(max(limit, 0))
        )
        with self._db.read(f"reading the scaling history of app '{app}'") as conn:
            return [ScalingRecord(**row._mapping) for row in conn.execute(query)]

    def last(self, app: str) -> ScalingRecord | None:
        records = self.list(app, limit=1)
        return records[0] if records else None

    def clear(self, app: str) -> int:
        with self._db.leader_write(f"clearing the scaling history of app '{app}'") as conn:
            return conn.execute(sa.delete(t.scaling_history).where(t.scaling_history.c.app == app)).rowcount


class LeaseRepository:
    """Leader election on one row per term; every time comes from the database clock.

    A candidate may insert term N+1 only when term N has expired or been released; two candidates
    racing for N+1 collide on the primary key and exactly one wins.  The term is the fencing token.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    def db_now(self) -> float:
        return self._db.now()

    @staticmethod
    def _newest(conn: sa.Connection) -> LeaseRecord | None:
        row = conn.execute(sa.select(t.leader_lease).order_by(t.leader_lease.c.term.desc()).limit(1)).first()
        return LeaseRecord(**row._mapping) if row else None

    def current(self) -> LeaseRecord | None:
        """The newest term's row (which may have expired or been released)."""
        with self._db.read("reading the leader lease") as conn:
            return self._newest(conn)

    def history(self, limit: int) -> list[LeaseRecord]:
        """The newest ``limit`` terms' rows, newest first."""
        lease = t.leader_lease
        with self._db.read("reading the leader lease history") as conn:
            rows = conn.execute(sa.select(lease).order_by(lease.c.term.desc()).limit(max(limit, 0)))
            return [LeaseRecord(**row._mapping) for row in rows]

    def is_valid(self, rec: LeaseRecord | None) -> bool:
        """True when ``rec`` is unreleased and unexpired by the database clock."""
        return rec is not None and rec.released_at is None and rec.expires_at > self.db_now()

    def try_acquire(self, node_id: str, hostname: str, api_url: str, ttl: float) -> LeaseRecord | None:
        """Become leader of the next term, or None when a valid lease exists or a peer won the race."""
        try:
            with self._db.write(f"acquiring the leader lease for {node_id}") as conn:
                now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
                newest = self._newest(conn)
                if newest is not None and newest.released_at is None and newest.expires_at > now:
                    return None
                lease = LeaseRecord(
                    term=(newest.term + 1) if newest else 1,
                    leader_id=node_id,
                    hostname=hostname,
                    api_url=api_url,
                    acquired_at=now,
                    renewed_at=now,
                    expires_at=now + ttl,
                )
                conn.execute(sa.insert(t.leader_lease).values(**asdict(lease)))
                self._notify(conn, f"acquired {lease.term}")
                return lease
        except IntegrityViolation:
            return None  # a peer inserted the same term first

    def renew(self, term: int, node_id: str, ttl: float) -> LeaseRecord | None:
        """Extend our lease; None when it is no longer ours, no longer newest, expired or released."""
        lease = t.leader_lease
        newest_term = sa.select(sa.func.max(lease.c.term)).scalar_subquery()
        # Ahead of queued SQLite writes: the lease must be renewed before it runs out (SqliteWriters).
        with self._db.write(f"renewing the leader lease of term {term}", first=True) as conn:
            now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
            result = conn.execute(
                sa.update(lease)
                .where(
                    lease.c.term == term,
                    lease.c.leader_id == node_id,
                    lease.c.released_at.is_(None),
                    lease.c.expires_at > now,
                    lease.c.term == newest_term,
                )
                .values(renewed_at=now, expires_at=now + ttl)
            )
            if result.rowcount != 1:
                return None
            row = conn.execute(sa.select(lease).where(lease.c.term == term)).one()
            return LeaseRecord(**row._mapping)

    def release(self, term: int, node_id: str) -> bool:
        """Give the lease up so a peer can take over at once."""
        lease = t.leader_lease
        with self._db.write(f"releasing the leader lease of term {term}") as conn:
            result = conn.execute(
                sa.update(lease)
                .where(lease.c.term == term, lease.c.leader_id == node_id, lease.c.released_at.is_(None))
                .values(released_at=self._db.now_sql)
            )
            if result.rowcount > 0:
                self._notify(conn, f"released {term}")
            return result.rowcount > 0

    def set_api_url(self, term: int, node_id: str, api_url: str) -> bool:
        """Correct where the holder of ``term`` serves its API (it learns that only once it has bound)."""
        lease = t.leader_lease
        with self._db.write(f"recording the API address of term {term}") as conn:
            result = conn.execute(
                sa.update(lease)
                .where(lease.c.term == term, lease.c.leader_id == node_id)
                .values(api_url=api_url)
            )
            return result.rowcount > 0

    def _notify(self, conn: sa.Connection, payload: str) -> None:
        """Wake listening peers when this transaction commits (PostgreSQL; SQLite has one node)."""
        if self._db.dialect == "postgresql":
            statement, params = notify_sql(payload)
            conn.execute(statement, params)

    def newest_and_now(self) -> tuple[LeaseRecord | None, float]:
        """The newest term's row and the database clock, read together (when does it expire?)."""
        with self._db.read("reading the leader lease") as conn:
            now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
            return self._newest(conn), now


class NodeRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def heartbeat(
        self, node_id: str, hostname: str, api_url: str, forget_after: float | None = None
    ) -> NodeRecord:
        """Register the node or refresh its heartbeat (database clock).

        With ``forget_after``, other nodes silent for longer are deleted in the same transaction: a
        controller that crashed (a clean quit removes its own row) is shown down for that long, not
        forever (node ids carry the pid, so each console run would add a row for good)."""
        with self._db.write(f"recording the heartbeat of node {node_id}") as conn:
            now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
            if forget_after is not None:
                conn.execute(
                    sa.delete(t.cluster_nodes).where(
                        t.cluster_nodes.c.last_heartbeat < now - forget_after,
                        t.cluster_nodes.c.node_id != node_id,
                    )
                )
            values = {
                "node_id": node_id,
                "hostname": hostname,
                "api_url": api_url,
                "last_heartbeat": now,
                "started_at": now,
            }
            update = {"hostname": hostname, "api_url": api_url, "last_heartbeat": now}
            conn.execute(_upsert(self._db, t.cluster_nodes, values, ["node_id"], update))
            row = conn.execute(sa.select(t.cluster_nodes).where(t.cluster_nodes.c.node_id == node_id)).one()
            return NodeRecord(**row._mapping)

    def list(self) -> list[NodeRecord]:
        with self._db.read("listing cluster nodes") as conn:
            rows = conn.execute(sa.select(t.cluster_nodes).order_by(t.cluster_nodes.c.node_id))
            return [NodeRecord(**row._mapping) for row in rows]

    def remove(self, node_id: str) -> bool:
        with self._db.write(f"removing node {node_id}") as conn:
            result = conn.execute(sa.delete(t.cluster_nodes).where(t.cluster_nodes.c.node_id == node_id))
            return result.rowcount > 0


class SecretRepository:
    """Encrypted secret blobs; encryption and validation live in core.secrets."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def put(self, name: str, field_names: list[str], ciphertext: bytes) -> None:
        with self._db.leader_write(f"saving secret '{name}'") as conn:
            now = float(conn.execute(sa.select(self._db.now_sql)).scalar_one())
            values = {
                "name": name,
                "ciphertext": ciphertext,
                "field_names": sorted(field_names),
                "created_at": now,
                "updated_at": now,
            }
            update = {"ciphertext": ciphertext, "field_names": sorted(field_names), "updated_at": now}
            conn.execute(_upsert(self._db, t.secrets, values, ["name"], update))

    def get(self, name: str) -> tuple[list[str], bytes] | None:
        with self._db.read(f"reading secret '{name}'") as conn:
            row = conn.execute(
                sa.select(t.secrets.c.field_names, t.secrets.c.ciphertext).where(t.secrets.c.name == name)
            ).first()
            return (list(row.field_names), bytes(row.ciphertext)) if row else None

    def list(self) -> dict[str, list[str]]:
        with self._db.read("listing secrets") as conn:
            rows = conn.execute(
                sa.select(t.secrets.c.name, t.secrets.c.field_names).order_by(t.secrets.c.name)
            )
            return {row.name: list(row.field_names) for row in rows}

    def delete(self, name: str) -> bool:
        with self._db.leader_write(f"deleting secret '{name}'") as conn:
            return conn.execute(sa.delete(t.secrets).where(t.secrets.c.name == name)).rowcount > 0


class IdentityRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    def cluster_id(self) -> str:
        """This database's cluster id (migration 0002 creates it; it never changes)."""
        with self._db.read("reading the cluster id") as conn:
            value = conn.execute(
                sa.select(t.cluster_identity.c.cluster_id).where(t.cluster_identity.c.id == 1)
            ).scalar_one_or_none()
        if value is None:
            raise StoreError(
                "the database has no cluster id (table cluster_identity is empty): "
                "run `orchestry db upgrade`, or restore the row from a backup"
            )
        return str(value)

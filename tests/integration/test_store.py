"""The store on both SQLite and PostgreSQL: every repository, the lease election, error handling."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import Conflict, NotFound, StoreError
from core.store import AppRecord, InstanceRecord, Store
from tests.conftest import unique_name


def app_record(name: str, spec_hash: str = "h1", **changes: object) -> AppRecord:
    return AppRecord(
        name=name,
        spec={"image": "orchestry/demo:latest", "secretless": True},
        raw={"metadata": {"name": name}},
        spec_hash=spec_hash,
        **changes,  # type: ignore[arg-type]
    )


# --- store ---------------------------------------------------------------------------------------


def test_clock_is_the_database_clock_in_epoch_seconds(store: Store) -> None:
    assert abs(store.now() - time.time()) < 5
    store.ping()


def test_sqlite_store_creates_its_directory_and_uses_wal(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'o.db'}"
    opened = Store.open(url)
    try:
        with opened.database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        opened.close()
    assert (tmp_path / "nested" / "deeper" / "o.db").exists()


def test_opening_twice_is_idempotent(database_url: str) -> None:
    Store.open(database_url).close()
    again = Store.open(database_url)
    assert again.apps.list() == []
    again.close()


def test_each_database_has_its_own_cluster_id_that_survives_reopening(
    database_url: str, tmp_path: Path
) -> None:
    first = Store.open(database_url)
    try:
        cluster_id = first.identity.cluster_id()
    finally:
        first.close()
    assert len(cluster_id) == 32 and int(cluster_id, 16) >= 0
    again = Store.open(database_url)
    other = Store.open(f"sqlite:///{tmp_path}/other.db")
    try:
        assert again.identity.cluster_id() == cluster_id
        assert other.identity.cluster_id() != cluster_id
    finally:
        again.close()
        other.close()


def test_unreachable_database_is_a_store_error_with_a_clear_message() -> None:
    with pytest.raises(StoreError) as caught:
        Store.open("postgresql://nobody@127.0.0.1:1/nothing")
    assert "127.0.0.1:1" in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="not supported"):
        Store.open("mysql://x@127.0.0.1/db")
    with pytest.raises(StoreError, match="in-memory"):
        Store.open("sqlite://")


def test_one_failed_statement_does_not_poison_the_store(store: Store) -> None:
    name = unique_name()
    store.apps.create(app_record(name))
    with pytest.raises(Conflict):
        store.apps.create(app_record(name))
    with pytest.raises(StoreError):
        with store.database.write("running a broken statement") as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
    assert [a.name for a in store.apps.list()] == [name]
    store.ping()


def test_postgres_connections_killed_under_the_store_are_replaced(pg_database_url: str) -> None:
    store = Store.open(pg_database_url)
    try:
        store.ping()
        database = sa.make_url(pg_database_url).database
        admin = sa.create_engine(sa.make_url(pg_database_url).set(database="test"))
        with admin.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar()
        admin.dispose()
        assert killed >= 1
        store.ping()
        assert store.apps.list() == []
    finally:
        store.close()


# --- applications --------------------------------------------------------------------------------


def test_app_create_get_list(store: Store) -> None:
    first, second = "b-" + unique_name(), "a-" + unique_name()
    created = store.apps.create(app_record(first, policy={"minReplicas": 1}))
    store.apps.create(app_record(second))
    assert created.generation == 1
    assert created.created_at == created.updated_at > 0
    loaded = store.apps.get(first)
    assert loaded == created
    assert loaded.policy == {"minReplicas": 1}
    assert [a.name for a in store.apps.list()] == [second, first]
    assert store.apps.get("missing") is None


def test_duplicate_create_is_a_conflict_naming_the_app(store: Store) -> None:
    name = unique_name()
    store.apps.create(app_record(name))
    with pytest.raises(Conflict, match=name):
        store.apps.create(app_record(name))


def test_save_upserts_and_bumps_generation_only_on_spec_change(store: Store) -> None:
    name = unique_name()
    first = store.apps.save(app_record(name, "h1"))
    assert first.generation == 1
    same = store.apps.save(app_record(name, "h1", desired_replicas=3))
    assert same.generation == 1
    assert same.desired_replicas == 3
    assert same.created_at == first.created_at
    changed = store.apps.save(app_record(name, "h2"))
    assert changed.generation == 2
    assert store.apps.get(name).generation == 2


def test_update_changes_fields_and_missing_app_is_not_found(store: Store) -> None:
    name = unique_name()
    created = store.apps.create(app_record(name))
    updated = store.apps.update(name, status="running", desired_replicas=4, last_scaled_at=123.5)
    assert (updated.status, updated.desired_replicas, updated.last_scaled_at) == ("running", 4, 123.5)
    assert updated.generation == 1
    assert updated.updated_at >= created.updated_at
    assert store.apps.get(name) == updated
    assert store.apps.update(name, spec_hash="other").generation == 2
    with pytest.raises(NotFound, match="nope"):
        store.apps.update("nope", status="running")
    with pytest.raises(TypeError):
        store.apps.update(name, generation=9)


def test_delete_cascades_instances_and_scaling_history_but_keeps_events(store: Store) -> None:
    name, other = unique_name(), unique_name()
    for app in (name, other):
        store.apps.create(app_record(app))
        store.instances.upsert(InstanceRecord(app=app, slot=1, container_id="c1", port=9001))
        store.scaling.add(app, 1, 2, "rps 90 > 80", {"rps": 90.0}, time.time())
    store.events.add(name, "lifecycle", "registered", "registered", {}, time.time())
    assert store.apps.delete(name) is True
    assert store.apps.delete(name) is False
    assert store.instances.list(name) == []
    assert store.scaling.list(name) == []
    assert len(store.events.query(app=name)) == 1
    assert len(store.instances.list(other)) == 1
    assert len(store.scaling.list(other)) == 1


# --- instances -----------------------------------------------------------------------------------


def test_instances_upsert_list_delete(store: Store) -> None:
    name = unique_name()
    store.apps.create(app_record(name))
    store.instances.upsert(InstanceRecord(app=name, slot=2, container_id="c2", port=9002))
    store.instances.upsert(InstanceRecord(app=name, slot=1, container_id="c1", port=9001))
    store.instances.upsert(
        InstanceRecord(app=name, slot=1, container_id="c1b", port=9011, state="ready", ready=True, failures=2)
    )
    listed = store.instances.list(name)
    assert [(i.slot, i.container_id, i.ready, i.failures) for i in listed] == [
        (1, "c1b", True, 2),
        (2, "c2", False, 0),
    ]
    assert all(i.updated_at > 0 for i in listed)
    assert len(store.instances.list()) >= 2
    assert store.instances.delete(name, 2) is True
    assert store.instances.delete(name, 2) is False
    assert [i.slot for i in store.instances.list(name)] == [1]
    assert store.instances.delete_app(name) == 1
    assert store.instances.list(name) == []


def test_instance_of_unknown_app_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="ghost"):
        store.instances.upsert(InstanceRecord(app="ghost", slot=1))


# --- events --------------------------------------------------------------------------------------


def test_events_newest_first_with_filters_since_and_limit(store: Store) -> None:
    web, api = unique_name(), unique_name()
    ids = [
        store.events.add(web, "lifecycle", "registered", "web registered", {"n": 1}, 100.0),
        store.events.add(api, "scaling", "scaled", "api scaled 1 -> 2", {"to": 2}, 101.0),
        store.events.add(web, "health", "unhealthy", "web-1 failed", {}, 102.0),
        store.events.add(None, "cluster", "leader", "became leader", {}, 102.0),
    ]
    assert ids == sorted(ids)
    events = store.events.query()
    # Same timestamp: the later insert comes first.
    assert [e.id for e in events] == [ids[3], ids[2], ids[1], ids[0]]
    assert events[3].details == {"n": 1}
    assert [e.kind for e in store.events.query(app=web)] == ["unhealthy", "registered"]
    assert [e.kind for e in store.events.query(category="scaling")] == ["scaled"]
    assert [e.kind for e in store.events.query(since=101.5)] == ["leader", "unhealthy"]
    assert [e.kind for e in store.events.query(limit=1)] == ["leader"]
    assert store.events.query(app=web, category="scaling") == []


def test_event_prune_keeps_the_newest(store: Store) -> None:
    ids = [store.events.add(None, "lifecycle", "k", f"m{i}", {}, float(i)) for i in range(10)]
    assert store.events.prune(keep=3) == 7
    assert [e.id for e in store.events.query()] == ids[-1:-4:-1]
    assert store.events.prune(keep=3) == 0


# --- scaling history -----------------------------------------------------------------------------


def test_scaling_history(store: Store) -> None:
    name = unique_name()
    store.apps.create(app_record(name))
    assert store.scaling.last(name) is None
    store.scaling.add(name, 1, 2, "rps 90 > 80", {"rps": 90.0}, 10.0)
    newest = store.scaling.add(name, 2, 3, "cpu 85 > 70", {"cpu": 85.0}, 20.0)
    history = store.scaling.list(name)
    assert [(r.from_replicas, r.to_replicas) for r in history] == [(2, 3), (1, 2)]
    last = store.scaling.last(name)
    assert (last.id, last.reason, last.metrics, last.app) == (newest, "cpu 85 > 70", {"cpu": 85.0}, name)
    assert len(store.scaling.list(name, limit=1)) == 1
    assert store.scaling.clear(name) == 2
    assert store.scaling.list(name) == []


# --- leader lease --------------------------------------------------------------------------------


def test_lease_election_expiry_and_fencing(store: Store) -> None:
    leases = store.leases
    assert leases.current() is None
    first = leases.try_acquire("node-a", "host-a", "http://127.0.0.1:8001", ttl=1.0)
    assert first is not None and first.term == 1
    assert abs(first.expires_at - first.acquired_at - 1.0) < 1e-6
    assert leases.is_valid(first)
    assert leases.try_acquire("node-b", "host-b", "http://127.0.0.1:8002", ttl=1.0) is None
    renewed = leases.renew(1, "node-a", ttl=1.0)
    assert renewed is not None and renewed.expires_at >= first.expires_at
    assert leases.renew(1, "node-b", ttl=1.0) is None  # not the holder

    time.sleep(1.2)
    assert not leases.is_valid(leases.current())
    second = leases.try_acquire("node-b", "host-b", "http://127.0.0.1:8002", ttl=5.0)
    assert second is not None and second.term == 2
    assert leases.current() == second
    # The old holder is fenced off: its term is no longer the newest.
    assert leases.renew(1, "node-a", ttl=5.0) is None
    assert leases.release(1, "node-a") is True  # releasing a superseded term harms nobody
    assert leases.is_valid(leases.current())


def test_expired_lease_cannot_be_renewed(store: Store) -> None:
    lease = store.leases.try_acquire("node-a", "h", "u", ttl=0.5)
    time.sleep(0.7)
    assert store.leases.renew(lease.term, "node-a", ttl=5.0) is None


def test_release_lets_a_peer_acquire_at_once(store: Store) -> None:
    lease = store.leases.try_acquire("node-a", "h", "u", ttl=60)
    assert store.leases.release(lease.term, "node-b") is False
    assert store.leases.release(lease.term, "node-a") is True
    assert store.leases.release(lease.term, "node-a") is False
    assert not store.leases.is_valid(store.leases.current())
    assert store.leases.renew(lease.term, "node-a", ttl=60) is None
    peer = store.leases.try_acquire("node-b", "h", "u", ttl=60)
    assert peer is not None and peer.term == lease.term + 1


def test_racing_candidates_yield_exactly_one_winner(database_url: str) -> None:
    stores = [Store.open(database_url) for _ in range(6)]
    try:
        barrier = threading.Barrier(len(stores))
        results: list[object] = [None] * len(stores)

        def candidate(index: int) -> None:
            barrier.wait()
            results[index] = stores[index].leases.try_acquire(f"node-{index}", "h", "u", ttl=30)

        threads = [threading.Thread(target=candidate, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert winners[0].term == 1
        assert stores[0].leases.current() == winners[0]
    finally:
        for opened in stores:
            opened.close()


def test_racing_for_an_expired_terms_successor_yields_one_winner(database_url: str) -> None:
    setup = Store.open(database_url)
    setup.leases.try_acquire("old", "h", "u", ttl=0.2)
    time.sleep(0.4)
    stores = [Store.open(database_url) for _ in range(4)]
    try:
        barrier = threading.Barrier(len(stores))
        results: list[object] = [None] * len(stores)

        def candidate(index: int) -> None:
            barrier.wait()
            results[index] = stores[index].leases.try_acquire(f"node-{index}", "h", "u", ttl=30)

        threads = [threading.Thread(target=candidate, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        winners = [r for r in results if r is not None]
        assert [w.term for w in winners] == [2]
    finally:
        for opened in [setup, *stores]:
            opened.close()


# --- cluster nodes -------------------------------------------------------------------------------


def test_node_heartbeats(store: Store) -> None:
    first = store.nodes.heartbeat("node-b", "host-b", "http://127.0.0.1:8002")
    store.nodes.heartbeat("node-a", "host-a", "http://127.0.0.1:8001")
    time.sleep(0.05)
    again = store.nodes.heartbeat("node-b", "host-b2", "http://127.0.0.1:8003")
    assert again.started_at == first.started_at
    assert again.last_heartbeat > first.last_heartbeat
    assert again.api_url == "http://127.0.0.1:8003"
    assert [n.node_id for n in store.nodes.list()] == ["node-a", "node-b"]
    assert store.nodes.remove("node-a") is True
    assert store.nodes.remove("node-a") is False
    assert [n.node_id for n in store.nodes.list()] == ["node-b"]


def test_a_heartbeat_forgets_nodes_silent_past_the_retention(store: Store) -> None:
    """A crashed controller's row is shown down for the retention, then deleted: not kept forever."""
    for node in ("crashed-long-ago", "crashed-a-minute-ago", "beating"):
        store.nodes.heartbeat(node, "host", "http://127.0.0.1:8001")
    with store.database.engine.begin() as conn:
        for node, silent in (("crashed-long-ago", 7200.0), ("crashed-a-minute-ago", 60.0)):
            conn.execute(
                sa.text("UPDATE cluster_nodes SET last_heartbeat = last_heartbeat - :s WHERE node_id = :n"),
                {"s": silent, "n": node},
            )
    store.nodes.heartbeat("beating", "host", "http://127.0.0.1:8001")  # no retention: forgets nothing
    assert [n.node_id for n in store.nodes.list()] == ["beating", "crashed-a-minute-ago", "crashed-long-ago"]
    store.nodes.heartbeat("beating", "host", "http://127.0.0.1:8001", forget_after=3600.0)
    assert [n.node_id for n in store.nodes.list()] == ["beating", "crashed-a-minute-ago"]


# --- secrets (the raw repository; encryption is tested in test_secrets.py) ----------------------


def test_secret_repository_round_trip(store: Store) -> None:
    assert store.secrets.get("db") is None
    store.secrets.put("db", ["user", "password"], b"\x00cipher")
    assert store.secrets.get("db") == (["password", "user"], b"\x00cipher")
    store.secrets.put("db", ["password"], b"other")
    assert store.secrets.list() == {"db": ["password"]}
    assert store.secrets.delete("db") is True
    assert store.secrets.delete("db") is False
    assert store.secrets.list() == {}

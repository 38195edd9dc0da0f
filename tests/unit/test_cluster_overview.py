"""Term history and node states of the cluster pane, from lease rows and heartbeats (pure logic)."""

from __future__ import annotations

from core.cluster_overview import NodeHealth, fenced_terms, node_rows, term_history
from core.models import Event
from core.store.records import LeaseRecord, NodeRecord

NOW = 1_000.0


def lease(
    term: int, leader: str, acquired: float, expires: float, released: float | None = None
) -> LeaseRecord:
    return LeaseRecord(
        term, leader, f"host-{leader}", f"http://{leader}", acquired, acquired, expires, released
    )


def test_each_term_says_who_led_from_when_to_when_and_why_it_ended() -> None:
    leases = [
        lease(1, "a", 100, 200, released=150),  # stepped down
        lease(2, "b", 151, 300),  # killed: expired, term 3 followed
        lease(3, "c", 305, 400),  # frozen past its lease, renew refused later
        lease(4, "a", 401, NOW + 20),  # the live lease
    ]
    fenced = fenced_terms(
        [Event(9, None, "cluster", "became_follower", "lost", {"term": 3, "term_ended": "fenced"}, 420)]
    )
    history = term_history(leases, fenced, NOW)
    assert [(h["term"], h["leader_id"], h["ended"]) for h in history] == [
        (4, "a", None),
        (3, "c", "fenced"),
        (2, "b", "expired"),
        (1, "a", "released"),
    ]
    assert history[3]["ended_at"] == 150 and history[2]["ended_at"] == 300 and history[0]["ended_at"] is None


def test_a_lone_expired_lease_reads_expired_not_current() -> None:
    assert term_history([lease(5, "a", 100, NOW - 1)], set(), NOW)[0]["ended"] == "expired"


def test_node_states_heartbeat_age_and_database() -> None:
    nodes = [
        NodeRecord("a", "ha", "http://a", NOW - 1, 0),
        NodeRecord("b", "hb", "http://b", NOW - 2, 0),
        NodeRecord("c", "hc", "http://c", NOW - 60, 0),  # killed a minute ago
    ]
    health = {
        "a": NodeHealth(True, "2.0.0", "ok", True),
        "b": NodeHealth(True, "2.0.0", "error", False),
        "c": NodeHealth(False),
    }
    rows = {r["node_id"]: r for r in node_rows(nodes, "a", NOW, 9, health)}
    assert (
        rows["a"]["state"] == "leader" and rows["a"]["database"] == "ok" and rows["a"]["version"] == "2.0.0"
    )
    assert rows["b"]["state"] == "follower" and rows["b"]["database"] == "error"
    assert rows["c"]["state"] == "down" and rows["c"]["database"] == "unknown"
    assert rows["c"]["heartbeat_age"] == 60 and rows["c"]["reachable"] is False
    nobody = {r["node_id"]: r["state"] for r in node_rows(nodes, None, NOW, 9, health)}
    assert nobody == {"a": "candidate", "b": "candidate", "c": "down"}

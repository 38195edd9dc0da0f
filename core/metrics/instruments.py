"""The events Orchestry counts, as Prometheus families (see ``core.metrics.registry``).

One process-wide registry, like a Prometheus client's default one: the code where an event happens
imports its instrument and counts it, with no plumbing through constructors. Several engines in one
process (tests) add to the same counters, which is what counters are for; per-engine state (leadership,
replicas) is read at scrape time instead. Label values: see the registry's docstring for the bounds.
"""

from __future__ import annotations

from core.metrics.registry import LEASE_BUCKETS, PASS_BUCKETS, REQUEST_BUCKETS, Registry

REGISTRY = Registry()

REQUESTS = REGISTRY.counter(
    "orchestry_app_requests_total",
    "Requests nginx answered for the app, by status class (1xx-5xx), from its access log",
    ("app", "status_class"),
)
REQUEST_DURATION = REGISTRY.histogram(
    "orchestry_app_request_duration_seconds",
    "Client-visible request duration ($request_time) of the app's requests",
    ("app",),
    REQUEST_BUCKETS,
)
REPLICA_REQUESTS = REGISTRY.counter(
    "orchestry_replica_requests_total",
    "Requests answered by one replica, by slot (at most maxReplicas slots per app)",
    ("app", "slot"),
)
REPLICA_RESTARTS = REGISTRY.counter(
    "orchestry_replica_restarts_total",
    "Replicas that exited or failed and were replaced, by slot",
    ("app", "slot"),
)
HEALTH_CHECK_FAILURES = REGISTRY.counter(
    "orchestry_health_check_failures_total",
    "Failed health probes of replicas that were serving",
    ("app",),
)
SCALING_DECISIONS = REGISTRY.counter(
    "orchestry_scaling_decisions_total",
    "Changes of an app's desired replicas, by direction (up/down) and deciding metric (manual: an operator)",
    ("app", "direction", "metric"),
)
NGINX_RELOADS = REGISTRY.counter("orchestry_nginx_reloads_total", "nginx reloads that took effect")
NGINX_RELOAD_FAILURES = REGISTRY.counter(
    "orchestry_nginx_reload_failures_total",
    "Configuration changes nginx did not take, by stage (test: nginx -t refused it; reload)",
    ("stage",),
)
RECONCILE_ERRORS = REGISTRY.counter(
    "orchestry_reconcile_errors_total", "Reconcile passes that failed", ("app",)
)
RECONCILE_DURATION = REGISTRY.histogram(
    "orchestry_reconcile_duration_seconds",
    "Duration of one reconcile pass of one app",
    (),
    PASS_BUCKETS,
)
LEADER_CHANGES = REGISTRY.counter(
    "orchestry_leader_changes_total",
    "Changes of this node's cluster state, by the state it entered (leader, follower, candidate)",
    ("state",),
)

LEASE_RENEW_DURATION = REGISTRY.histogram(
    "orchestry_lease_renew_duration_seconds",
    "Duration of the leader's lease renewals that the store answered (granted or refused)",
    (),
    LEASE_BUCKETS,
)
LEASE_RENEW_FAILURES = REGISTRY.counter(
    "orchestry_lease_renew_failures_total", "Lease renewals of the leader that failed on the store"
)

# Label values known in advance start at 0 (see Counter.start): the first failure shows in increase().
for _stage in ("test", "reload"):
    NGINX_RELOAD_FAILURES.start(stage=_stage)
for _state in ("leader", "follower", "candidate"):
    LEADER_CHANGES.start(state=_state)
# An app's status classes worth an alert; 1xx and "other" appear when they happen.
STARTED_STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def forget_app(app: str) -> None:
    """A deleted app's series go with it: names of deleted apps never accumulate."""
    REGISTRY.forget("app", app)


def track_apps(apps: set[str]) -> None:
    """At each scrape, with the apps the store knows: their counters exist (at 0 until counted), and
    those of any other app go (deleted while another node led, so ``forget_app`` never ran here)."""
    REGISTRY.keep_only("app", apps)
    for app in apps:
        for status in STARTED_STATUS_CLASSES:
            REQUESTS.start(app=app, status_class=status)
        HEALTH_CHECK_FAILURES.start(app=app)
        RECONCILE_ERRORS.start(app=app)

"""What to do about a write a node refused because it does not lead (503).

The API's sentence ("Not the leader. Leader is: node2") names a node id; a CLI user needs the leader's
URL, or to know that the named leader is gone and a successor is being elected."""

from __future__ import annotations

from orchestry_tui.client.http import ApiClient, ApiError, DaemonUnreachable

# Asked only after a refusal, so a dead leader costs a second at most, never the client's 60 s.
LOOKUP_TIMEOUT = 1.0
RETRY = "retry in a few seconds: a leader that is down is replaced within the lease TTL (LEADER_LEASE_TTL)"


def is_leadership_refusal(error: ApiError) -> bool:
    return error.status == 503 and (error.leader is not None or error.detail.startswith("No leader"))


def leader_hint(client: ApiClient, leader: str | None) -> str:
    """Where to send the request instead: the leader's API if it answers, else when to retry."""
    if not leader:
        return RETRY
    try:
        answer = ApiClient(client.base_url, client.token, timeout=LOOKUP_TIMEOUT).get("/cluster/leader")
        api_url = str(answer.get("api_url") or "").rstrip("/")
        if not api_url or api_url == client.base_url:
            return RETRY
        ApiClient(api_url, client.token, timeout=LOOKUP_TIMEOUT).get("/health")
    except (ApiError, DaemonUnreachable, ValueError, AttributeError):
        return f"{leader} does not answer: {RETRY}"
    return f"send it to the leader's API: --url {api_url} (or through the controller LB)"

"""What a console whose node does not lead says when a key asks it to change something.

Only the lease holder changes apps: a follower's engine (or a follower daemon's API) refuses every
write.  The console knows its node follows from every refresh, so a write key says so at once, with
where the changes are made, instead of opening a dialog whose answer the engine then throws away.
Pure text from plain data (no Textual), so the wording is tested without a screen.
"""

from __future__ import annotations

from orchestry_tui.console.frame import Leadership


def follower_refusal(leadership: Leadership | None, what: str, attached_to: str = "") -> str:
    """Why ``what`` (e.g. "scaling web") cannot be done from this console now, or "" when it can.

    ``attached_to`` is the daemon URL of a console started with --connect ("" for the embedded engine).
    """
    if leadership is None or leadership.is_leader:
        return ""
    me, leader = leadership.node_id, leadership.leader_id
    where = f"the daemon at {attached_to} (node {me})" if attached_to else f"this console's node {me}"
    if leader is None or leader == me:
        return (
            f"{what} is refused: no node leads right now, and only the leader changes apps; "
            "one is elected within the lease TTL (LEADER_LEASE_TTL): try again in a few seconds"
        )
    url = leadership.leader_api_url
    connect = f"orchestry --connect {url}" if url else "orchestry --connect LEADER-URL"
    return (
        f"{what} is refused: {where} follows {leader}, and only the leader changes apps. Steer them "
        f"from a console attached to it: `{connect}` (L asks it to step down, so a follower takes over)"
    )

"""Whether a batch of nginx file changes only adds servers to upstreams that already had some.

Such a reload is live as soon as its new workers serve: the old workers, which nginx's master keeps
accepting for another 100 ms before it tells them to stop, still send every request to a replica that is
ready.  Any other change (a server taken away, a first server, a new or removed app, another balancing
method, raw files) must wait until the old workers stop accepting, or a request could still reach a
replica that left the list after the change was reported live.
"""

from __future__ import annotations

from core.lb.render import CONF_SUFFIX, LOCATIONS_SUFFIX, AppRoute


def only_adds_servers(
    desired: dict[str, str],
    previous: dict[str, str],
    live_routes: dict[str, AppRoute],
    desired_routes: dict[str, AppRoute],
    raw_names: set[str],
) -> bool:
    """``desired``/``previous``: conf-dir file name → content wanted / served now.  ``live_routes``: the
    routes nginx serves as far as this controller knows (an app it does not know counts as a change
    that takes something away); ``desired_routes``: the routes ``desired`` renders; ``raw_names``:
    files written verbatim (never judged additive)."""
    for name in set(desired) | set(previous):
        if desired.get(name) == previous.get(name):
            continue
        if name in raw_names:
            return False
        app = name.removesuffix(CONF_SUFFIX).removesuffix(LOCATIONS_SUFFIX)
        live, wanted = live_routes.get(app), desired_routes.get(app)
        if live is None or wanted is None or not live.servers:
            return False
        if live.load_balancing != wanted.load_balancing or not set(live.servers) <= set(wanted.servers):
            return False
    return True

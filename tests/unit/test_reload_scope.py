"""Which nginx reloads may count as live as soon as their new workers serve (only servers added)."""

from __future__ import annotations

from core.lb.reload_scope import only_adds_servers
from core.lb.render import AppRoute, Upstream, render_app_config

A, B, C = (Upstream("127.0.0.1", port) for port in (20001, 20002, 20003))


def files(*routes: AppRoute) -> dict[str, str]:
    out: dict[str, str] = {}
    for route in routes:
        out.update(render_app_config(route, None))
    return out


def judge(live: list[AppRoute], wanted: list[AppRoute], raw: dict[str, str] | None = None) -> bool:
    previous = files(*live)
    desired = files(*wanted) | (raw or {})
    return only_adds_servers(
        desired,
        previous,
        {r.name: r for r in live},
        {r.name: r for r in wanted},
        set(raw or {}),
    )


def test_more_servers_for_an_app_that_had_some_is_only_an_addition() -> None:
    assert judge([AppRoute("web", (A,))], [AppRoute("web", (A, B, C))])
    # Another app's files are untouched: they do not count.
    assert judge(
        [AppRoute("web", (A,)), AppRoute("api", (C,))], [AppRoute("web", (A, B)), AppRoute("api", (C,))]
    )


def test_a_server_taken_away_is_not_an_addition_even_with_others_added() -> None:
    assert not judge([AppRoute("web", (A, B))], [AppRoute("web", (A,))])
    assert not judge([AppRoute("web", (A, B))], [AppRoute("web", (A, C))])


def test_a_first_server_is_not_an_addition() -> None:
    # Old workers would still answer 503 "no ready replicas" for an app that reports one ready.
    assert not judge([AppRoute("web", ())], [AppRoute("web", (A,))])


def test_a_new_app_a_removed_app_or_another_balancing_method_is_not_an_addition() -> None:
    assert not judge([], [AppRoute("web", (A,))])
    assert not judge([AppRoute("web", (A,))], [])
    assert not judge([AppRoute("web", (A,), "least_conn")], [AppRoute("web", (A, B), "round_robin")])


def test_raw_files_are_never_an_addition() -> None:
    assert not judge([AppRoute("web", (A,))], [AppRoute("web", (A,))], raw={"extra.conf": "# x\n"})


def test_an_app_whose_live_route_is_unknown_is_not_an_addition() -> None:
    # Files adopted from disk (another node wrote them): what they route to is not known here.
    desired = files(AppRoute("web", (A, B)))
    previous = files(AppRoute("web", (A,)))
    assert not only_adds_servers(desired, previous, {}, {"web": AppRoute("web", (A, B))}, set())


def test_nothing_changed_is_trivially_an_addition() -> None:
    assert judge([AppRoute("web", (A,))], [AppRoute("web", (A,))])

"""nginx config rendering: what a request through the generated config will meet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core.lb.render import AppRoute, Upstream, only_servers_differ, render_app_config, render_main_config

LOG_FORMAT = (
    "log_format orchestry escape=json "
    """'{"t":$msec,"app":"$orchestry_app","status":$status,"rt":$request_time,"ua":"$upstream_addr","""
    """"us":"$upstream_status","urt":"$upstream_response_time","m":"$request_method","""
    """"bytes":$body_bytes_sent}';"""
)

TWO = (Upstream("127.0.0.1", 9001), Upstream("127.0.0.1", 9002))


def _main(tmp_path: Path, domain: str | None = None) -> str:
    return render_main_config(
        tmp_path, "127.0.0.1", 8080, domain, tmp_path / "conf.d", tmp_path / "access.log"
    )


def test_main_config_keeps_everything_under_the_prefix(tmp_path: Path) -> None:
    text = _main(tmp_path)
    assert f'pid "{tmp_path}/nginx.pid";' in text
    for directive in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f'{directive}_temp_path "{tmp_path}/temp/{directive}";' in text
    assert f'error_log "{tmp_path}/error.log"' in text
    assert "worker_shutdown_timeout 30s;" in text
    assert f'access_log "{tmp_path}/access.log" orchestry;' in text


def test_access_log_format_is_byte_exact(tmp_path: Path) -> None:
    assert LOG_FORMAT in _main(tmp_path)


def test_one_default_server_includes_every_app(tmp_path: Path) -> None:
    text = _main(tmp_path)
    assert text.count(" default_server;") == 1
    assert "listen 127.0.0.1:8080 default_server;" in text
    assert f'include "{tmp_path}/conf.d/*.conf";' in text
    assert f'include "{tmp_path}/conf.d/*.locations";' in text
    assert "location = /nginx_status" in text and "stub_status;" in text
    assert 'set $orchestry_app "";' in text


def test_ipv6_listen_is_bracketed(tmp_path: Path) -> None:
    text = render_main_config(tmp_path, "::1", 8080, None, tmp_path, tmp_path / "a.log")
    assert "listen [::1]:8080 default_server;" in text


def test_path_routing_strips_the_prefix_and_redirects_the_bare_name() -> None:
    files = render_app_config(AppRoute("web", TWO), None)
    assert set(files) == {"web.conf", "web.locations"}
    locations = files["web.locations"]
    assert "location /web/ {" in locations
    assert (
        "proxy_pass http://orchestry_web/;" in locations
    )  # trailing slash: /web/x reaches the replica as /x
    assert "location = /web {" in locations
    assert "return 301 /web/$is_args$args;" in locations
    assert 'set $orchestry_app "web";' in locations
    assert "proxy_set_header X-Forwarded-Prefix /web;" in locations
    assert "server_name" not in files["web.conf"]  # no domain: no Host-routed server


def test_upstream_lists_servers_without_passive_health_checks() -> None:
    conf = render_app_config(AppRoute("web", TWO), None)["web.conf"]
    assert "upstream orchestry_web {" in conf
    assert "server 127.0.0.1:9001 max_fails=0;" in conf
    assert "server 127.0.0.1:9002 max_fails=0;" in conf
    assert "keepalive 32;" in conf


def test_duplicate_servers_are_listed_once() -> None:
    conf = render_app_config(AppRoute("web", (*TWO, TWO[0])), None)["web.conf"]
    assert conf.count("server 127.0.0.1:9001 ") == 1


@pytest.mark.parametrize(
    ("method", "directive"), [("least_conn", "least_conn;"), ("ip_hash", "ip_hash;"), ("round_robin", None)]
)
def test_load_balancing_method(method: str, directive: str | None) -> None:
    conf = render_app_config(AppRoute("web", TWO, method), None)["web.conf"]
    body = conf[conf.index("upstream") :]
    if directive is None:
        assert "least_conn" not in body and "ip_hash" not in body
    else:
        # The method must precede keepalive or nginx ignores it for kept-alive connections.
        assert body.index(directive) < body.index("keepalive")


def test_keepalive_and_forwarding_headers() -> None:
    locations = render_app_config(AppRoute("web", TWO), None)["web.locations"]
    for line in (
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        # Without non_idempotent: a POST that may have reached a replica is never sent twice.
        "proxy_next_upstream error timeout http_502 http_503;\n",
        "proxy_next_upstream_tries 3;",
    ):
        assert line in locations


def test_app_without_ready_servers_answers_503_and_declares_no_upstream() -> None:
    files = render_app_config(AppRoute("web", ()), "apps.test")
    assert "upstream" not in files["web.conf"]
    expected = """return 503 '{"detail":"app \\'web\\' has no ready replicas"}';"""
    assert expected in files["web.locations"]
    assert expected in files["web.conf"]  # the Host-routed server too
    assert "proxy_pass" not in files["web.locations"]


def test_domain_adds_a_host_routed_server_that_is_not_default() -> None:
    conf = render_app_config(AppRoute("web", TWO), "apps.test", listen_port=18080)["web.conf"]
    assert "server_name web.apps.test;" in conf
    assert "listen 127.0.0.1:18080;" in conf
    assert "default_server" not in conf
    assert "proxy_pass http://orchestry_web;" in conf  # full URI kept under Host routing


@pytest.mark.parametrize("name", ["../etc", "Web", "web app", "web;", "", "a/b", "x" * 64])
def test_names_outside_dns_labels_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="DNS label"):
        render_app_config(AppRoute(name, TWO), None)


@pytest.mark.parametrize(
    "server", [Upstream("127.0.0.1;evil", 80), Upstream("127.0.0.1", 0), Upstream("127.0.0.1", 70000)]
)
def test_bad_upstreams_are_rejected(server: Upstream) -> None:
    with pytest.raises(ValueError):
        render_app_config(AppRoute("web", (server,)), None)


def test_unknown_load_balancing_and_bad_domain_are_rejected() -> None:
    with pytest.raises(ValueError, match="least_conn, ip_hash, round_robin"):
        render_app_config(AppRoute("web", TWO, "random"), None)
    with pytest.raises(ValueError, match="domain"):
        render_app_config(AppRoute("web", TWO), "bad domain;")


def test_rendered_files_pass_nginx_t(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf.d"
    (tmp_path / "temp").mkdir()
    conf_dir.mkdir()
    (tmp_path / "nginx.conf").write_text(_main(tmp_path, domain="apps.test"))
    routes = [AppRoute("web", TWO), AppRoute("api", (), "ip_hash"), AppRoute("rr", TWO[:1], "round_robin")]
    for route in routes:
        for name, content in render_app_config(route, "apps.test").items():
            (conf_dir / name).write_text(content)
    result = subprocess.run(
        [
            "nginx",
            "-t",
            "-q",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "error.log"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _conf(
    servers: tuple[Upstream, ...], load_balancing: str = "least_conn", domain: str | None = None
) -> str:
    return render_app_config(AppRoute("shop", servers, load_balancing), domain)["shop.conf"]


@pytest.mark.parametrize("domain", [None, "apps.example.com"])
def test_a_change_of_ip_servers_alone_is_told_apart_from_any_other(domain: str | None) -> None:
    """What the nginx controller skips `nginx -t` for: the same file with other IP servers, at least one."""
    one = (Upstream("127.0.0.1", 9001),)
    v6 = (Upstream("::1", 9003), Upstream("127.0.0.1", 9001))
    assert only_servers_differ(_conf(one, domain=domain), _conf(TWO, domain=domain))
    assert only_servers_differ(_conf(TWO, domain=domain), _conf(v6, domain=domain))
    # No upstream before or after: the file's structure changes.
    assert not only_servers_differ(_conf((), domain=domain), _conf(one, domain=domain))
    assert not only_servers_differ(_conf(one, domain=domain), _conf((), domain=domain))
    # Anything else that differs, and a name nginx would have to resolve.
    assert not only_servers_differ(_conf(one, domain=domain), _conf(TWO, "ip_hash", domain=domain))
    assert not only_servers_differ(_conf(one), _conf(one, domain="other.example.com"))
    assert not only_servers_differ(
        _conf(one, domain=domain), _conf((Upstream("node-2", 9001),), domain=domain)
    )

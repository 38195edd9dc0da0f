"""Render the controller LB's nginx.conf for an HA cluster (templates/controller-lb.conf.j2).

    .venv/bin/python scripts/controller_lb.py --listen 127.0.0.1:8000 --prefix DIR \\
        --node 127.0.0.1:8001 --node 127.0.0.1:8002 --node 127.0.0.1:8003

writes DIR/nginx.conf (and DIR/temp) and prints its path; start it with
``nginx -p DIR -c DIR/nginx.conf -e DIR/error.log``. Nodes are HOST:PORT or http://HOST:PORT URLs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

if __package__ in (None, ""):  # run as a script: make `core` importable from the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.lb.render import format_hostport, template_environment
from core.settings import split_host_port
from orchestry_tui.client.http import DEFAULT_LEASE_TTL, lease_ttl_from

TEMPLATE = "controller-lb.conf.j2"


def node_address(text: str) -> str:
    """``http://127.0.0.1:8001``, ``127.0.0.1:8001`` → ``127.0.0.1:8001``; ValueError naming the fix."""
    raw = text.strip()
    if "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme != "http" or parts.path not in ("", "/") or not parts.hostname or not parts.port:
            raise ValueError(f"--node {text!r}: expected http://HOST:PORT (an orchestry daemon's API)")
        return format_hostport(parts.hostname, parts.port)
    try:
        host, port = split_host_port(raw)
    except ValueError:
        raise ValueError(f"--node {text!r}: expected HOST:PORT or http://HOST:PORT") from None
    return format_hostport(host, port)


# A write's wait at the LB: the lease TTL (within which a frozen leader is replaced) and this margin.
WRITE_MARGIN_SECONDS = 5


def write_timeout(lease_ttl: int) -> int:
    return lease_ttl + WRITE_MARGIN_SECONDS


def render_controller_config(
    listen: str, nodes: list[str], prefix: Path, lease_ttl: int = DEFAULT_LEASE_TTL
) -> str:
    """The whole nginx.conf; ValueError (naming the option) on a bad address or no nodes.

    ``lease_ttl``: the cluster's LEADER_LEASE_TTL; a write a node leaves unanswered for that long plus
    WRITE_MARGIN_SECONDS is answered 503 (it may or may not have been carried out)."""
    if not nodes:
        raise ValueError("give at least one --node HOST:PORT")
    addresses = list(dict.fromkeys(node_address(n) for n in nodes))
    try:
        listen_address = format_hostport(*split_host_port(listen))
    except ValueError:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8000") from None
    return (
        template_environment()
        .get_template(TEMPLATE)
        .render(
            listen=listen_address,
            nodes=addresses,
            prefix=Path(prefix).absolute(),
            write_timeout=write_timeout(lease_ttl),
            write_margin=WRITE_MARGIN_SECONDS,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the controller LB nginx.conf of an HA cluster.")
    parser.add_argument("--listen", default="127.0.0.1:8000", help="where clients reach the cluster")
    parser.add_argument("--node", action="append", default=[], help="a daemon API, HOST:PORT (repeat)")
    parser.add_argument("--prefix", required=True, help="nginx prefix dir (pid, logs, temp files)")
    parser.add_argument(
        "--lease-ttl",
        type=int,
        default=lease_ttl_from(dict(os.environ)),
        help="the cluster's lease TTL in seconds (default: LEADER_LEASE_TTL, else 30); a write a node "
        f"leaves unanswered for TTL + {WRITE_MARGIN_SECONDS} s is answered 503",
    )
    args = parser.parse_args(argv)
    if args.lease_ttl < 3:
        print(f"error: --lease-ttl {args.lease_ttl}: the lease TTL is at least 3 seconds", file=sys.stderr)
        return 2
    prefix = Path(args.prefix).absolute()
    try:
        config = render_controller_config(args.listen, args.node, prefix, args.lease_ttl)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(config)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

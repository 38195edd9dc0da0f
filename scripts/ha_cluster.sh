#!/usr/bin/env bash
# An HA cluster on one host: N `orchestry daemon` processes on one PostgreSQL database, sharing one
# state dir (so one apps' nginx and one secret key) and one apps LB address, behind a controller LB
# nginx that spreads API requests over them and retries a write refused by a follower on the next node.
#
#   scripts/ha_cluster.sh up DIR                  start (or complete) the cluster; state and logs in DIR
#   scripts/ha_cluster.sh status DIR              nodes, leader, database, both nginx
#   scripts/ha_cluster.sh down DIR [--stop-apps]  stop the nodes and the controller LB; apps keep
#                                                 serving unless --stop-apps (the next `up` adopts them)
#
# Settings (environment; `up` records them in DIR/cluster.env for status and down):
#   ORCHESTRY_DATABASE_URL  postgresql://postgres@127.0.0.1:5432/orchestry_ha (created when missing)
#   HA_NODES                3
#   HA_API_PORT             8001 (node i listens on HA_API_PORT + i - 1, on 127.0.0.1)
#   HA_CONTROLLER_LISTEN    127.0.0.1:8000 (the CLI's default URL: `orchestry list` just works)
#   ORCHESTRY_LB_LISTEN     127.0.0.1:8080 (where the apps are served)
#   LEADER_LEASE_TTL        10 (seconds; a killed leader is replaced once its lease runs out, within TTL;
#                           a stopped one (SIGTERM) at once: its release wakes the followers)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${ROOT}/.venv/bin/python"
ORCHESTRY="${ROOT}/.venv/bin/orchestry"
[[ -x "$PY" ]] || PY="$(command -v python3)"
[[ -x "$ORCHESTRY" ]] || ORCHESTRY="$(command -v orchestry || true)"

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

die() {
    echo "error: $*" >&2
    exit 1
}

alive() {
    # A killed daemon whose parent is gone may linger as a zombie: that is not alive.
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null && [[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]
}
pid_in() { [[ -f "$1" ]] && tr -dc '0-9' <"$1" || true; }

load_settings() {
    if [[ -f "$DIR/cluster.env" ]]; then
        # shellcheck disable=SC1091
        source "$DIR/cluster.env"
    fi
    DATABASE_URL="${ORCHESTRY_DATABASE_URL:-${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/orchestry_ha}}"
    NODES="${HA_NODES:-${NODES:-3}}"
    API_PORT="${HA_API_PORT:-${API_PORT:-8001}}"
    CONTROLLER="${HA_CONTROLLER_LISTEN:-${CONTROLLER:-127.0.0.1:8000}}"
    APPS_LB="${ORCHESTRY_LB_LISTEN:-${APPS_LB:-127.0.0.1:8080}}"
    TTL="${LEADER_LEASE_TTL:-${TTL:-10}}"
    [[ "$NODES" =~ ^[1-9][0-9]*$ ]] || die "HA_NODES='$NODES' is not valid: expected a whole number, e.g. 3"
    [[ "$API_PORT" =~ ^[0-9]+$ ]] && ((API_PORT + NODES - 1 <= 65535)) ||
        die "HA_API_PORT='$API_PORT' is not valid: expected a port such that all $NODES node ports fit below 65536"
    [[ "$TTL" =~ ^[0-9]+$ ]] && ((TTL >= 3)) || die "LEADER_LEASE_TTL='$TTL' is not valid: expected seconds, at least 3"
}

save_settings() {
    cat >"$DIR/cluster.env" <<EOF
DATABASE_URL='$DATABASE_URL'
NODES='$NODES'
API_PORT='$API_PORT'
CONTROLLER='$CONTROLLER'
APPS_LB='$APPS_LB'
TTL='$TTL'
EOF
}

ensure_database() {
    "$PY" - "$DATABASE_URL" <<'EOF' || die "cannot reach or create the database (see above): check ORCHESTRY_DATABASE_URL"
import sys
import sqlalchemy as sa

url = sa.make_url(sys.argv[1])
if url.drivername in ("postgresql", "postgres"):
    url = url.set(drivername="postgresql+psycopg2")
if url.get_backend_name() != "postgresql":
    sys.exit("an HA cluster needs PostgreSQL: set ORCHESTRY_DATABASE_URL=postgresql://USER@HOST:PORT/DB")
admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
try:
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
            print(f"created database {url.database}")
except sa.exc.SQLAlchemyError as exc:
    sys.exit(f"{type(exc).__name__}: {str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}")
EOF
}

start_node() {
    local i=$1 port=$((API_PORT + $1 - 1))
    local log="$DIR/logs/node$i.log" pidfile="$DIR/node$i.pid"
    if alive "$(pid_in "$pidfile")"; then
        echo "node$i already running (pid $(pid_in "$pidfile"), http://127.0.0.1:$port)"
        return
    fi
    [[ -f "$log" ]] && mv "$log" "$log.1"
    ORCHESTRY_DATABASE_URL="$DATABASE_URL" LEADER_LEASE_TTL="$TTL" \
        setsid "$ORCHESTRY" daemon --port "$port" --lb-listen "$APPS_LB" \
        --state-dir "$DIR/state" --node-id "node$i" >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

wait_ready() {
    local i=$1 port=$((API_PORT + $1 - 1)) deadline=$((SECONDS + 60))
    local log="$DIR/logs/node$i.log" pid
    pid="$(pid_in "$DIR/node$i.pid")"
    until grep -q "orchestry daemon ready: api=http://127.0.0.1:$port" "$log" 2>/dev/null; do
        if ! alive "$pid"; then
            tail -n 5 "$log" >&2
            die "node$i exited during start; its log is $log"
        fi
        ((SECONDS < deadline)) || die "node$i is not ready after 60 s; its log is $log"
        sleep 0.2
    done
}

controller_up() {
    local prefix="$DIR/controller-lb" nodes=() i pid
    for ((i = 1; i <= NODES; i++)); do nodes+=(--node "127.0.0.1:$((API_PORT + i - 1))"); done
    "$PY" "$ROOT/scripts/controller_lb.py" --listen "$CONTROLLER" --prefix "$prefix" "${nodes[@]}" >/dev/null
    pid="$(pid_in "$prefix/nginx.pid")"
    if alive "$pid"; then
        nginx -q -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" -s reload
    else
        nginx -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log" ||
            die "the controller LB could not start on $CONTROLLER (port taken?): set HA_CONTROLLER_LISTEN"
    fi
}

health() {
    # "<leader|follower> <database status>", or "unreachable -" when the API does not answer.
    local body
    body="$(curl -fsS -m 2 "http://127.0.0.1:$1/health" 2>/dev/null)" || body=""
    [[ -n "$body" ]] || {
        echo "unreachable -"
        return
    }
    "$PY" -c 'import json,sys; h=json.loads(sys.argv[1]); print("leader" if h["is_leader"] else "follower", h["database"]["status"])' "$body"
}

wait_for_leader() {
    # A leader killed a moment ago still holds its lease for up to TTL seconds.
    local i deadline=$((SECONDS + 2 * TTL + 5))
    while ((SECONDS < deadline)); do
        for ((i = 1; i <= NODES; i++)); do
            alive "$(pid_in "$DIR/node$i.pid")" || continue
            [[ "$(health $((API_PORT + i - 1)))" == leader* ]] && return 0
        done
        sleep 0.5
    done
    return 1
}

cmd_up() {
    command -v nginx >/dev/null || die "nginx is not installed: run scripts/bootstrap.sh"
    [[ -n "$ORCHESTRY" ]] || die "orchestry is not installed: run scripts/bootstrap.sh"
    mkdir -p "$DIR/state" "$DIR/logs" "$DIR/controller-lb"
    save_settings
    ensure_database
    local i
    # One after the other: the first node wins term 1 and takes over (or adopts) the apps' nginx.
    for ((i = 1; i <= NODES; i++)); do
        start_node "$i"
        wait_ready "$i"
    done
    controller_up
    echo "cluster up: $NODES nodes on $DATABASE_URL (lease TTL $TTL s)"
    echo "  API (controller LB):  http://$CONTROLLER   export ORCHESTRY_URL=http://$CONTROLLER"
    echo "  apps:                 http://$APPS_LB/<app>/"
    echo "  logs:                 $DIR/logs/node<N>.log"
    cmd_status
}

cmd_status() {
    local i port pid state db leader=""
    printf '%-6s %-8s %-24s %-11s %s\n' NODE PID API STATE DATABASE
    for ((i = 1; i <= NODES; i++)); do
        port=$((API_PORT + i - 1))
        pid="$(pid_in "$DIR/node$i.pid")"
        if alive "$pid"; then
            read -r state db <<<"$(health "$port")"
        else
            state="stopped" db="-" pid="-"
        fi
        [[ "$state" == leader ]] && leader="node$i"
        printf '%-6s %-8s %-24s %-11s %s\n' "node$i" "$pid" "http://127.0.0.1:$port" "$state" "$db"
    done
    pid="$(pid_in "$DIR/controller-lb/nginx.pid")"
    alive "$pid" && echo "controller LB: http://$CONTROLLER (nginx pid $pid)" || echo "controller LB: not running"
    pid="$(pid_in "$DIR/state/nginx/nginx.pid")"
    alive "$pid" && echo "apps LB:       http://$APPS_LB (nginx pid $pid)" || echo "apps LB:       not running"
    echo "leader:        ${leader:-none (election under way, or the database is unreachable)}"
}

cmd_down() {
    local stop_apps=0 i pid name deadline
    [[ "${1:-}" == "--stop-apps" ]] && stop_apps=1
    if ((stop_apps)); then
        if wait_for_leader; then
            for name in $("$ORCHESTRY" --url "http://$CONTROLLER" list --format json |
                "$PY" -c 'import json,sys; print(" ".join(a["name"] for a in json.load(sys.stdin)["apps"]))'); do
                "$ORCHESTRY" --url "http://$CONTROLLER" down "$name" --force ||
                    echo "warning: could not stop app $name; stopping the cluster anyway" >&2
            done
        else
            echo "warning: no leader, so the apps cannot be stopped; stopping the cluster anyway" >&2
        fi
    fi
    for ((i = 1; i <= NODES; i++)); do
        pid="$(pid_in "$DIR/node$i.pid")"
        alive "$pid" && kill -TERM "$pid"
    done
    deadline=$((SECONDS + 40))
    for ((i = 1; i <= NODES; i++)); do
        pid="$(pid_in "$DIR/node$i.pid")"
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
        if alive "$pid"; then
            echo "node$i (pid $pid) did not stop within 40 s: killing it" >&2
            kill -KILL "$pid"
        fi
        rm -f "$DIR/node$i.pid"
    done
    pid="$(pid_in "$DIR/controller-lb/nginx.pid")"
    alive "$pid" && kill -QUIT "$pid"
    if ((stop_apps)); then
        pid="$(pid_in "$DIR/state/nginx/nginx.pid")"
        alive "$pid" && kill -QUIT "$pid"
        echo "cluster down; apps stopped"
    else
        echo "cluster down; apps keep serving at http://$APPS_LB/ (the next 'up' adopts them)"
    fi
}

[[ $# -ge 2 ]] || usage
COMMAND=$1
DIR="$(mkdir -p "$2" && cd "$2" && pwd)"
shift 2
load_settings
case "$COMMAND" in
up) cmd_up ;;
status) cmd_status ;;
down) cmd_down "$@" ;;
*) usage ;;
esac

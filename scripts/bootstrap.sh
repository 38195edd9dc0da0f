#!/usr/bin/env bash
# Makes this checkout ready to run and test Orchestry; safe to run again (it then takes seconds).
#
#   scripts/bootstrap.sh                  venv, Docker, nginx, busybox-static, the demo image
#   scripts/bootstrap.sh --with-postgres  the same, plus a running PostgreSQL with the test database
#
# As root, missing system packages are installed with apt-get and dockerd / PostgreSQL are started
# without systemd.  As another user it prints exactly what to install or start, and fails.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

with_postgres=false
for arg in "$@"; do
    case "$arg" in
        --with-postgres) with_postgres=true ;;
        -h | --help)
            sed -n '2,8p' "$0"
            exit 0
            ;;
        *)
            echo "bootstrap: unknown option '$arg' (use --with-postgres)" >&2
            exit 2
            ;;
    esac
done

python=${PYTHON:-python3}
venv=.venv
stamp=$venv/.bootstrap-stamp
dockerd_log=${ORCHESTRY_DOCKERD_LOG:-/var/log/orchestry-dockerd.log}
test_database_url=${ORCHESTRY_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

say() { echo "bootstrap: $*"; }
die() {
    echo "bootstrap: error: $*" >&2
    exit 1
}

# --- system packages -------------------------------------------------------------------------------

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

required=()
optional=()
command -v dockerd >/dev/null && command -v docker >/dev/null || required+=(docker.io)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || required+=(nginx)
# The demo image needs the *static* busybox: the dynamic one would not run inside an empty image.
package_installed busybox-static || required+=(busybox-static)
if $with_postgres; then
    command -v pg_ctlcluster >/dev/null && command -v pg_isready >/dev/null || required+=(postgresql)
fi
# Real tools that judge our output or carry the tests: promtool and a Prometheus server (metrics),
# a registry for the Swarm lab's nodes to pull from, ab for load, ip for the lab's namespaces.
command -v promtool >/dev/null && command -v prometheus >/dev/null || required+=(prometheus)
command -v docker-registry >/dev/null || required+=(docker-registry)
command -v ab >/dev/null || required+=(apache2-utils)
command -v ip >/dev/null || required+=(iproute2)
command -v zsh >/dev/null || required+=(zsh) # the zsh side of the shell-completion test
command -v rsvg-convert >/dev/null || optional+=(librsvg2-bin)      # console screenshots as PNG
command -v docker-compose >/dev/null || optional+=(docker-compose) # the benchmark's baseline

if ((${#required[@]} + ${#optional[@]} > 0)); then
    if $is_root; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        if ((${#required[@]} > 0)); then
            say "installing ${required[*]}"
            apt-get install -y -qq "${required[@]}" >/dev/null
        fi
        if ((${#optional[@]} > 0)); then
            say "installing optional ${optional[*]}"
            apt-get install -y -qq "${optional[@]}" >/dev/null ||
                say "could not install ${optional[*]}: screenshots or the benchmark baseline will be missing"
        fi
    elif ((${#required[@]} > 0)); then
        die "missing system packages; install them, then run this again:
    sudo apt-get update && sudo apt-get install -y ${required[*]} ${optional[*]}"
    else
        say "optional packages missing (screenshots, benchmark baseline): sudo apt-get install -y ${optional[*]}"
    fi
fi

# --- Python virtualenv -----------------------------------------------------------------------------

if [[ ! -x $venv/bin/python || ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die "$python is $("$python" --version 2>&1); Orchestry needs Python 3.11 or newer (set PYTHON=...)"
    [[ -x $venv/bin/python ]] || {
        say "creating $venv"
        "$python" -m venv "$venv"
    }
    say "installing Orchestry and its dev tools into $venv"
    "$venv/bin/python" -m pip install -q -e '.[dev]'
    touch "$stamp"
fi
# bash and zsh completion of `orchestry`, loaded by the venv's activate (regenerated: it is cheap)
scripts/install_completion.sh "$venv" || say "shell completion not installed (see scripts/install_completion.sh)"

# --- Docker engine ---------------------------------------------------------------------------------

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

if ! docker_answers; then
    $is_root || die "Docker does not answer: start it (sudo systemctl start docker, or sudo dockerd &)"
    say "starting dockerd (log: $dockerd_log)"
    # Its defaults matter: --bridge=none would delete the host's docker0 bridge.
    setsid dockerd >"$dockerd_log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
        docker_answers && break
        sleep 0.5
    done
    docker_answers || die "dockerd did not answer within 30 s; see $dockerd_log"
fi

# --- PostgreSQL ------------------------------------------------------------------------------------

if $with_postgres; then
    # user, host, port and database of the test URL (postgresql://user[:password]@host[:port]/db)
    read -r pg_user pg_password pg_host pg_port pg_db < <("$python" - "$test_database_url" <<'EOF'
import sys
from urllib.parse import unquote, urlsplit

url = urlsplit(sys.argv[1])
print(
    unquote(url.username or "postgres"),
    unquote(url.password or "-"),
    url.hostname or "127.0.0.1",
    url.port or 5432,
    (url.path.lstrip("/") or "test"),
)
EOF
    )
    [[ $pg_password != "-" ]] && export PGPASSWORD=$pg_password

    if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
        $is_root || die "PostgreSQL does not answer on $pg_host:$pg_port: start it (sudo pg_ctlcluster <version> main start)"
        pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
        [[ -n $pg_version ]] || die "no PostgreSQL cluster under /etc/postgresql: reinstall the postgresql package"
        say "starting PostgreSQL $pg_version"
        pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
        for _ in $(seq 1 60); do
            pg_isready -q -h "$pg_host" -p "$pg_port" && break
            sleep 0.5
        done
        pg_isready -q -h "$pg_host" -p "$pg_port" ||
            die "PostgreSQL did not answer on $pg_host:$pg_port within 30 s; see /var/log/postgresql/"
    fi

    psql_admin=(psql -X -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -tA)
    exists=$("${psql_admin[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$pg_db'") ||
        die "cannot connect to PostgreSQL as $pg_user on $pg_host:$pg_port: allow it in pg_hba.conf or fix ORCHESTRY_TEST_DATABASE_URL"
    if [[ $exists != 1 ]]; then
        say "creating database $pg_db"
        "${psql_admin[@]}" -c "CREATE DATABASE \"$pg_db\""
    fi
fi

# --- the demo image --------------------------------------------------------------------------------

scripts/build_demo_image.sh --if-needed

say "ready"

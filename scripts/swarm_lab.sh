#!/usr/bin/env bash
# A real multi-node Docker Swarm on this one machine, for tests and benchmarks.
#
#   scripts/swarm_lab.sh up [--id ID] [--tls]       build the lab (a stale lab of the same ID goes first);
#                                                   --tls: node APIs on tcp://ADDR:2376 with TLS, see below
#   scripts/swarm_lab.sh status [--json] [--id ID]  what runs; --json: one object for scripts and tests
#   scripts/swarm_lab.sh down [--id ID]             remove everything of that ID (also after a kill -9)
#   scripts/swarm_lab.sh cut-link|restore-link NODE [--id ID]   take a node off the lab network / back
#   scripts/swarm_lab.sh kill-dockerd|start-dockerd NODE [--id ID]  kill -9 a node's dockerd / start it
#
# ID defaults to $ORCHESTRY_LAB_ID, else "lab" (1-8 characters a-z 0-9); NODE is n1, n2, ...
#
# What `up` creates (every name carries the ID, so labs of different IDs live side by side):
#   - network namespace osl-ID-sw ("switch") holding bridge br0. The bridge is not in the root
#     namespace because there the system dockerd's FORWARD policy DROP (with bridge-nf-call-iptables)
#     drops node-to-node traffic; host iptables are never changed.
#   - namespaces osl-ID-n1..nN (N = $ORCHESTRY_LAB_NODES, default 3), each joined to br0 by a veth
#     pair (eth0 in the node, port nI in the switch), each running its own dockerd (own data root,
#     exec root, containerd, pid file, unix socket and tcp://ADDR:2375 without TLS) under its own UTS
#     namespace and hostname osl-ID-nI; containers go into cgroup osl-ID-nI.
#   - with --tls, each dockerd serves tcp://ADDR:2376 instead, with --tlsverify: a CA, a server
#     certificate per node (SAN: its address) and a client certificate, made with openssl, in
#     DIR/tls (the client's DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem; ca-key.pem beside them)
#     and DIR/nI/tls (the node's ca.pem, server-cert.pem, server-key.pem).
#   - veth osl-ID in the root namespace (port "host" in the switch): the controller's address on the
#     lab network (.1 of a free 10.x.y.0/24 picked from the root namespace's routes and addresses).
#   - a registry (Debian's docker-registry) on HOST_ADDR:5000 holding orchestry/demo:latest, taken
#     from the system dockerd with `docker save` (read only), loaded into the manager and pushed.
#   - Swarm: n1 manager (dispatcher heartbeat 1 s so a lost node is seen in seconds), the others
#     workers; every node labelled orchestry.docker-url=tcp://ADDR:2375 (:2376 with --tls).
#   - files under $ORCHESTRY_LAB_ROOT/ID (default /tmp/orchestry-swarm-lab/ID): configs, logs, data.
# The system dockerd, docker0 and the host's iptables are never touched.
set -euo pipefail

ROOT_DIR="${ORCHESTRY_LAB_ROOT:-/tmp/orchestry-swarm-lab}"
IMAGE_SOURCE="${ORCHESTRY_DEMO_IMAGE:-orchestry/demo:latest}"
START_TIMEOUT=30

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

die() {
    echo "error: $*" >&2
    exit 1
}

log() { [[ -n "${QUIET:-}" ]] || echo "$*" >&2; }

# ---------------------------------------------------------------- arguments

CMD="${1:-}"
[[ -n "$CMD" ]] || usage
shift
ID="${ORCHESTRY_LAB_ID:-lab}"
JSON=""
TLS=""
NODE_ARG=""
while (($#)); do
    case "$1" in
    --id) ID="${2:-}"; shift 2 || die "--id needs a value, e.g. --id lab" ;;
    --id=*) ID="${1#--id=}"; shift ;;
    --json) JSON=1; shift ;;
    --tls) TLS=1; shift ;;
    -h | --help) usage ;;
    n[0-9]*) NODE_ARG="$1"; shift ;;
    *) die "unknown argument '$1': see '$0 --help'" ;;
    esac
done
[[ "$ID" =~ ^[a-z0-9]{1,8}$ ]] || die "lab id '$ID' is not valid: use 1-8 characters a-z 0-9 (--id or ORCHESTRY_LAB_ID)"
[[ "$(id -u)" == 0 ]] || die "the Swarm lab needs root (network namespaces, dockerd)"

NODES="${ORCHESTRY_LAB_NODES:-3}"
[[ "$NODES" =~ ^[1-9]$ ]] || die "ORCHESTRY_LAB_NODES='$NODES' is not valid: expected 1-9"
PREFIX="osl-$ID"        # namespaces, hostnames, cgroups
SWITCH="$PREFIX-sw"
HOST_VETH="$PREFIX"     # at most 12 characters: interface names are limited to 15
DIR="$ROOT_DIR/$ID"
ENV_FILE="$DIR/lab.env"

node_ns() { echo "$PREFIX-$1"; }
node_dir() { echo "$DIR/$1"; }
node_sock() { echo "$DIR/$1/docker.sock"; }
ndocker() { local n="$1"; shift; docker -H "unix://$(node_sock "$n")" "$@"; }

load_env() {
    [[ -f "$ENV_FILE" ]] || return 1
    # shellcheck disable=SC1090
    source "$ENV_FILE"
}

node_addr() { echo "${NET_PREFIX}.$((10 + ${1#n}))"; }
# The node's Docker API on the lab network: plain on 2375, or TLS-verified on 2376 (up --tls).
node_tcp_url() { echo "tcp://$(node_addr "$1"):$([[ -n "${TLS:-}" ]] && echo 2376 || echo 2375)"; }

# ---------------------------------------------------------------- subnet

# A /24 in 10.200.0.0-10.254.255.0 that overlaps no route or address of the root namespace (the
# system's networks, docker0, other labs' host veths). The start depends on the ID so two labs
# rarely probe the same candidates; a lock makes choosing and claiming (adding the host veth) atomic.
pick_subnet() {
    python3 - "$ID" <<'EOF'
import hashlib, ipaddress, re, subprocess, sys

used = []
for args in (["ip", "-4", "route", "show", "table", "all"], ["ip", "-4", "-o", "addr", "show"]):
    for token in re.findall(r"\b\d+\.\d+\.\d+\.\d+(?:/\d+)?\b", subprocess.run(args, capture_output=True, text=True).stdout):
        used.append(ipaddress.ip_network(token, strict=False))
start = int(hashlib.sha256(sys.argv[1].encode()).hexdigest(), 16) % (55 * 256)
for step in range(55 * 256):
    index = (start + step) % (55 * 256)
    net = ipaddress.ip_network(f"10.{200 + index // 256}.{index % 256}.0/24")
    if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
        print(net)
        break
else:
    sys.exit("no free /24 left in 10.200.0.0-10.254.255.0")
EOF
}

# ---------------------------------------------------------------- dockerd per node

# `ip netns exec` remounts /sys, which leaves /sys/fs/cgroup empty and dockerd unable to start: the
# command run inside mounts the host's cgroup hierarchies again, with the options the host uses.
cgroup_mount_script() {
    echo "mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup"
    while read -r src target fstype opts _; do
        [[ "$target" == /sys/fs/cgroup/* && ( "$fstype" == cgroup || "$fstype" == cgroup2 ) ]] || continue
        echo "mkdir -p $target && mount -t $fstype -o $opts $src $target"
    done </proc/self/mounts
}

# ---------------------------------------------------------------- TLS (up --tls)

# EC P-256 keys: quick to make even on a loaded machine, where RSA keys take a while.
new_key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# sign_cert SUBJECT KEY OUT EXTENSIONS: a certificate for KEY signed by the lab's CA.
sign_cert() {
    local subject="$1" key="$2" out="$3" extensions="$4" tls="$DIR/tls"
    printf '%s\n' "$extensions" >"$out.ext"
    openssl req -new -key "$key" -subj "$subject" -out "$out.csr" 2>/dev/null
    openssl x509 -req -in "$out.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial \
        -days 7 -sha256 -extfile "$out.ext" -out "$out" 2>/dev/null || die "openssl could not sign $out"
    rm -f "$out.csr" "$out.ext"
}

make_certs() {
    command -v openssl >/dev/null || die "openssl is not installed (needed by --tls): apt-get install openssl"
    local tls="$DIR/tls" n dir
    mkdir -p "$tls"
    printf '%s\n' "[req]" "distinguished_name = dn" "prompt = no" "[dn]" "CN = orchestry swarm lab $ID CA" \
        "[ca]" "basicConstraints = critical,CA:TRUE" "keyUsage = critical,keyCertSign,cRLSign" \
        "subjectKeyIdentifier = hash" >"$tls/ca.cnf"
    new_key "$tls/ca-key.pem"
    openssl req -x509 -new -key "$tls/ca-key.pem" -config "$tls/ca.cnf" -extensions ca -days 7 -sha256 \
        -out "$tls/ca.pem" 2>/dev/null || die "openssl could not make the lab's CA in $tls"
    new_key "$tls/key.pem"
    sign_cert "/CN=orchestry controller" "$tls/key.pem" "$tls/cert.pem" \
        "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
    for n in $(seq 1 "$NODES"); do
        dir="$(node_dir "n$n")/tls"
        mkdir -p "$dir"
        cp "$tls/ca.pem" "$dir/ca.pem"
        new_key "$dir/server-key.pem"
        sign_cert "/CN=$(node_ns "n$n")" "$dir/server-key.pem" "$dir/server-cert.pem" \
            "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:$(node_addr "n$n"),DNS:$(node_ns "n$n")"
    done
    chmod 600 "$tls"/*key.pem "$DIR"/n*/tls/server-key.pem
}

write_node_config() {
    local n="$1" addr dir tls_settings
    addr="$(node_addr "$n")"
    dir="$(node_dir "$n")"
    mkdir -p "$dir/data" "$dir/run"
    # "tls": false: with a tcp host and no TLS settings dockerd 20.10 sleeps 15 s at start-up.
    tls_settings='"tls": false,'
    if [[ -n "${TLS:-}" ]]; then
        tls_settings="\"tlsverify\": true, \"tlscacert\": \"$dir/tls/ca.pem\",
  \"tlscert\": \"$dir/tls/server-cert.pem\", \"tlskey\": \"$dir/tls/server-key.pem\","
    fi
    # deprecated-key-path: each node its own engine id (else Swarm sees one node three times).
    cat >"$dir/daemon.json" <<EOF
{
  "data-root": "$dir/data",
  "exec-root": "$dir/run",
  "pidfile": "$dir/dockerd.pid",
  "hosts": ["unix://$dir/docker.sock", "$(node_tcp_url "$n")"],
  $tls_settings
  "insecure-registries": ["$REGISTRY"],
  "cgroup-parent": "$PREFIX-$n",
  "deprecated-key-path": "$dir/key.json",
  "log-level": "warn"
}
EOF
}

dockerd_pid() {
    local f
    f="$(node_dir "$1")/dockerd.pid"
    [[ -f "$f" ]] || return 1
    local pid
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_dockerd() {
    local n="$1" dir ns
    dir="$(node_dir "$n")"
    ns="$(node_ns "$n")"
    if dockerd_pid "$n" >/dev/null; then
        log "$n: dockerd already runs"
        return 0
    fi
    rm -f "$dir/dockerd.pid" "$dir/docker.sock"
    local inner
    inner="$(cgroup_mount_script)
hostname $ns
exec dockerd --config-file $dir/daemon.json"
    setsid ip netns exec "$ns" unshare --uts sh -c "$inner" >>"$dir/dockerd.log" 2>&1 </dev/null &
}

wait_dockerd() {
    local n="$1" deadline=$((SECONDS + START_TIMEOUT))
    until ndocker "$n" version >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "$n: dockerd did not answer within ${START_TIMEOUT}s; see $(node_dir "$n")/dockerd.log"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- down

# Everything of this ID, found by name (namespaces, cgroups, veth, pid files), so it works after a
# kill -9 of a previous run, with or without lab.env.
lab_pids() {
    local ns cg
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-(sw|n[0-9]+)$" || true); do
        ip netns pids "$ns" 2>/dev/null || true
    done
    # Containers in their own network namespaces are not in the node's: find them by cgroup.
    for cg in /sys/fs/cgroup/pids/"$PREFIX"-n*; do
        [[ -d "$cg" ]] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null
    done
    registry_pid || true
}

registry_pid() {
    # Ours only if it serves this lab's config file (a recycled pid must not be killed); found by its
    # pid file, or, when the lab dir is already gone, by that exact config path in its command line.
    local pid candidates=() file
    if [[ -f "$DIR/registry.pid" ]]; then
        candidates=("$(tr -dc '0-9' <"$DIR/registry.pid")")
    else
        for file in $(grep -lsaF -- "$DIR/registry.yml" /proc/[0-9]*/cmdline); do
            file="${file#/proc/}"
            candidates+=("${file%/cmdline}")
        done
    fi
    for pid in "${candidates[@]}"; do
        [[ -n "$pid" ]] || continue
        if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qxF "docker-registry serve $DIR/registry.yml "; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

lab_down() {
    local n pids deadline
    # dockerd first, politely: it then stops its containerd and shims, which leave no stale sockets.
    for n in $(seq 1 9); do
        pid="$(dockerd_pid "n$n" 2>/dev/null)" && kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$((SECONDS + 3))
    while ((SECONDS < deadline)); do
        pids="$(lab_pids | sort -u)"
        [[ -z "$pids" ]] && break
        # Containers do not need a grace period; dockerd gets its 3 s.
        for cg in /sys/fs/cgroup/pids/"$PREFIX"-n*; do
            [[ -d "$cg" ]] && find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        done
        registry_pid | xargs -r kill -KILL 2>/dev/null || true
        ip netns pids "$SWITCH" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
        sleep 0.1
    done
    deadline=$((SECONDS + 10))
    while pids="$(lab_pids | sort -u)" && [[ -n "$pids" ]]; do
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        ((SECONDS < deadline)) || die "processes of lab $ID survive kill -9: $pids"
        sleep 0.1
    done
    # Empty cgroups, deepest first, in every hierarchy.
    local cg
    for cg in /sys/fs/cgroup/*/"$PREFIX"-n*; do
        [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    ip link del "$HOST_VETH" 2>/dev/null || true
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$PREFIX-(sw|n[0-9]+)$" || true); do
        ip netns del "$ns" 2>/dev/null || true
    done
    # dockerd mounts live in its own mount namespace (ip netns exec), gone with its processes; a
    # leftover in ours would make rm fail, so unmount anything still there.
    grep -F " $DIR/" /proc/self/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$DIR"
}

# ---------------------------------------------------------------- up

setup_network() {
    local n ns addr
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link set lo up
    ip -n "$SWITCH" link add br0 type bridge
    ip -n "$SWITCH" link set br0 up
    for n in $(seq 1 "$NODES"); do
        ns="$(node_ns "n$n")"
        addr="$(node_addr "n$n")"
        ip netns add "$ns"
        ip -n "$SWITCH" link add "n$n" type veth peer name eth0 netns "$ns"
        ip -n "$SWITCH" link set "n$n" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    ip link add "$HOST_VETH" type veth peer name host netns "$SWITCH"
    ip -n "$SWITCH" link set host master br0 up
    ip addr add "$HOST_ADDR/24" dev "$HOST_VETH"
    ip link set "$HOST_VETH" up
}

start_registry() {
    mkdir -p "$DIR/registry"
    cat >"$DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
    setsid docker-registry serve "$DIR/registry.yml" >>"$DIR/registry.log" 2>&1 </dev/null &
    echo $! >"$DIR/registry.pid"
    local deadline=$((SECONDS + START_TIMEOUT))
    until curl -fs -o /dev/null "http://$REGISTRY/v2/"; do
        ((SECONDS < deadline)) || die "the registry did not answer on $REGISTRY; see $DIR/registry.log"
        sleep 0.1
    done
}

push_image() {
    docker image inspect "$IMAGE_SOURCE" >/dev/null 2>&1 ||
        die "image $IMAGE_SOURCE is missing from the system Docker: run scripts/build_demo_image.sh"
    docker save "$IMAGE_SOURCE" | ndocker n1 load -q >/dev/null
    ndocker n1 tag "$IMAGE_SOURCE" "$IMAGE"
    ndocker n1 push -q "$IMAGE" >/dev/null
}

form_swarm() {
    local n addr token node_id pid joins=()
    ndocker n1 swarm init --advertise-addr "$(node_addr n1)" --listen-addr "$(node_addr n1):2377" \
        --dispatcher-heartbeat 1s >/dev/null
    token="$(ndocker n1 swarm join-token -q worker)"
    for n in $(seq 2 "$NODES"); do
        addr="$(node_addr "n$n")"
        ndocker "n$n" swarm join --token "$token" --advertise-addr "$addr" --listen-addr "$addr:2377" \
            "$(node_addr n1):2377" >/dev/null &
        joins+=($!)
    done
    # Only the joins: a bare `wait` would also wait for the dockerds, which are our children.
    for pid in "${joins[@]}"; do wait "$pid" || die "a node could not join the Swarm; see $DIR/n*/dockerd.log"; done
    for n in $(seq 1 "$NODES"); do
        node_id="$(ndocker "n$n" info -f '{{.Swarm.NodeID}}')"
        [[ -n "$node_id" ]] || die "n$n did not join the Swarm; see $(node_dir "n$n")/dockerd.log"
        echo "SWARM_NODE_ID_n$n='$node_id'" >>"$ENV_FILE"
        ndocker n1 node update --label-add "orchestry.docker-url=$(node_tcp_url "n$n")" "$node_id" >/dev/null
    done
}

lab_up() {
    command -v dockerd >/dev/null || die "dockerd is not installed: run scripts/bootstrap.sh"
    command -v docker-registry >/dev/null || die "docker-registry is not installed: run scripts/bootstrap.sh"
    local started=$SECONDS
    QUIET=1 lab_down
    mkdir -p "$ROOT_DIR" "$DIR"
    {
        flock -w 60 9 || die "another lab is choosing its subnet for over 60 s ($ROOT_DIR/.subnet.lock)"
        SUBNET="$(pick_subnet)" || die "no free lab subnet"
        NET_PREFIX="${SUBNET%.0/24}"
        HOST_ADDR="$NET_PREFIX.1"
        REGISTRY="$HOST_ADDR:5000"
        IMAGE="$REGISTRY/orchestry/demo:latest"
        cat >"$ENV_FILE" <<EOF
NODES='$NODES'
SUBNET='$SUBNET'
NET_PREFIX='$NET_PREFIX'
HOST_ADDR='$HOST_ADDR'
REGISTRY='$REGISTRY'
IMAGE='$IMAGE'
TLS='$TLS'
EOF
        setup_network
    } 9>"$ROOT_DIR/.subnet.lock"
    log "lab $ID: subnet $SUBNET, controller address $HOST_ADDR"
    [[ -z "$TLS" ]] || make_certs
    start_registry &
    local registry_started=$! n
    for n in $(seq 1 "$NODES"); do
        write_node_config "n$n"
        start_dockerd "n$n"
    done
    for n in $(seq 1 "$NODES"); do wait_dockerd "n$n"; done
    wait "$registry_started" || die "the registry did not start; see $DIR/registry.log"
    form_swarm
    push_image
    log "lab $ID up in $((SECONDS - started)) s: $NODES nodes, registry $REGISTRY, image $IMAGE"
}

# ---------------------------------------------------------------- status

lab_status_json() {
    load_env || die "no lab with id '$ID' (no $ENV_FILE): run '$0 up --id $ID'"
    local n args=()
    for n in $(seq 1 "$NODES"); do
        local var="SWARM_NODE_ID_n$n"
        args+=("n$n" "$(node_addr "n$n")" "$(node_ns "n$n")" "${!var:-}" "$(node_tcp_url "n$n")")
    done
    python3 - "$ID" "$SUBNET" "$HOST_ADDR" "$REGISTRY" "$IMAGE" "$DIR" "$HOST_VETH" "${TLS:-}" "${args[@]}" <<'EOF'
import json, sys

lab_id, subnet, host, registry, image, lab_dir, host_veth, tls, *rest = sys.argv[1:]
nodes = []
for i in range(0, len(rest), 5):
    name, addr, netns, node_id, tcp_url = rest[i:i + 5]
    nodes.append({
        "name": name, "address": addr,
        "docker_url": f"unix://{lab_dir}/{name}/docker.sock", "tcp_url": tcp_url,
        "role": "manager" if name == "n1" else "worker",
        "netns": netns, "switch_port": name, "swarm_node_id": node_id,
    })
print(json.dumps({
    "id": lab_id, "subnet": subnet, "controller_address": host,
    "manager_url": nodes[0]["docker_url"], "registry": registry, "image": image,
    "nodes": nodes, "dir": lab_dir, "switch_netns": f"osl-{lab_id}-sw", "host_veth": host_veth,
    # The client's DOCKER_CERT_PATH when the node APIs speak TLS (up --tls), else null.
    "cert_path": f"{lab_dir}/tls" if tls else None,
}, indent=2))
EOF
}

lab_status() {
    if [[ -n "$JSON" ]]; then
        lab_status_json
        return
    fi
    load_env || die "no lab with id '$ID': run '$0 up --id $ID'"
    echo "lab $ID: subnet $SUBNET, controller address $HOST_ADDR, registry $REGISTRY ($(registry_pid >/dev/null && echo up || echo DOWN))"
    echo "image $IMAGE; files in $DIR"
    [[ -z "${TLS:-}" ]] || echo "node APIs on :2376 with TLS: DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$DIR/tls"
    local n state link
    for n in $(seq 1 "$NODES"); do
        state="$(dockerd_pid "n$n" >/dev/null && echo "dockerd up" || echo "dockerd DOWN")"
        link="$(ip -n "$SWITCH" -br link show "n$n" 2>/dev/null | awk '{print $2}')"
        echo "n$n $(node_addr "n$n") $state, link ${link:-missing}, docker -H unix://$(node_sock "n$n") or $(node_tcp_url "n$n")"
    done
    if dockerd_pid n1 >/dev/null; then
        ndocker n1 node ls 2>/dev/null || true
    fi
}

need_node() {
    load_env || die "no lab with id '$ID': run '$0 up --id $ID'"
    [[ -n "$NODE_ARG" ]] || die "name a node: n1..n$NODES"
    [[ "$NODE_ARG" =~ ^n([0-9]+)$ ]] && ((${BASH_REMATCH[1]} >= 1 && ${BASH_REMATCH[1]} <= NODES)) ||
        die "no node '$NODE_ARG' in lab $ID: nodes are n1..n$NODES"
}

case "$CMD" in
up) lab_up ;;
down)
    started=$SECONDS
    lab_down
    log "lab $ID down in $((SECONDS - started)) s"
    ;;
status) lab_status ;;
cut-link) need_node && ip -n "$SWITCH" link set "$NODE_ARG" down ;;
restore-link) need_node && ip -n "$SWITCH" link set "$NODE_ARG" up ;;
kill-dockerd)
    need_node
    pid="$(dockerd_pid "$NODE_ARG")" || die "$NODE_ARG: dockerd does not run"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    ;;
start-dockerd) need_node && start_dockerd "$NODE_ARG" && wait_dockerd "$NODE_ARG" ;;
*) usage ;;
esac

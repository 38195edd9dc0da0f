"""A private Docker engine that a test may stop and start at will.

The shared dockerd runs other people's containers and must never be restarted; a test about a Docker
outage gets its own engine instead: a second ``dockerd`` with its own data root, exec root (its managed
containerd lives under it), pid file, unix socket and default bridge.

The bridge matters: a daemon started with ``--bridge=none`` deletes the host's ``docker0``.  This one is
pointed at a dedicated, empty bridge created for it (``--bridge``), which carries no traffic: replicas use
host networking on 127.0.0.1 as in every test.  The bridge gets a /30 of TEST-NET-3 (203.0.113.0/24,
reserved for documentation) so that dockerd does not pick a free private /16 for it, which a bridge
network of the shared engine might want later.  ``--iptables=false --ip-forward=false --ip-masq=false``
keep it away from the host's firewall and sysctls.

``PrivateDocker.cleanup()`` stops the daemon, kills whatever it left running (containers kept by
``--live-restore``, containerd, shims), unmounts and removes its directories and deletes the bridge; the
``private_docker`` fixture calls it even when a test fails.  A run that is killed outright never gets
there, and its daemon may even be SIGSTOPped: each engine records its owner (pid and start time) in its
directory, and the fixture first removes every engine whose owner is gone (``reap_stale``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE_PREFIX = "orch-dk-"
BRIDGE_PREFIX = "orch-cx-"
OWNER_FILE = "owner.json"
OWNERLESS_GRACE = 60.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
CGROUP_ROOT = Path("/sys/fs/cgroup")
HOST_BRIDGE = "docker0"


class PrivateDockerError(RuntimeError):
    pass


class PrivateDocker:
    """One dockerd in a temp dir; ``stop()``/``start()`` any number of times, ``cleanup()`` once."""

    def __init__(self, base: Path | None = None, bridge: str | None = None) -> None:
        """A new engine in a new temp dir, or (``base`` given) a handle on one a dead run left behind."""
        token = secrets.token_hex(3)
        # Short paths: containerd's socket lives under the exec root and unix socket paths are limited
        # to 108 bytes, which pytest's tmp_path would exceed.
        self.base = base or Path(tempfile.mkdtemp(prefix=BASE_PREFIX))
        self.data_root = self.base / "data"
        self.exec_root = self.base / "exec"
        self.pid_file = self.base / "dockerd.pid"
        self.socket = self.base / "docker.sock"
        self.log_path = self.base / "dockerd.log"
        self.config_file = self.base / "daemon.json"
        self.bridge = bridge or f"{BRIDGE_PREFIX}{token}"  # interface names are at most 15 characters
        self.bridge_cidr = f"203.0.113.{4 * secrets.randbelow(64) + 1}/30"
        self.url = f"unix://{self.socket}"
        self.live_restore = False
        self._process: subprocess.Popen[bytes] | None = None
        self.host_bridge_existed = _link_exists(HOST_BRIDGE)
        if base is None:
            # An empty config file: the shared engine's /etc/docker/daemon.json (if any) must not apply.
            self.config_file.write_text("{}\n")
            owner = {"pid": os.getpid(), "started": _process_start(os.getpid()), "bridge": self.bridge}
            (self.base / OWNER_FILE).write_text(json.dumps(owner))

    # -- the daemon ---------------------------------------------------------------------------------

    def start(self, live_restore: bool = False) -> float:
        """Start dockerd and wait until it answers; returns the seconds that took."""
        if self.running():
            raise PrivateDockerError("the private dockerd is already running: stop it first")
        self.live_restore = live_restore
        if not _link_exists(self.bridge):
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "addr", "add", self.bridge_cidr, "dev", self.bridge)
        argv = [
            "dockerd",
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.pid_file}",
            f"--host=unix://{self.socket}",
            f"--config-file={self.config_file}",
            f"--bridge={self.bridge}",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--storage-driver=overlay2",
        ]
        if live_restore:
            argv.append("--live-restore")
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrivateDockerError(
                    f"private dockerd exited with code {self._process.returncode}: {self.log_tail()}"
                )
            if self.answers():
                if self.host_bridge_existed and not _link_exists(HOST_BRIDGE):
                    raise PrivateDockerError(f"starting the private dockerd removed the host's {HOST_BRIDGE}")
                return time.monotonic() - started
            time.sleep(0.05)
        raise PrivateDockerError(
            f"private dockerd did not answer within {START_TIMEOUT:.0f} s: {self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT) -> float:
        """SIGTERM, as a service manager stops dockerd; wait for it to exit.  Returns the seconds taken.

        Without ``--live-restore`` the daemon stops its containers on the way out; with it they keep
        running.
        """
        process = self._process
        if process is None or process.poll() is not None:
            return 0.0
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise PrivateDockerError(
                f"private dockerd did not stop within {timeout:.0f} s of SIGTERM and was killed"
            ) from None
        return time.monotonic() - started

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", check=False).returncode == 0

    # -- the docker CLI against this engine ---------------------------------------------------------

    def docker(
        self, *args: str, check: bool = True, stdin: bytes | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            ["docker", "--host", self.url, *args], input=stdin, capture_output=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise PrivateDockerError(f"docker {' '.join(args)} failed: {result.stderr.decode().strip()}")
        return result

    def load_image(self, image: str) -> None:
        """Copy an image from the shared engine (no registry is reachable)."""
        saved = subprocess.run(["docker", "save", image], capture_output=True, timeout=120, check=True)
        self.docker("load", stdin=saved.stdout)

    def containers(self, label: str | None = None) -> list[dict[str, str]]:
        """Every container of this engine (running or not): id, name, state and labels."""
        args = ["ps", "--all", "--no-trunc", "--format", "{{json .}}"]
        if label:
            args += ["--filter", f"label={label}"]
        rows = []
        for line in self.docker(*args).stdout.decode().splitlines():
            row = json.loads(line)
            labels = dict(part.split("=", 1) for part in (row.get("Labels") or "").split(",") if "=" in part)
            rows.append({"id": row["ID"], "name": row["Names"], "state": row["State"], **labels})
        return rows

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return " / ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    # -- cleanup ------------------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Leave nothing behind, whatever state the test left the daemon in; raise if something stayed."""
        problems: list[str] = []
        # The bridge goes while the owner file still says whose it is: once the files are gone, another
        # run's reap_stale takes it for a dead run's and may delete it under this one's own delete.
        steps = (
            self._remove_containers,
            self._stop_daemon,
            self._kill_leftovers,
            self._unmount_all,
            self._delete_bridge,
            self._remove_files,
        )
        for step in steps:
            try:
                step()
            except Exception as exc:  # every step runs: one failure must not leave the rest behind
                problems.append(f"{step.__name__}: {exc}")
        if self.host_bridge_existed and not _link_exists(HOST_BRIDGE):
            problems.append(f"the host's {HOST_BRIDGE} bridge is gone")
        if problems:
            raise PrivateDockerError("private dockerd cleanup incomplete: " + "; ".join(problems))

    def _container_ids(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [p.name for p in (self.data_root / "containers").iterdir()]
        return []

    def _remove_containers(self) -> None:
        if not self.running():
            if not (self.live_restore and self._container_ids()):
                return
            # A live-restore engine that was stopped kept its containers running: start it once more so
            # that Docker itself removes them, their mounts and cgroups (if it cannot, the next steps
            # kill and unmount by hand).
            self.start(live_restore=True)
        ids = self.docker("ps", "--all", "--quiet", check=False).stdout.decode().split()
        if ids:
            self.docker("rm", "--force", "--volumes", *ids)

    def _stop_daemon(self) -> None:
        with contextlib.suppress(PrivateDockerError):
            self.stop(timeout=30)

    def _kill_leftovers(self) -> None:
        """Processes a killed daemon may leave: container processes, shims, containerd."""
        for container_id in self._container_ids():
            for pid in _cgroup_pids(container_id):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        marker = str(self.base).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                if marker in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
        for container_id in self._container_ids():
            for directory in CGROUP_ROOT.glob(f"*/docker/{container_id}"):
                with contextlib.suppress(OSError):
                    directory.rmdir()

    def _unmount_all(self) -> None:
        """dockerd bind-mounts its data root onto itself and leaves an nsfs mount in the exec root."""
        for _ in range(5):  # a lazy unmount can reveal a mount that was underneath
            mounts = _mounts_under(self.base)
            if not mounts:
                return
            for point in sorted(mounts, key=len, reverse=True):
                subprocess.run(["umount", "--lazy", point], capture_output=True, timeout=30)
        remaining = _mounts_under(self.base)
        if remaining:
            raise PrivateDockerError(f"still mounted: {', '.join(remaining)}")

    def _remove_files(self) -> None:
        if _mounts_under(self.base):
            raise PrivateDockerError(f"{self.base} kept: something is still mounted under it")
        shutil.rmtree(self.base)

    def _delete_bridge(self) -> None:
        if _link_exists(self.bridge):
            _run("ip", "link", "delete", self.bridge, "type", "bridge")


def reap_stale(tmp_root: Path | None = None) -> list[str]:
    """Remove the engines (and bridges) of runs that no longer exist; returns what was removed.

    An engine belongs to a live run while its owner process (same pid, same start time, so a reused
    pid does not count) exists; other test runs on this machine keep theirs.
    """
    root = tmp_root or Path(tempfile.gettempdir())
    removed: list[str] = []
    for base in sorted(root.glob(f"{BASE_PREFIX}*")):
        owner = _read_owner(base)
        if not base.is_dir() or _owner_alive(owner):
            continue
        if owner is None and time.time() - base.stat().st_mtime < OWNERLESS_GRACE:
            continue  # just made by another run, which writes its owner file next
        stale = PrivateDocker(base=base, bridge=str((owner or {}).get("bridge") or "") or None)
        removed += [str(base)] + ([stale.bridge] if _link_exists(stale.bridge) else [])
        with contextlib.suppress(PrivateDockerError):
            stale.cleanup()
    for link in sorted(Path("/sys/class/net").glob(f"{BRIDGE_PREFIX}*")):
        # Read the owners again here: another run may have made its engine since the loop above.
        if not _bridge_in_use(root, link.name):
            with contextlib.suppress(PrivateDockerError):
                _run("ip", "link", "delete", link.name, "type", "bridge")
                removed.append(link.name)
    return removed


def _owner_alive(owner: dict[str, object] | None) -> bool:
    return bool(owner) and _process_start(owner.get("pid")) == owner.get("started")  # type: ignore[union-attr]


def _bridge_in_use(root: Path, bridge: str) -> bool:
    for base in root.glob(f"{BASE_PREFIX}*"):
        owner = _read_owner(base)
        if owner and owner.get("bridge") == bridge and _owner_alive(owner):
            return True
    return False


def _read_owner(base: Path) -> dict[str, object] | None:
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads((base / OWNER_FILE).read_text())
        if isinstance(owner, dict):
            return owner
    return None


def _process_start(pid: object) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    if not isinstance(pid, int) or pid <= 0:
        return None
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        # The command name (field 2) is in parentheses and may hold spaces: split after its end.
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    return None


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise PrivateDockerError(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _cgroup_pids(container_id: str) -> list[int]:
    pids: set[int] = set()
    for procs in CGROUP_ROOT.glob(f"*/docker/{container_id}/cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(line) for line in procs.read_text().split())
    return sorted(pids)


def _mounts_under(base: Path) -> list[str]:
    prefix = str(base)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like octal-escaped.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


@pytest.fixture
def private_docker() -> Iterator[PrivateDocker]:
    """A running private Docker engine with the demo image loaded; removed at the end, pass or fail."""
    from tests.conftest import DEMO_IMAGE

    reap_stale()
    engine = PrivateDocker()
    try:
        engine.start()
        engine.load_image(DEMO_IMAGE)
        yield engine
    finally:
        engine.cleanup()

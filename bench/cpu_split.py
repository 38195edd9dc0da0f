"""Who used the CPU over a stretch of time: every process's CPU time before and after it.

Docker's and nginx's processes count their own time (utime + stime) plus their reaped children's
(cutime + cstime): runc and the short-lived shim starters are reaped by containerd-shim / containerd,
nginx's old workers by its master, so their time is still counted once their parent reaped them; other
processes count their own time only.  A process born in between counts
from zero.  Groups, as a scale-out sees them: the engine (this process, its own time only: its children
are the measuring tools), the polling client, the compose CLI (the caller adds it: it exits before the
second snapshot), dockerd, containerd, the shims (with their runc children), the replicas (everything
under a shim), the engine's nginx, and the rest of the machine (other sessions: on a shared host, most
of it).  dockerd, containerd, the shims and the replicas serve the whole host: another session's
containers starting meanwhile count there too.  Linux only.  Resolution is a clock tick (10 ms): read
medians of several runs.

With the kernel's autogroup scheduling (``/proc/sys/kernel/sched_autogroup_enabled``) CPU is shared
between sessions before threads: dockerd, containerd with every shim and runc, nginx and each replica
are sessions of their own, the engine with its client and the compose CLI another: the engine's own CPU
takes from Docker only as one session among the machine's many.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICK = 1 / os.sysconf("SC_CLK_TCK")
GROUPS = ("engine", "client", "compose", "dockerd", "containerd", "shims", "replicas", "nginx", "rest")

Snapshot = dict[int, tuple[str, int, float]]  # pid → (group, ppid, CPU seconds)


# Groups whose reaped children are part of their work (runc under the shims and containerd, nginx's old
# workers under its master).  Elsewhere only a process's own time counts: a shell of another session
# reaping a long test run would otherwise add that run's whole CPU to the window.
_WITH_CHILDREN = frozenset({"dockerd", "containerd", "shims", "replicas", "nginx"})


def _stat(pid: int) -> tuple[str, int, float, float, int] | None:
    """comm, ppid, own CPU seconds, own + reaped children's CPU seconds, session id."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime, stime, cutime, cstime are fields 14-17.
    own = (int(fields[11]) + int(fields[12])) * TICK
    return comm, int(fields[1]), own, own + (int(fields[13]) + int(fields[14])) * TICK, int(fields[3])


def snapshot(engine_pid: int, client_pids: Iterable[int] = (), nginx_master: int | None = None) -> Snapshot:
    """Every process's CPU seconds now, grouped.  ``nginx_master``: the engine's nginx (every nginx
    process of its session is "nginx": the masters a reload starts keep it, and their workers; other
    sessions' nginx processes are "rest").  A master replaced by a reload and its workers exit without a
    counted parent to reap them: their time in the window is lost, so "nginx" is a lower bound."""
    clients = set(client_pids)
    raw: dict[int, tuple[str, int, float, float, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _stat(int(entry.name))
            if found is not None:
                raw[int(entry.name)] = found
    shims = {pid for pid, found in raw.items() if found[0].startswith("containerd-shim")}
    nginx_session = raw[nginx_master][4] if nginx_master in raw else None
    out: Snapshot = {}
    for pid, (comm, ppid, own, with_children, session) in raw.items():
        if pid == engine_pid:
            group = "engine"  # its reaped children are the measuring tools, counted apart
        elif pid in clients:
            group = "client"
        elif comm == "dockerd":
            group = "dockerd"
        elif comm == "containerd":
            group = "containerd"
        elif pid in shims:
            group = "shims"
        elif _under(pid, shims, raw):
            group = "replicas"
        elif comm == "nginx" and (nginx_master in (pid, ppid) or session == nginx_session):
            group = "nginx"
        else:
            group = "rest"
        out[pid] = (group, ppid, with_children if group in _WITH_CHILDREN else own)
    return out


def _under(pid: int, ancestors: set[int], raw: dict[int, tuple[str, int, float, float, int]]) -> bool:
    seen = 0
    while pid in raw and seen < 32:
        pid = raw[pid][1]
        if pid in ancestors:
            return True
        seen += 1
    return False


def split(before: Snapshot, after: Snapshot, gone: dict[int, float] | None = None) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process gone by ``after`` is counted by its
    reaping parent, if that parent is still there).  ``gone``: CPU seconds that processes left out of
    ``after`` reported themselves (the polling client, which exits before /proc could be read)."""
    used = dict.fromkeys(GROUPS, 0.0)
    for pid, (group, _, seconds) in after.items():
        earlier = before.get(pid)
        used[group] += max(0.0, seconds - (earlier[2] if earlier is not None else 0.0))
    for pid, seconds in (gone or {}).items():
        earlier = before.get(pid)
        if earlier is not None:
            used[earlier[0]] += max(0.0, seconds - earlier[2])
    return used


def thread_seconds() -> dict[str, float]:
    """CPU seconds per thread of this process, by Python thread name with its number dropped
    ("docker_3" → "docker"): the engine's event loop vs its Docker pool and streams."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for entry in os.scandir("/proc/self/task"):
        tid = int(entry.name)
        try:
            raw = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        name = names.get(tid, "other").rstrip("0123456789").rstrip("_") or "other"
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) * TICK
    return out

"""The daemon and the console start with glibc's malloc thresholds fixed (the ``malloc_threshold``
setting, core/allocator.py), so freed large blocks go back to the system instead of staying in the heap."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")

# Runs the real entry point with what it starts replaced by a probe: after an 8 MiB block is freed,
# glibc's own moving threshold carves a 1 MiB block from the heap; fixed at 128 KiB, it is mmapped.
PROBE = """
import ctypes, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)

def probe(*args, **kwargs):
    libc.free(libc.malloc(8 << 20))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(1 << 20)
    mmapped = libc.mallinfo2().hblkhd - before >= 1 << 20
    libc.free(block)
    print("mmapped" if mmapped else "heap")
    return 0

import core.daemon, orchestry_tui.console
core.daemon.run_daemon = probe
orchestry_tui.console.run_console = probe
from orchestry_tui.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_entry(tmp_path: Path, *argv: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRY_", "MALLOC_"))}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", PROBE, *argv, "--state-dir", str(tmp_path / "state")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("command", [["daemon"], []], ids=["daemon", "console"])
def test_large_blocks_stay_mmapped_by_default(tmp_path: Path, command: list[str]) -> None:
    result = run_entry(tmp_path, *command)
    assert (result.returncode, result.stdout.strip()) == (0, "mmapped"), result.stderr


@pytest.mark.parametrize(("value", "where"), [("512k", "mmapped"), ("2m", "heap")])
def test_another_threshold_is_taken(tmp_path: Path, value: str, where: str) -> None:
    # The 1 MiB block is above 512 KiB and below 2 MiB, whatever the freed 8 MiB block did.
    result = run_entry(tmp_path, "daemon", ORCHESTRY_MALLOC_THRESHOLD=value)
    assert (result.returncode, result.stdout.strip()) == (0, where), result.stderr


def test_off_leaves_glibcs_moving_threshold(tmp_path: Path) -> None:
    result = run_entry(tmp_path, "daemon", ORCHESTRY_MALLOC_THRESHOLD="off")
    assert (result.returncode, result.stdout.strip()) == (0, "heap"), result.stderr


def test_glibcs_own_variable_wins(tmp_path: Path) -> None:
    # 32 MiB by hand: the 1 MiB block comes from the heap, as the user asked, not mmapped by our 128 KiB.
    result = run_entry(tmp_path, "daemon", MALLOC_MMAP_THRESHOLD_=str(32 << 20))
    assert (result.returncode, result.stdout.strip()) == (0, "heap"), result.stderr


@pytest.mark.parametrize("value", ["lots", "64m", "-1"])
def test_a_bad_value_is_one_line_naming_the_setting(tmp_path: Path, value: str) -> None:
    result = run_entry(tmp_path, "daemon", ORCHESTRY_MALLOC_THRESHOLD=value)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: ORCHESTRY_MALLOC_THRESHOLD={value!r} is not valid: expected bytes up to 32 MiB"
        " (e.g. 131072 or 128k), or off to leave glibc's moving thresholds"
    )
    assert result.stdout == ""

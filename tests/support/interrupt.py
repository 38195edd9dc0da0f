"""Ctrl-C for a CLI process under test, with a post-mortem when it does not stop.

A test run started in the background by a non-interactive shell (`make test &`, some CI runners)
inherits SIGINT *ignored*, and so does every process it starts: `orchestry logs --follow` and
`orchestry scale --wait` then rightly ignore the tests' Ctrl-C, as any program started that way does
(two full runs failed so; alone, from an interactive shell, they passed).  ``accept_ctrl_c`` gives the
test process back the default disposition, which its children inherit; should a child still not stop,
the failure shows its signal masks and, through faulthandler, where every thread was.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

# Put into the process's environment so a SIGABRT makes it print every thread's stack.
FAULTHANDLER_ENV = {"PYTHONFAULTHANDLER": "1"}


def accept_ctrl_c() -> None:
    """Undo an inherited ignored SIGINT in this process, so the processes it starts get SIGINT back."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt(process: subprocess.Popen[str], timeout: float = 30.0) -> int:
    """Send SIGINT and return the exit code; on timeout, abort the process and fail with its stacks."""
    masks = signal_masks(process.pid)
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stacks = process.communicate(timeout=30)
        raise AssertionError(
            f"{process.args!r} ignored Ctrl-C for {timeout:g} s (its masks: {masks}; pytest's: "
            f"{signal_masks(os.getpid())}); its stacks:\n{stacks}"
        ) from None


def signal_masks(pid: int) -> str:
    """The blocked, ignored and caught signal masks of a process, as /proc shows them."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    wanted = ("SigBlk", "SigIgn", "SigCgt")
    return " ".join(line.replace("\t", "") for line in status if line.startswith(wanted))

"""glibc's malloc thresholds, fixed at start-up so a long-running console or daemon keeps its heap level.

glibc moves its mmap threshold up to the size of the largest mmapped block freed so far (and its trim
threshold to twice that): after a few multi-megabyte blocks come and go, large blocks are carved from the
heap instead, and the heap keeps the free space left between live chunks.  Over an idle hour at 1,000
replicas that free space was most of the console's RSS growth after the metric windows filled.  Fixing
both thresholds (what glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` do) stops the
moving: large blocks stay mmapped and go back to the system when freed, and free space at the heap's top
is given back once it passes the threshold.

glibc only: elsewhere (musl, macOS) nothing happens.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

MALLOC_THRESHOLD = 128 * 1024  # glibc's own starting value for both, held instead of moved
MAX_MALLOC_THRESHOLD = 32 * 2**20  # glibc refuses a larger mmap threshold (HEAP_MAX_SIZE / 2, 64-bit)
# Set by hand, glibc's own variables already fixed the thresholds at exec: they win.
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3


def fix_malloc_thresholds(threshold: int, environ: Mapping[str, str] = os.environ) -> bool:
    """Fix glibc's mmap and trim thresholds at ``threshold`` bytes (the ``malloc_threshold`` setting);
    True if glibc took both.  Nothing happens for 0 (off), outside glibc, or when glibc's own variables
    are set."""
    if threshold <= 0 or any(name in environ for name in GLIBC_VARIABLES):
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: libc's, without searching for the library
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl's mallopt does nothing)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, threshold))

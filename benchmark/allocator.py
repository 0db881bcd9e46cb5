"""Let freed memory be reused instead of handed back and faulted in again (glibc only).

By default glibc gives freed heap back to the system as soon as 128 KiB-2 x 32 MiB sit free at the
top, so the big temporaries of every training step and evaluation batch come back as fresh pages
that fault in on first touch. Fixing the mmap threshold at 32 MiB (blocks above it are still
mapped and unmapped, so a rare huge block does not pin memory) and the trim threshold at 256 MiB
keeps them for reuse. Measured with ``python -m benchmark.speed`` on the Amazon splits, 2 threads:
a LightGCN epoch on Clothing 9.7 s -> 7.2 s, a full-ranking pass on Baby 0.68 s -> 0.40 s, and
the peak resident size of a Clothing LightGCN run 742 MB -> 845 MB. (Unbounded thresholds were a
little faster still but let fragmentation lift that peak to 2.3 GB.)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Apply the thresholds; False where there is no glibc or ``MMIL_BENCH_MALLOC=system``."""
    if os.environ.get("MMIL_BENCH_MALLOC") == "system":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))

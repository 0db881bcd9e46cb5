"""Let freed memory be reused instead of handed back and faulted in again (glibc only).

By default glibc gives freed heap back to the system as soon as 128 KiB-2 x 32 MiB sit free at the
top, so the big temporaries of every training step and evaluation batch come back as fresh pages
that fault in on first touch. Fixing the mmap threshold at 32 MiB (blocks above it are still
mapped and unmapped, so a rare huge block does not pin memory) and the trim threshold at 256 MiB
keeps them for reuse. ``python -m benchmark.study.speed --data-root ../shared/data`` on the 2-core
development machine, with ``MMIL_BENCH_MALLOC=system`` and then without: LightGCN epoch on Baby
2.44 s -> 1.77 s, full-ranking pass on Baby 0.50 s -> 0.42 s, LightGCN epoch on Clothing 10.2 s
-> 7.1 s, peak RSS of the Clothing run 799 MB -> 879 MB. (Thresholds of 1 GiB, tried while
choosing these, were a little faster still but let fragmentation lift that peak to 2.3 GB.)
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

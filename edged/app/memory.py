"""Keep the daemon's memory from creeping: large buffers go straight back to the OS.

glibc serves a freed large block from its heap next time once it has seen
one freed (its mmap threshold rises up to 32 MB). Camera frames (6 MB at
1080p), detector inputs and decoded JPEGs are allocated by several threads
in varying sizes, so those heaps fragment and the resident size grows by
tens of MB over a day. A fixed 1 MB threshold maps every such buffer and
returns it on free; ONNX Runtime keeps its own arena, so model runs do not
pay the page faults. Measured with a 1080p folder camera and 40 passages:
peak RSS 217 MB instead of 248, steady 187 instead of 224
(``bench/daemon_rss_bench.py``; ``EDGED_MALLOC_TUNING=off`` turns this off).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from edged.logs import get_logger

log = get_logger("memory")

M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 1 << 20


def bound_heap(threshold: int = THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold; False (and nothing changed) off glibc or when turned off."""
    if os.environ.get("EDGED_MALLOC_TUNING") == "off":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.info("malloc_tuning_skipped", reason="not glibc")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))

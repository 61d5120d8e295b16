"""`profiled(fn, out_file)`: run fn under cProfile and write its top functions to out_file.
`peak_rss_mb()`: this process's own peak resident memory."""

from __future__ import annotations

import cProfile
import pstats


def profiled(fn, out_file: str | None, top: int = 30):
    """fn(); when out_file is given, profiled, with the top functions by own time written there."""
    if not out_file:
        return fn()
    prof = cProfile.Profile()
    result = prof.runcall(fn)
    with open(out_file, "w") as out:
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return result


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not `ru_maxrss`: Linux carries that over fork and exec,
    so a worker started by a benchmark that had just published 400k events reported the
    parent's 654 MB as its own."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")

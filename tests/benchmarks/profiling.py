"""`profiled(fn, out_file)`: run fn under cProfile and write its top functions to out_file."""

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

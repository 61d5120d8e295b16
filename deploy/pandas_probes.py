"""Huiliu's processes answer "not installed" when pyarrow or polars look for pandas on their behalf.

pyarrow (on a `pa.array` of Python values, a `to_numpy`) and polars (on a conversion) import pandas
only to ask whether a value is one of its types. Nothing in Huiliu makes pandas objects, but pandas
is installed (chdb brings it), so every worker, runner, sink and API process paid ~48 MB of RSS and
half a second for that question (tests/benchmarks/README.md, the runner's peak RSS).

`skip_pandas_probes()` installs an import hook refusing pandas to those probes only: an import of
pandas whose nearest Python caller is Huiliu's own code (which never imports it itself, so that can
only be a library asking on its behalf: pyarrow's checks are compiled and show no frame of their
own) or polars. A plugin's `import pandas` has its own module as the caller and loads pandas as
usual; so does a process that never called this (tests, the Flink job in its own environment).
"""

from __future__ import annotations

import importlib.abc
import sys

OURS = ("api", "connectors", "deploy", "quality_stream", "schemas", "sinks", "streams", "polars")


class _RefusePandasProbes(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "pandas":
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
            frame = frame.f_back
        caller = frame.f_globals.get("__name__", "") if frame is not None else ""
        if caller.split(".", 1)[0] in OURS:
            raise ModuleNotFoundError("pandas is not loaded for type checks in Huiliu processes", name=name)
        return None  # someone's own import: the next finders load it


def skip_pandas_probes() -> None:
    """Install the hook once per process (before pyarrow's first look, which it remembers)."""
    if not any(isinstance(f, _RefusePandasProbes) for f in sys.meta_path):
        sys.meta_path.insert(0, _RefusePandasProbes())

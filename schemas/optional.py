"""Optional dependencies: import one, or say which extra of the `huiliu` package installs it.

Connector families beyond the spine (HBase, HDFS, Hive, SFTP, MySQL binlog, the local stack's
broker and embedded ClickHouse) are extras, e.g. `pip install 'huiliu[hbase]'`:

    happybase = optional_import("happybase", extra="hbase")
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, module: str, extra: str):
        super().__init__(f"{module} is not installed; install it with: pip install 'huiliu[{extra}]'", name=module)
        self.extra = extra


def optional_import(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_extra(exc, module, extra) from None


def missing_extra(exc: ModuleNotFoundError, module: str, extra: str) -> ModuleNotFoundError:
    """The error to raise for `exc`: MissingExtra when `module`'s own package is what is missing
    (a broken install, some other package missing, keeps its own error)."""
    if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
        return exc
    return MissingExtra(module, extra)

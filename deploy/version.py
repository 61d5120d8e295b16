"""Huiliu's version, read from the installed distribution (pyproject.toml is the one place it is written)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def huiliu_version() -> str:
    try:
        return version("huiliu")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"

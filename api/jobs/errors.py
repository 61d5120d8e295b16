"""An exception as a message a caller may see: the problem and its position, never the input.

Parsers and drivers put what they read into their messages (YAML quotes the offending line,
pydantic the rejected value, SQLAlchemy the statement and its parameters, csv/lxml the text near
the error). Read from a file a caller named, that text is the file's content. `describe(exc)`
keeps the exception type, the position and the kind of problem; everything else is dropped.
"""

from __future__ import annotations

import json
import re
import traceback

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")

# Exceptions whose message is ours (written to be shown) or holds no input.
_OWN = ("PathRefused", "HostRefused", "ProbeRateLimited", "ImportRefused", "JobCancelled", "TimeoutError")


def _pydantic(exc) -> str:
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:10]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "document"
        parts.append(f"{loc}: {err.get('type', 'invalid')}")
    return f"{exc.error_count()} validation error(s): " + "; ".join(parts)


def _yaml(exc) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML{where}"


def describe(exc: BaseException) -> str:
    name = type(exc).__name__
    try:
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            return f"{name}: {_pydantic(exc)}"
    except ImportError:  # pragma: no cover
        pass
    try:
        import yaml

        if isinstance(exc, yaml.YAMLError):
            return f"{name}: {_yaml(exc)}"
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, json.JSONDecodeError):
        return f"{name}: not valid JSON at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"{name}: cannot decode as {exc.encoding} at byte {exc.start}"
    if name in _OWN or type(exc).__module__.startswith(("api.", "connectors.paths", "connectors.probes")):
        return f"{name}: {exc}"
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError | NotADirectoryError):
        return f"{name}: the file cannot be read"
    if isinstance(exc, KeyError | ValueError | TypeError | RuntimeError) and type(exc).__module__ == "builtins":
        # our own code's messages, or a conversion's (int('...')): quoted values are dropped
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        return f"{name}: {_QUOTED.sub('…', first)}"
    try:
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        if isinstance(exc, DBAPIError):  # no statement, no parameters, no server text
            return f"{name}: the database refused or failed the operation ({type(exc.orig).__name__})"
        if isinstance(exc, SQLAlchemyError):
            return f"{name}: database error"
    except ImportError:  # pragma: no cover
        pass
    return f"{name}: failed"


def trace(exc: BaseException, limit: int = 5) -> str:
    """Where it failed (files, lines, functions), without the exception's own text."""
    frames = traceback.format_tb(exc.__traceback__, limit=-limit)
    return ("".join(frames) + describe(exc))[-2000:]

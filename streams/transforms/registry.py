"""Every transform kind, and building a pipeline's transforms from their configuration. The
built-in kinds register by being imported here (the base module only holds the registry and the
decorator, so no kind imports back into it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from quality_stream.errors import first_pydantic_problem
from streams.transforms import basic, dedupe, enrich, flatten, mask, normalise, route, standardise  # noqa: F401
from streams.transforms.base import _KINDS, BuildEnv, Pipeline, Transform, TransformConfigError


def transform_class(kind: Any) -> type[Transform] | None:
    return _KINDS.get(kind) if isinstance(kind, str) else None


def transform_kinds() -> dict[str, dict]:
    return {k: cls.settings.model_json_schema() for k, cls in sorted(_KINDS.items())}


def build_transform(cfg: Any, index: int = 0, env: BuildEnv | None = None) -> Transform:
    env = env or BuildEnv()
    if not isinstance(cfg, Mapping):
        raise TransformConfigError(f"#{index}", None, "transform definition must be a mapping")
    name = cfg.get("id") or f"#{index} ({cfg.get('kind')})"
    kind = cfg.get("kind")
    if kind not in _KINDS:
        raise TransformConfigError(name, "kind", f"unknown kind {kind!r}; known kinds: {', '.join(sorted(_KINDS))}")
    cls = _KINDS[kind]
    try:
        spec = cls.settings.model_validate(dict(cfg))
    except ValidationError as exc:
        loc, msg = first_pydantic_problem(exc)
        raise TransformConfigError(name, loc, msg) from None
    try:
        return cls(spec, env)
    except TransformConfigError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise TransformConfigError(name, getattr(exc, "field", None), str(exc)) from None


def build_transforms(
    configs: Iterable[Mapping[str, Any]],
    *,
    lookups: Mapping[str, Any] | None = None,
    stores: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Pipeline:
    env = BuildEnv(lookups, stores, secrets)
    return Pipeline([build_transform(c, i, env) for i, c in enumerate(configs)])

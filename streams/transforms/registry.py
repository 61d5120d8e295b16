"""Every transform kind, and building a pipeline's transforms from their configuration. The
built-in kinds register by being imported here (the base module only holds the registry and the
decorator, so no kind imports back into it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from quality_stream.errors import build_kind
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
    return build_kind(_KINDS, cfg, name, TransformConfigError, lambda cls, spec: cls(spec, env))


def build_transforms(
    configs: Iterable[Mapping[str, Any]],
    *,
    lookups: Mapping[str, Any] | None = None,
    stores: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> Pipeline:
    env = BuildEnv(lookups, stores, secrets)
    return Pipeline([build_transform(c, i, env) for i, c in enumerate(configs)])

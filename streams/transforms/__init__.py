"""Stream transforms: config-driven steps over micro-batches (see README.md).

The names below load on first use (PEP 562): the kinds import polars, and a process that only
masks values (streams.transforms.masking in the API's data services) should not load it."""

__all__ = [
    "build_transforms",
    "build_transform",
    "transform_kinds",
    "TransformConfigError",
    "Transform",
    "TransformSpec",
    "Pipeline",
    "BuildEnv",
]


def __getattr__(name: str):
    if name in ("build_transforms", "build_transform", "transform_kinds"):
        from streams.transforms import registry

        return getattr(registry, name)
    if name in __all__:
        from streams.transforms import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Stream transforms: config-driven steps over micro-batches (see README.md)."""

from streams.transforms.base import BuildEnv, Pipeline, Transform, TransformConfigError, TransformSpec
from streams.transforms.registry import build_transform, build_transforms, transform_kinds

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

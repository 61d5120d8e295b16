"""mask transform: apply masking functions per field, or a role's MaskPolicy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from streams.transforms.base import Transform, TransformSpec, config_error, transform_kind
from streams.transforms.masking import MaskPolicy


class MaskSpec(TransformSpec):
    kind: Literal["mask"]
    fields: dict[str, Any] | None = None  # field -> mask spec
    policy: dict[str, dict[str, Any]] | None = None  # role -> field -> mask spec
    role: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.fields is None) == (self.policy is None):
            raise ValueError("give either fields or policy (+ role)")
        if self.policy is not None and not self.role:
            raise ValueError("role is required with policy")
        return self

    def reads(self):
        if self.fields is not None:
            return list(self.fields)
        policy = self.policy or {}
        return list(policy.get(self.role or "", policy.get("default")) or {})  # as MaskPolicy.functions picks


@transform_kind("mask")
class Mask(Transform):
    kind, settings = "mask", MaskSpec

    def __init__(self, spec, env):
        super().__init__(spec, env)
        roles = spec.policy if spec.policy is not None else {"_": spec.fields}
        try:
            self.policy = MaskPolicy(roles, env.secrets)
            self.role = spec.role or "_"
            self.policy.functions(self.role)
        except (ValueError, KeyError) as exc:
            raise config_error("policy" if spec.policy else "fields", str(exc)) from None

    def apply_frame(self, df):
        return self.policy.mask_frame(df, self.role)

"""One problem found in a configuration document, named by its field path (`rules.2.pattern`):
what every layer's checks return (connector documents, runner rules and transforms, pipelines), so
a check low in the house need not import the layer that shows it.

    from schemas.field_errors import FieldError
    FieldError("rules.0.fields", "no column phone", "没有列 phone").as_dict()
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FieldError:
    field: str
    message: str
    message_zh: str | None = None  # the Chinese text, where the check has one

    def as_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "message": self.message,
            **({"message_zh": self.message_zh} if self.message_zh else {}),
        }

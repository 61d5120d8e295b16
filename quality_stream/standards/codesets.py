"""Named code sets usable from {"kind": "in_set", "code_set": NAME}."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# GB/T 2261.1-2003 人的性别代码
GB2261_GENDER = {"0": "未知的性别", "1": "男性", "2": "女性", "9": "未说明的性别"}

_SETS: dict[str, Callable[[], Iterable[str]]] = {
    "gb2261_gender": lambda: GB2261_GENDER.keys(),
}


def register_code_set(name: str, values: Iterable[str] | Callable[[], Iterable[str]]) -> None:
    _SETS[name] = values if callable(values) else (lambda v=list(values): v)


def get_code_set(name: str) -> list[str]:
    if name not in _SETS:
        raise KeyError(f"unknown code set {name!r}; known: {', '.join(sorted(_SETS))}")
    return [str(v) for v in _SETS[name]()]


def code_sets() -> list[str]:
    return sorted(_SETS)

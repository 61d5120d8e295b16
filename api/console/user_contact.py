"""A user's notice address and language (ticket mail, deploy/mail.py) as the console's user forms
take them: checked here first, so a mistyped address is shown next to its field in the page's
language (the API's own 422 would be a pydantic pattern message in English), then sent as the
API's `email` / `lang` (api/identity/schemas.py: "" clears the address; no language means zh)."""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+")  # the API's own pattern (schemas.Email)
EMAIL_MAX = 254
LANGS = ("zh", "en")


def contact_of(form) -> tuple[dict[str, str], dict[str, str]]:
    """(values, problems): the form's `email` and `lang`, and per bad field the message id saying why."""
    email = str(form.get("email") or "").strip()
    lang = str(form.get("lang") or "").strip()
    problems: dict[str, str] = {}
    if email and (len(email) > EMAIL_MAX or not EMAIL.fullmatch(email)):
        problems["email"] = "admin.email_invalid"
    if lang and lang not in LANGS:
        problems["lang"] = "admin.lang_invalid"
    return {"email": email, "lang": lang}, problems


def contact_changes(values: dict[str, str], current: dict[str, Any]) -> dict[str, str]:
    """The PATCH part: the address when it changed ("" removes it), the language when it changed
    (an unset language reads as zh, the notices' default)."""
    out: dict[str, str] = {}
    if values["email"] != (current.get("email") or ""):
        out["email"] = values["email"]
    if values["lang"] and values["lang"] != (current.get("lang") or "zh"):
        out["lang"] = values["lang"]
    return out

"""Languages of the console: message catalogues (gettext .po, read with Babel) and Jinja2 environments.

zh-CN is the default; English is chosen with `?lang=en` (remembered in the `huiliu_lang` cookie).
Templates hold message ids only (`{{ _("nav.overview") }}`, `{{ _("x.y", n=3) }}` with newstyle
gettext); every id must be in both catalogues (tests/test_console.py compares them).
Dates are shown in the `console_timezone` setting's zone (Asia/Shanghai unless configured).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.messages.pofile import read_po
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
TEMPLATES = HERE / "templates"
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}  # what the console offers -> catalogue directory
DEFAULT = "zh-CN"
COOKIE = "huiliu_lang"


class Catalogue:
    """gettext/ngettext over one .po file (what Jinja2's i18n extension installs)."""

    def __init__(self, path: Path):
        with path.open("rb") as f:
            catalog = read_po(f)
        self.messages: dict[str, str] = {}
        for message in catalog:
            if message.id and not isinstance(message.id, tuple):
                self.messages[message.id] = message.string or message.id

    def gettext(self, key: str) -> str:
        return self.messages.get(key, key)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / LANGUAGES[lang] / "LC_MESSAGES" / "console.po"


@cache
def catalogue(lang: str) -> Catalogue:
    return Catalogue(catalogue_path(lang))


def localtime(value, zone: str = "Asia/Shanghai") -> str:
    """An ISO text or epoch seconds as 'YYYY-MM-DD HH:MM:SS' in `zone`; '' for nothing."""
    if value in (None, ""):
        return ""
    if isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # the API stores UTC
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


@cache
def environment(lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(catalogue(lang), newstyle=True)  # type: ignore[attr-defined]
    env.filters["localtime"] = localtime
    messages = catalogue(lang).messages
    # A value the API reports (a state, a type): its catalogue text when there is one, else as sent.
    env.globals["label"] = lambda prefix, value: messages.get(f"{prefix}.{value}", "" if value is None else str(value))
    return env


def language_of(request) -> str:
    """?lang= first, then the cookie, then zh-CN."""
    for given in (request.query_params.get("lang"), request.cookies.get(COOKIE)):
        if given in LANGUAGES:
            return given
    return DEFAULT

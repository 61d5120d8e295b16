"""Secrets in connector configs and pipeline documents: masked in every answer and log line,
encrypted at rest. The one place that decides what a secret is and how it is masked.

A secret is the value of a key that looks like a credential (password, secret, token...) or the
password part of a URL. Connector configs are stored encrypted whole (`Vault.encrypt`); pipeline
documents keep their shape and only their secrets are sealed (`seal`/`unseal`, each value as
`enc:<Fernet token>`). The key lives in `<state_dir>/connector_secrets.key`, created 0600 on first
use, so a copied control database alone reveals no password.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

MASK = "****"
SEALED = "enc:"  # prefix of a secret encrypted at rest
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential|api[_.]?key|private[_.]?key)", re.I)
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@.*)$", re.S)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _walk(value: Any, fn: Callable[[Any], Any], key: str = "") -> Any:
    """A copy with `fn` applied to every secret: values of secret-looking keys, URL passwords."""
    if isinstance(value, dict):
        return {k: _walk(v, fn, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, fn, key) for v in value]
    if value is None or value == "":
        return value
    if is_secret_key(key):
        return fn(value)
    if isinstance(value, str):
        m = _URL_PASSWORD.match(value)
        if m and m.group("pw"):
            return m.group("head") + fn(m.group("pw")) + m.group("tail")
    return value


def mask(value: Any, key: str = "") -> Any:
    """A copy with every secret replaced by ****."""
    return _walk(value, lambda _: MASK, key)


def secret_values(config: Any) -> list[str]:
    """The plain secrets in a config, to scrub them from error messages and traces."""
    found: list[Any] = []
    _walk(config, lambda v: found.append(v) or MASK)
    return sorted({v for v in found if isinstance(v, str)}, key=len, reverse=True)


def scrub(text: str | None, config: dict[str, Any]) -> str | None:
    """Replace every secret of `config` in `text` (error messages can quote a URL)."""
    if not text:
        return text
    for value in secret_values(config):
        if len(value) >= 2:
            text = text.replace(value, MASK)
    # URLs the driver rebuilt itself (e.g. with a different scheme) are masked too
    return re.sub(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@", rf"\1{MASK}@", text)


class EndpointChanged(ValueError):
    """A masked secret was sent back for an endpoint other than the one it authenticates to."""

    def __init__(self, field: str):
        super().__init__(f"{field}: send the password again: the endpoint changed")
        self.field = field


# Fields naming where a secret is sent: a masked secret is kept only while these are unchanged.
_ENDPOINT_KEY = re.compile(
    r"(^|[_.])(host|hostname|server|address|port|user|username|login|scheme|protocol|url|uri|dsn|endpoint|"
    r"kind|ssl|starttls|tls)$",
    re.I,
)


def _endpoint_of_url(value: Any) -> Any:
    """(scheme, host, port, user) of a URL-like string; other values as they are."""
    if not isinstance(value, str) or "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port, parts.username)
    except ValueError:
        return value


def _endpoint(scope: dict) -> dict:
    return {str(k): _endpoint_of_url(v) for k, v in scope.items() if _ENDPOINT_KEY.search(str(k))}


def unmask(new: Any, old: Any, key: str = "", *, path: str = "", _scopes: tuple = ()) -> Any:
    """`new` with every masked form of a stored secret (a client's GET -> PUT) taken from `old`.

    The endpoint rule: a masked secret is kept only when what it authenticates to is unchanged —
    the scheme, host, port and user of a URL carrying it, and the endpoint fields (host, port,
    user, url, kind, ...) of the object holding it and of the objects around it. Otherwise
    EndpointChanged names the field: the caller must send the secret again."""
    if isinstance(new, dict) and isinstance(old, dict):
        scopes = (*_scopes, (old, new))
        return {
            k: unmask(v, old[k], str(k), path=f"{path}.{k}" if path else str(k), _scopes=scopes) if k in old else v
            for k, v in new.items()
        }
    if isinstance(new, list) and isinstance(old, list):
        return [
            unmask(v, old[i], key, path=f"{path}[{i}]", _scopes=_scopes) if i < len(old) else v
            for i, v in enumerate(new)
        ]
    field = path or key or "value"
    if isinstance(new, str) and isinstance(old, str) and not is_secret_key(key):
        m_new, m_old = _URL_PASSWORD.match(new), _URL_PASSWORD.match(old)
        if m_new and m_new.group("pw") == MASK and m_old and m_old.group("pw") and m_old.group("pw") != MASK:
            if _endpoint_of_url(new) != _endpoint_of_url(old):
                raise EndpointChanged(field)
            _check_scopes(_scopes, field)
            return m_new.group("head") + m_old.group("pw") + m_new.group("tail")
        return new
    if new != old and new == mask(old, key):
        _check_scopes(_scopes, field)
        return old
    return new


def _check_scopes(scopes: tuple, field: str) -> None:
    for old_scope, new_scope in scopes:
        if _endpoint(old_scope) != _endpoint(new_scope):
            raise EndpointChanged(field)


def host_of(url: str) -> str:
    """host:port of a URL, for messages that must not quote the URL itself."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "?"


class Vault:
    """Fernet encryption with a key file in the state dir."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / "connector_secrets.key"
        self._fernet: Fernet | None = None

    def _key(self) -> bytes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of several processes starting at once, exactly one writes the key
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the creator may not have written it yet
                key = self.path.read_bytes().strip()
                if key:
                    return key
                time.sleep(0.1)
            raise RuntimeError(f"secret key file {self.path} is empty")
        key = Fernet.generate_key()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key

    @property
    def fernet(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def encrypt(self, config: Any) -> str:
        return self.fernet.encrypt(json.dumps(config, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> Any:
        return json.loads(self.fernet.decrypt(token.encode()))

    def seal(self, document: Any) -> Any:
        """A copy with every secret encrypted (`enc:<token>`), for documents stored as they are."""
        return _walk(document, lambda v: SEALED + self.encrypt(v))

    def unseal(self, document: Any) -> Any:
        """Inverse of seal; a value stored before sealing existed (plain text) is returned as is."""
        return _walk(document, self._open)

    def _open(self, value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith(SEALED)):
            return value
        try:
            return self.decrypt(value[len(SEALED) :])
        except InvalidToken:  # a plain secret that happens to start with "enc:"
            return value

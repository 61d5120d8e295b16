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


def unmask(new: Any, old: Any, key: str = "") -> Any:
    """`new` with every masked form of a stored secret (a client's GET -> PUT) taken from `old`."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {k: unmask(v, old[k], str(k)) if k in old else v for k, v in new.items()}
    if isinstance(new, list) and isinstance(old, list):
        return [unmask(v, old[i], key) if i < len(old) else v for i, v in enumerate(new)]
    return old if new != old and new == mask(old, key) else new


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

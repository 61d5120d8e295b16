"""Secrets in connector configs: masked in every answer and log line, encrypted at rest.

A secret is the value of a key that looks like a credential (password, secret, token...) or the
password part of a URL. Configs are stored encrypted with Fernet; the key lives in
`<state_dir>/connector_secrets.key`, created 0600 on first use, so a copied control database
alone reveals no password.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

MASK = "****"
_SECRET_KEY = re.compile(r"(password|passwd|secret|token|credential|api[_.]?key|private[_.]?key)", re.I)
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<tail>@.*)$", re.S)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _mask_value(key: str, value: Any) -> Any:
    if value is None or value == "":
        return value
    if is_secret_key(key) and not isinstance(value, (dict, list)):
        return MASK
    if isinstance(value, str):
        m = _URL_PASSWORD.match(value)
        if m and m.group("pw"):
            return m.group("head") + MASK + m.group("tail")
    if isinstance(value, dict):
        return mask(value)
    if isinstance(value, list):
        return [_mask_value(key, v) for v in value]
    return value


def mask(config: dict[str, Any]) -> dict[str, Any]:
    """A copy with every secret replaced by ****."""
    return {k: _mask_value(k, v) for k, v in config.items()}


def secret_values(config: dict[str, Any]) -> list[str]:
    """The plain secrets in a config, to scrub them from error messages and traces."""
    found: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            found += secret_values(value)
        elif isinstance(value, str) and value:
            if is_secret_key(key):
                found.append(value)
            m = _URL_PASSWORD.match(value)
            if m and m.group("pw"):
                found.append(m.group("pw"))
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str | None, config: dict[str, Any]) -> str | None:
    """Replace every secret of `config` in `text` (error messages can quote a URL)."""
    if not text:
        return text
    for value in secret_values(config):
        if len(value) >= 2:
            text = text.replace(value, MASK)
    # URLs the driver rebuilt itself (e.g. with a different scheme) are masked too
    return re.sub(r"([A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@\s]+@", rf"\1{MASK}@", text)


def unmask(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Keep the stored secret where a client sends back the masked form it was given (GET -> PUT)."""
    merged = {}
    for key, value in new.items():
        prev = old.get(key)
        if isinstance(value, dict) and isinstance(prev, dict):
            merged[key] = unmask(value, prev)
        elif prev is not None and value != prev and value == _mask_value(key, prev):
            merged[key] = prev
        else:
            merged[key] = value
    return merged


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

    def encrypt(self, config: dict[str, Any]) -> str:
        return self.fernet.encrypt(json.dumps(config, sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        return json.loads(self.fernet.decrypt(token.encode()))

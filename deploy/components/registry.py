"""Schema registry (Confluent REST API), served by Huiliu's own `schemas.registry` module."""

from __future__ import annotations

import sys

from deploy.components.base import Component, host_port
from deploy.settings import Settings


class SchemaRegistry(Component):
    name = "registry"

    def __init__(self, settings: Settings, command: list[str] | None = None):
        """`command` replaces the default `python -m schemas.registry ...` (tests, alternatives);
        it may use the placeholders {host}, {port} and {data_dir}."""
        super().__init__(settings)
        self._command = command

    @property
    def url(self) -> str:
        return self.settings.schema_registry_url.rstrip("/")

    @property
    def address(self) -> str:
        return self.url

    def command(self) -> list[str]:
        host, port = host_port(self.url)
        template = self._command or [
            sys.executable,
            "-m",
            "schemas.registry",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--data-dir",
            "{data_dir}",
        ]
        return [part.format(host=host, port=port, data_dir=self.data_dir) for part in template]

    def probe(self, timeout: float = 2.0) -> str | None:
        import httpx

        with httpx.Client(timeout=timeout, trust_env=False) as client:
            resp = client.get(f"{self.url}/subjects")
            if resp.status_code != 200:
                raise ConnectionError(f"GET /subjects answered {resp.status_code}")
            return self._version(client) or resp.headers.get("server")

    def _version(self, client) -> str | None:
        """Confluent's /v1/metadata/version, else the OpenAPI title and version (our registry)."""
        try:
            meta = client.get(f"{self.url}/v1/metadata/version")
            if meta.status_code == 200 and meta.json().get("version"):
                return str(meta.json()["version"])
            api = client.get(f"{self.url}/openapi.json")
            if api.status_code == 200:
                info = api.json().get("info", {})
                if info.get("version"):
                    return f"{info.get('title', '')} {info['version']}".strip()
        except Exception:  # noqa: BLE001 - the version is best effort
            pass
        return None

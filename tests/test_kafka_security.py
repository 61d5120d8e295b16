"""Kafka TLS and SASL for every client (issue 19): one place builds each client family's form of the
settings (deploy/kafka_security.py), no module opens a librdkafka client without it, and a process
configured for TLS produces, consumes and administers topics through a TLS listener while a
plaintext client is refused there.

The TLS listener is a test double (tests/doubles/tls_proxy.py says why: tansu 0.6.0 here cannot
serve TLS itself); the broker behind it is a real tansu.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from deploy.kafka_security import (
    KafkaSecurityError,
    client_config,
    faust_credentials,
    java_properties,
    librdkafka_security,
)
from deploy.settings import Settings
from tests.conftest import PORT_BASE

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "connectors", "deploy", "schemas", "sinks", "streams", "quality_stream")
# The stack's own broker check talks to the plaintext tansu the stack itself started.
OWN_BROKER = {"deploy/components/broker.py", "deploy/kafka_security.py"}


def settings(**values) -> Settings:
    return Settings(state_dir=Path("/tmp/unused"), **values)


def test_plaintext_adds_nothing_and_tls_names_the_ca_and_client_certificate():
    assert client_config("b:9092", settings()) == {"bootstrap.servers": "b:9092"}
    tls = settings(
        kafka_security_protocol="SSL",
        kafka_ssl_ca_file="/etc/ca.pem",
        kafka_ssl_cert_file="/etc/me.pem",
        kafka_ssl_key_file="/etc/me.key",
    )
    assert librdkafka_security(tls) == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/ca.pem",
        "ssl.certificate.location": "/etc/me.pem",
        "ssl.key.location": "/etc/me.key",
    }
    assert java_properties(tls)["ssl.truststore.location"] == "/etc/ca.pem"


def test_sasl_needs_its_credentials_and_passes_them_to_each_client_family():
    with pytest.raises(KafkaSecurityError, match="kafka_sasl_username and kafka_sasl_password"):
        librdkafka_security(settings(kafka_security_protocol="SASL_SSL"))
    with pytest.raises(KafkaSecurityError, match="go together"):
        librdkafka_security(settings(kafka_security_protocol="SSL", kafka_ssl_cert_file="/etc/me.pem"))
    sasl = settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="huiliu",
        kafka_sasl_password=SecretStr('pa"ss'),
    )
    assert librdkafka_security(sasl) == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "huiliu",
        "sasl.password": 'pa"ss',
    }
    jaas = java_properties(sasl)["sasl.jaas.config"]
    assert "ScramLoginModule required" in jaas and 'password="pa\\"ss"' in jaas
    credentials = faust_credentials(sasl)
    assert type(credentials).__name__ == "SASLCredentials" and credentials.username == "huiliu"
    assert faust_credentials(settings()) is None
    assert "pa\"ss" not in repr(sasl) and "pa\"ss" not in str(sasl.model_dump())  # a SecretStr in the settings


def test_no_module_opens_a_kafka_client_without_the_security_settings():
    """Every librdkafka config starts from client_config: a literal "bootstrap.servers" key in a dict
    elsewhere would be a client that ignores TLS and SASL."""
    found = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            if rel in OWN_BROKER:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value == "bootstrap.servers" for k in node.keys
                ):
                    found.append(f"{rel}:{node.lineno}")
    assert not found, f"Kafka clients built without deploy.kafka_security.client_config: {found}"


CLIENT = """
import sys, time
from deploy.kafka import AckedProducer, batch_consumer, ensure_topics
ensure_topics(sys.argv[1], ["tls-check"], partitions=1)
producer = AckedProducer(sys.argv[1], idempotent=False)
for i in range(20):
    producer.produce("tls-check", f"m{i}".encode(), f"k{i}".encode())
producer.flush_acked(30)
consumer = batch_consumer(sys.argv[1], "tls-check-group")
consumer.subscribe(["tls-check"])
got, until = [], time.time() + 60
while len(got) < 20 and time.time() < until:
    got += [m.value().decode() for m in consumer.consume(100, 1.0) if not m.error()]
consumer.close()
print("GOT", len(got), sorted(got)[:3])
"""


@pytest.mark.integration
def test_a_process_configured_for_tls_round_trips_through_a_tls_listener(tmp_path):
    from deploy.components.broker import tansu_binary
    from tests.doubles.tls_proxy import TlsProxy

    broker_port, tls_port = PORT_BASE + 611, PORT_BASE + 612
    cert, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    advertised = f"tcp://127.0.0.1:{tls_port}"  # metadata sends the clients back through TLS
    env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL")}
    broker = subprocess.Popen(
        [str(tansu_binary()), "broker", "--cluster-id", "tls", "--listener-url", f"tcp://127.0.0.1:{broker_port}"]
        + ["--advertised-listener-url", advertised, "--storage-engine", "memory://tansu/"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        with TlsProxy(tls_port, broker_port, str(cert), str(key)):
            bootstrap = f"127.0.0.1:{tls_port}"
            secured = {
                **os.environ,
                "HUILIU_KAFKA_SECURITY_PROTOCOL": "SSL",
                "HUILIU_KAFKA_SSL_CA_FILE": str(cert),
                "PYTHONPATH": str(REPO),
            }
            done = subprocess.run(
                [sys.executable, "-c", CLIENT, bootstrap], env=secured, capture_output=True, text=True, timeout=150
            )
            assert done.returncode == 0, done.stderr[-3000:]
            assert "GOT 20 ['m0', 'm1', 'm10']" in done.stdout, done.stdout + done.stderr[-2000:]

            plain = {**os.environ, "HUILIU_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "PYTHONPATH": str(REPO)}
            refused = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import sys; from deploy.kafka import ensure_topics; ensure_topics(sys.argv[1], ['plain-check'])",
                    bootstrap,
                ],
                env=plain,
                capture_output=True,
                text=True,
                timeout=60,
            )
            # a plaintext client gets no answer from a TLS listener
            assert refused.returncode != 0 and "KafkaException" in refused.stderr, refused.stderr[-2000:]
    finally:
        broker.kill()
        broker.wait(10)

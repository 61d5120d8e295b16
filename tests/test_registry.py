"""End-to-end tests of schemas.registry through confluent-kafka's own clients.

The registry runs as a real subprocess (`python -m schemas.registry`) so the
wire format, startup and persistence are exercised exactly as in deployment.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

pytestmark = pytest.mark.integration  # starts registry servers

REPO = Path(__file__).resolve().parents[1]
PORTS = range(28081, 28090)
VND = "application/vnd.schemaregistry.v1+json"


def _record(*fields: dict, name: str = "User") -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "huiliu.test", "fields": list(fields)})


A = {"name": "a", "type": "int"}
B_NO_DEFAULT = {"name": "b", "type": "string"}
B_DEFAULT = {"name": "b", "type": "string", "default": "x"}
V1 = _record(A)


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # SO_REUSEADDR like uvicorn, so TIME_WAIT leftovers of earlier runs don't count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RegistryProcess:
    """A registry subprocess bound to a free port; restartable on the same data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> None:
        # Another run may grab a port between our probe and uvicorn's bind, so
        # a process that dies early just moves us on to the next port.
        for port in PORTS:
            if _port_is_free(port) and self._start_on(port):
                return
        raise RuntimeError("could not start the registry on any port in 28081-28089")

    def _start_on(self, port: int) -> bool:
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(self.data_dir / f"registry-{port}-{time.time_ns()}.log", "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "schemas.registry",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(self.data_dir),
            ],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                return False
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"registry on port {port} did not answer within 30s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    proc = RegistryProcess(tmp_path_factory.mktemp("registry"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def new_client(registry):
    """Factory of fresh clients (empty caches), all closed after the test."""
    made: list[SchemaRegistryClient] = []

    def make() -> SchemaRegistryClient:
        made.append(SchemaRegistryClient({"url": registry.url}))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def client(new_client) -> SchemaRegistryClient:
    # A fresh client per test so its caches never hide server behaviour.
    return new_client()


@pytest.fixture
def subject() -> str:
    return f"t-{uuid.uuid4().hex[:10]}-value"


def _error(call) -> SchemaRegistryError:
    with pytest.raises(SchemaRegistryError) as info:
        call()
    return info.value


def _avro(text: str) -> Schema:
    return Schema(text, "AVRO")


# ---- basics -------------------------------------------------------------
def test_root_types_and_content_type(registry):
    r = httpx.get(registry.url + "/")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["content-type"].startswith(VND)
    assert httpx.get(registry.url + "/schemas/types").json() == ["AVRO"]


def test_register_and_fetch(client, subject):
    schema_id = client.register_schema(subject, _avro(V1))
    assert isinstance(schema_id, int) and schema_id > 0
    fetched = client.get_schema(schema_id)
    assert json.loads(fetched.schema_str) == json.loads(V1)
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version, latest.subject) == (schema_id, 1, subject)
    assert client.get_version(subject, 1).schema_id == schema_id
    assert client.get_versions(subject) == [1]
    assert subject in client.get_subjects()
    found = client.lookup_schema(subject, _avro(V1))
    assert (found.schema_id, found.version) == (schema_id, 1)


def test_same_schema_same_id_and_version(client, subject, registry, new_client):
    first = client.register_schema(subject, _avro(V1))
    # Whitespace/key-order differences are the same schema (canonical comparison).
    spaced = json.dumps(
        {"fields": [{"type": "int", "name": "a"}], "namespace": "huiliu.test", "name": "User", "type": "record"},
        indent=4,
    )
    again = new_client().register_schema(subject, _avro(spaced))
    assert again == first
    assert client.get_versions(subject) == [1]
    # The same schema under another subject keeps its global id.
    assert client.register_schema(subject + "-other", _avro(V1)) == first
    versions = httpx.get(f"{registry.url}/schemas/ids/{first}/versions").json()
    assert {"subject": subject, "version": 1} in versions
    assert {"subject": subject + "-other", "version": 1} in versions


def test_serialize_deserialize_roundtrip(client, subject, new_client):
    topic = subject[: -len("-value")]
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializer = AvroSerializer(client, V1)
    payload = serializer({"a": 42}, ctx)
    registered = client.get_latest_version(subject)
    assert payload[0] == 0 and int.from_bytes(payload[1:5], "big") == registered.schema_id
    reader = AvroDeserializer(new_client())
    assert reader(payload, ctx) == {"a": 42}
    # A reader on an evolved schema fills the new field's default from old data.
    v2 = _record(A, B_DEFAULT)
    evolved = AvroDeserializer(client, v2)
    assert evolved(payload, ctx) == {"a": 42, "b": "x"}


def test_schema_references(registry, client, subject, new_client):
    addr_subject = subject + "-address"
    address = json.dumps(
        {
            "type": "record",
            "name": "Address",
            "namespace": "huiliu.test",
            "fields": [{"name": "city", "type": "string"}],
        }
    )
    client.register_schema(addr_subject, _avro(address))
    user = _record(A, {"name": "home", "type": "huiliu.test.Address"})
    ref = SchemaReference("huiliu.test.Address", addr_subject, 1)
    user_id = client.register_schema(subject, Schema(user, "AVRO", [ref]))
    assert client.get_latest_version(subject).schema.references[0].subject == addr_subject
    # Without the reference the named type is unknown: invalid schema.
    assert _error(lambda: client.register_schema(subject + "-noref", _avro(user))).error_code == 42201
    assert httpx.get(f"{registry.url}/subjects/{addr_subject}/versions/1/referencedby").json() == [user_id]
    # A referenced version cannot be deleted (Confluent's 42206).
    assert _error(lambda: client.delete_subject(addr_subject)).error_code == 42206
    topic = subject[: -len("-value")]
    ctx = SerializationContext(topic, MessageField.VALUE)
    serializer = AvroSerializer(
        client, Schema(user, "AVRO", [ref]), conf={"auto.register.schemas": False, "use.latest.version": True}
    )
    payload = serializer({"a": 1, "home": {"city": "Hangzhou"}}, ctx)
    assert int.from_bytes(payload[1:5], "big") == user_id
    assert AvroDeserializer(new_client())(payload, ctx) == {"a": 1, "home": {"city": "Hangzhou"}}


# ---- compatibility -------------------------------------------------------
def test_backward_refuses_incompatible_and_accepts_default(client, subject):
    client.set_compatibility(subject, "BACKWARD")
    first = client.register_schema(subject, _avro(V1))
    err = _error(lambda: client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT))))
    assert err.http_status_code == 409 and err.error_code == 409
    assert subject in err.error_message and "version 1" in err.error_message
    assert client.test_compatibility(subject, _avro(_record(A, B_NO_DEFAULT))) is False
    assert client.test_compatibility(subject, _avro(_record(A, B_DEFAULT))) is True
    second = client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    assert second != first
    assert client.get_versions(subject) == [1, 2]


def test_verbose_compatibility_messages(registry, client, subject):
    client.register_schema(subject, _avro(V1))
    body = {"schema": _record(A, B_NO_DEFAULT)}
    url = f"{registry.url}/compatibility/subjects/{subject}/versions/latest?verbose=true"
    r = httpx.post(url, json=body, headers={"Content-Type": VND})
    assert r.status_code == 200
    assert r.json()["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m for m in r.json()["messages"])


def test_forward(client, subject):
    client.set_compatibility(subject, "FORWARD")
    client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT)))
    # Dropping a field the old reader needs (no default there) breaks FORWARD...
    err = _error(lambda: client.register_schema(subject, _avro(V1)))
    assert err.error_code == 409
    # ...while adding a field without default (refused by BACKWARD) is fine.
    client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT, {"name": "c", "type": "long"})))
    assert client.get_versions(subject) == [1, 2]


def test_full(client, subject):
    client.set_compatibility(subject, "FULL")
    client.register_schema(subject, _avro(V1))
    assert _error(lambda: client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT)))).error_code == 409
    client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    # Removing a field without default breaks the forward half of FULL.
    assert _error(lambda: client.register_schema(subject, _avro(_record(B_DEFAULT)))).error_code == 409
    assert client.get_versions(subject) == [1, 2]


def test_none_accepts_anything(client, subject):
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, _avro(V1))
    client.register_schema(subject, _avro(_record({"name": "a", "type": "string"})))
    client.register_schema(subject, _avro(_record(B_NO_DEFAULT)))
    assert client.get_versions(subject) == [1, 2, 3]


@pytest.mark.parametrize("level,accepted", [("BACKWARD", True), ("BACKWARD_TRANSITIVE", False)])
def test_transitive_checks_all_versions(client, subject, level, accepted):
    client.set_compatibility(subject, level)
    client.register_schema(subject, _avro(V1))
    client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    # v3 reads v2 data (b present) but not v1 data (b missing, no default).
    v3 = _avro(_record(A, B_NO_DEFAULT))
    if accepted:
        client.register_schema(subject, v3)
        assert client.get_versions(subject) == [1, 2, 3]
    else:
        err = _error(lambda: client.register_schema(subject, v3))
        assert err.error_code == 409 and "version 1" in err.error_message
        assert client.get_versions(subject) == [1, 2]


def test_forward_transitive(client, subject):
    client.set_compatibility(subject, "FORWARD_TRANSITIVE")
    client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT)))
    client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    # Readable by v2 (b defaults) but not by v1 (b required): refused transitively.
    assert _error(lambda: client.register_schema(subject, _avro(V1))).error_code == 409
    client.set_compatibility(subject, "FORWARD")
    assert client.register_schema(subject, _avro(V1)) > 0


# ---- config -----------------------------------------------------------------
def test_subject_config_overrides_global(registry, client, subject):
    other = subject + "-2"
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(level="NONE")
    try:
        client.set_compatibility(subject, "BACKWARD")
        assert client.get_compatibility(subject) == "BACKWARD"
        assert client.get_compatibility() == "NONE"
        for s in (subject, other):
            client.register_schema(s, _avro(V1))
        assert _error(lambda: client.register_schema(subject, _avro(_record(A, B_NO_DEFAULT)))).error_code == 409
        client.register_schema(other, _avro(_record(A, B_NO_DEFAULT)))  # global NONE applies
        assert _error(lambda: client.get_compatibility(other)).error_code == 40408
        r = httpx.get(f"{registry.url}/config/{other}?defaultToGlobal=true")
        assert r.json() == {"compatibilityLevel": "NONE"}
    finally:
        client.set_compatibility(level="BACKWARD")
    assert httpx.get(registry.url + "/config").json() == {"compatibilityLevel": "BACKWARD"}


def test_invalid_compatibility_level(client, subject):
    err = _error(lambda: client.set_compatibility(subject, "SIDEWAYS"))
    assert (err.http_status_code, err.error_code) == (422, 42203)


# ---- deletes and errors ---------------------------------------------------------
def test_delete_subject_soft_then_permanent(client, subject, new_client):
    schema_id = client.register_schema(subject, _avro(V1))
    client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    assert _error(lambda: client.delete_subject(subject, permanent=True)).error_code == 40405
    assert client.delete_subject(subject) == [1, 2]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    fresh = new_client()
    assert _error(lambda: fresh.get_latest_version(subject)).error_code == 40401
    assert client.delete_subject(subject, permanent=True) == [1, 2]
    assert subject not in client.get_subjects(deleted=True)
    # The schema id survives; re-registering restarts versions at 1.
    assert client.get_schema(schema_id) is not None
    assert client.register_schema(subject, _avro(V1)) == schema_id
    assert client.get_versions(subject) == [1]


def test_delete_version(client, subject):
    client.register_schema(subject, _avro(V1))
    client.register_schema(subject, _avro(_record(A, B_DEFAULT)))
    assert client.delete_version(subject, 2) == 2
    assert client.get_versions(subject) == [1]
    assert _error(lambda: client.get_version(subject, 2)).error_code == 40402
    assert client.get_latest_version(subject).version == 1


def test_unknown_subject_and_version_errors(client, subject):
    err = _error(lambda: client.get_latest_version("no-such-subject-" + subject))
    assert (err.http_status_code, err.error_code) == (404, 40401)
    client.register_schema(subject, _avro(V1))
    err = _error(lambda: client.get_version(subject, 7))
    assert (err.http_status_code, err.error_code) == (404, 40402)
    err = _error(lambda: client.get_version(subject, 0))
    assert (err.http_status_code, err.error_code) == (422, 42202)
    err = _error(lambda: client.get_schema(987654))
    assert (err.http_status_code, err.error_code) == (404, 40403)
    err = _error(lambda: client.lookup_schema(subject, _avro(_record(B_DEFAULT))))
    assert err.error_code == 40403


def test_invalid_schema(client, subject):
    bad = '{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}'
    err = _error(lambda: client.register_schema(subject, _avro(bad)))
    assert (err.http_status_code, err.error_code) == (422, 42201)
    assert "nope" in err.error_message
    err = _error(lambda: client.register_schema(subject, _avro("{not json")))
    assert err.error_code == 42201
    err = _error(lambda: client.register_schema(subject, Schema('{"type": "object"}', "JSON")))
    assert err.error_code == 42201 and "only AVRO" in err.error_message
    assert subject not in client.get_subjects()


def test_raw_schema_endpoint_and_plain_json(registry, client, subject):
    schema_id = client.register_schema(subject, _avro(V1))
    # Plain application/json is accepted as well as the vnd type.
    r = httpx.post(f"{registry.url}/subjects/{subject}/versions", json={"schema": V1, "references": []})
    assert r.status_code == 200 and r.json() == {"id": schema_id}
    r = httpx.post(f"{registry.url}/subjects/{subject}", json={"schema": V1})
    assert r.json()["version"] == 1 and r.json()["id"] == schema_id
    r = httpx.get(f"{registry.url}/subjects/{subject}/versions/latest/schema")
    assert r.status_code == 200 and json.loads(r.text) == json.loads(V1)


# ---- persistence -----------------------------------------------------------------
def test_restart_keeps_schemas_and_ids(tmp_path):
    proc = RegistryProcess(tmp_path)
    proc.start()
    try:
        with SchemaRegistryClient({"url": proc.url}) as c:
            c.set_compatibility("persist-value", "FULL")
            id1 = c.register_schema("persist-value", _avro(V1))
            id2 = c.register_schema("persist-value", _avro(_record(A, B_DEFAULT)))
    finally:
        proc.stop()
    assert (tmp_path / "registry.db").exists()
    proc.start()  # a fresh process on the same data dir
    try:
        with SchemaRegistryClient({"url": proc.url}) as c:
            assert c.get_versions("persist-value") == [1, 2]
            assert c.get_latest_version("persist-value").schema_id == id2
            assert json.loads(c.get_schema(id1).schema_str) == json.loads(V1)
            assert c.get_compatibility("persist-value") == "FULL"
            assert c.register_schema("persist-value", _avro(V1)) == id1  # no new version
            assert c.get_versions("persist-value") == [1, 2]
            # New registrations continue the id sequence instead of reusing ids.
            v3 = _record(A, B_DEFAULT, {"name": "c", "type": "int", "default": 0})
            assert c.register_schema("persist-value", _avro(v3)) > id2
            # Compatibility rules still apply after restart (FULL refuses this).
            assert _error(lambda: c.register_schema("persist-value", _avro(_record(B_DEFAULT)))).error_code == 409
    finally:
        proc.stop()

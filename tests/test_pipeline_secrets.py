"""Secrets of pipeline documents are encrypted at rest (issue 7), over HTTP against a real API.

A document with a database password is saved through the API: the control database row holds no
password (it is sealed with the connector Vault), GET masks it, and deploying hands the real
password to the source connector. A version stored in plain text before sealing existed still
loads, and saving over it seals it.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

from sqlalchemy.engine import make_url

from connectors.store import ConnectorStore
from tests.api_process import api_client, own_state_settings  # noqa: F401 - fixtures: api, stack_settings
from tests.connect_cluster import make_table

RUN = uuid.uuid4().hex[:6]
SECRET = f"Pw-{RUN}-secret"


def _with_password(pg_url: str) -> str:
    # The test PostgreSQL trusts local connections: the password travels but is not checked.
    return make_url(pg_url).set(password=SECRET).render_as_string(hide_password=False)


def _document(name: str, pg_url: str, table: str) -> dict:
    return {
        "name": name,
        "source": {
            "kind": "relational.timestamp",
            "config": {
                "url": _with_password(pg_url),
                "system": f"sec{RUN}",
                "db_schema": "public",
                "table": table,
                "timestamp_column": "updated_at",
            },
        },
        "sink": {"kind": "clickhouse", "config": {"table": f"sec_{RUN}"}},
    }


def _stored(settings, name: str) -> list[str]:
    with sqlite3.connect(settings.state_dir / "control.db") as db:
        return [
            r[0] for r in db.execute("SELECT document FROM pipeline_versions WHERE name = ? ORDER BY version", (name,))
        ]


def _deployed_source_url(client, settings, name: str) -> str:
    r = client.post(f"/pipelines/{name}/deploy")
    assert r.status_code == 200, r.text
    try:
        return ConnectorStore.for_settings(settings).get(f"{name}-source").config["url"]
    finally:
        client.post(f"/pipelines/{name}/undeploy")


def test_password_is_sealed_at_rest_masked_in_answers_and_real_when_deployed(api, stack_settings, pg_url):
    name, table = f"sec-{RUN}", f"sec_src_{RUN}"
    make_table(pg_url, table)
    r = api.post("/pipelines", json=_document(name, pg_url, table))
    assert r.status_code == 201, r.text
    assert SECRET not in r.text and ":****@" in r.json()["document"]["source"]["config"]["url"]

    [row] = _stored(stack_settings, name)
    assert SECRET not in row and ":enc:" in json.loads(row)["source"]["config"]["url"]
    assert SECRET.encode() not in (stack_settings.state_dir / "control.db").read_bytes()

    got = api.get(f"/pipelines/{name}")
    assert SECRET not in got.text and ":****@" in got.json()["document"]["source"]["config"]["url"]
    # a console saving the masked document back keeps the real password
    doc = {**got.json()["document"], "description": "edited"}
    assert api.put(f"/pipelines/{name}", headers={"If-Match": '"1"'}, json=doc).status_code == 200
    assert all(SECRET not in stored for stored in _stored(stack_settings, name))

    assert SECRET in _deployed_source_url(api, stack_settings, name)


def test_a_version_stored_in_plain_text_still_loads_and_is_sealed_on_save(api, stack_settings, pg_url):
    name, table = f"sec-old-{RUN}", f"sec_old_{RUN}"
    make_table(pg_url, table)
    assert api.post("/pipelines", json=_document(name, pg_url, table)).status_code == 201
    plain = json.dumps({**_document(name, pg_url, table), "description": "stored before sealing"})
    with sqlite3.connect(stack_settings.state_dir / "control.db") as db:  # as an older release wrote it
        db.execute("UPDATE pipeline_versions SET document = ? WHERE name = ?", (plain, name))
    assert SECRET in _stored(stack_settings, name)[0]

    got = api.get(f"/pipelines/{name}")
    assert got.status_code == 200 and SECRET not in got.text
    assert got.json()["document"]["description"] == "stored before sealing"
    assert SECRET in _deployed_source_url(api, stack_settings, name)

    assert api.put(f"/pipelines/{name}", headers={"If-Match": '"1"'}, json=got.json()["document"]).status_code == 200
    assert SECRET not in _stored(stack_settings, name)[1]
    assert SECRET in _deployed_source_url(api, stack_settings, name)

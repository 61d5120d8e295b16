"""OpenLineage emission (issue 15): a streaming job's events (START, RUNNING snapshots, COMPLETE, or
FAIL) and a batch job's (START, COMPLETE/FAIL) reach a local HTTP endpoint through openlineage-python's
HTTP transport, and the file transport; every event validates against the OpenLineage 2-0-2 JSON
schema and the schemas of its facets (vendored in tests/openlineage_spec); facets carry the schema,
column lineage with transformation types and masking, one assertion per quality rule with the
runner's counts, and the data source; dataset names follow the OpenLineage naming spec. Off unless
`openlineage_url` is set."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from deploy.control import StageCounters, engine_for
from deploy.openlineage import BadTransport, batch_run, close_clients, streaming_run, transport_config
from deploy.settings import Settings
from schemas.catalog import CatalogStore, DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.lineage import Edge, replace_edges
from schemas.catalog.urns import job_urn

SPEC = Path(__file__).parent / "openlineage_spec"
FACETS = {  # where a facet may appear -> its key -> its schema file
    "run": {"errorMessage": "ErrorMessageRunFacet", "tags": "TagsRunFacet"},
    "job": {"jobType": "JobTypeJobFacet", "ownership": "OwnershipJobFacet", "tags": "TagsJobFacet"},
    "dataset": {
        "schema": "SchemaDatasetFacet",
        "columnLineage": "ColumnLineageDatasetFacet",
        "dataSource": "DatasourceDatasetFacet",
    },
    "input": {
        "dataQualityAssertions": "DataQualityAssertionsDatasetFacet",
        "dataQualityMetrics": "DataQualityMetricsInputDatasetFacet",
    },
    "output": {},
}
PG = "postgres://db.civil.gov:5432"
KAFKA = "kafka://127.0.0.1:9092"
RAW, CLEAN = "huiliu.civil.public.person", "huiliu.civil.public.person.clean"


def _schemas() -> tuple[dict, dict[str, dict], Registry]:
    main = json.loads((SPEC / "OpenLineage.json").read_text())
    facets = {
        where: {k: json.loads((SPEC / "facets" / f"{v}.json").read_text()) for k, v in keys.items()}
        for where, keys in FACETS.items()
    }
    every = [main, *(f for keys in facets.values() for f in keys.values())]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in every])
    return main, facets, registry


MAIN, FACET_SCHEMAS, REGISTRY = _schemas()


def validate(event: dict) -> None:
    """The event against OpenLineage.json, and each facet against its own schema (none unchecked)."""
    Draft202012Validator(MAIN, registry=REGISTRY).validate(event)
    groups = [("run", event["run"].get("facets")), ("job", event["job"].get("facets"))]
    for ds in event.get("inputs") or []:
        groups += [("dataset", ds.get("facets")), ("input", ds.get("inputFacets"))]
    for ds in event.get("outputs") or []:
        groups += [("dataset", ds.get("facets")), ("output", ds.get("outputFacets"))]
    for where, group in groups:
        for key, facet in (group or {}).items():
            schema = FACET_SCHEMAS[where][key]  # KeyError: a facet this test does not know how to check
            assert key in schema["properties"], key
            Draft202012Validator(schema, registry=REGISTRY).validate({key: facet})


class _Receiver(BaseHTTPRequestHandler):
    events: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).events.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    handler = type("Receiver", (_Receiver,), {"events": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler.events
    server.shutdown()
    server.server_close()


def _catalogue(url: str) -> None:
    """A runner's catalogue entries: raw -> clean topic with rename, mask and two rules."""
    store = CatalogStore(engine_for(url))
    fields = [
        FieldInfo("id", "long", 1, key=True),
        FieldInfo("citizen_id", "string", 2),
        FieldInfo("name", "string", 3),
    ]
    clean = [
        FieldInfo("id", "long", 1, key=True),
        FieldInfo("citizen_id", "string", 2),
        FieldInfo("full_name", "string", 3),
    ]
    store.record(
        Harvest(
            SystemInfo("hl:system:kafka://127.0.0.1:9092", "kafka", "kafka"),
            [
                DatasetInfo(f"hl:dataset:{KAFKA}/{RAW}", RAW, "topic", fields),
                DatasetInfo(f"hl:dataset:{KAFKA}/{CLEAN}", CLEAN, "topic", clean),
            ],
        ),
        "",
    )
    store.record(
        Harvest(
            SystemInfo(f"hl:system:{PG}/civil", "civil", "postgres"),
            [DatasetInfo(f"hl:dataset:{PG}/civil.public.person", "public.person", "table", fields)],
        ),
        "",
    )
    store.update_business(None, f"hl:dataset:{KAFKA}/{CLEAN}", _owner("civil-data-office"))
    job, raw, out = job_urn("civil-runner"), f"hl:dataset:{KAFKA}/{RAW}", f"hl:dataset:{KAFKA}/{CLEAN}"
    rules = {"rules": ["r_id", "r_name"]}
    ident = {"type": "DIRECT", "subtype": "IDENTITY", "masking": False}
    masked = {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}
    replace_edges(
        store.engine,
        "",
        "connector:civil-runner",
        [
            Edge(job, raw, out, transformation=rules),
            Edge(job, raw, out, "id", "id", {**ident, **rules}),
            Edge(job, raw, out, "citizen_id", "citizen_id", {**masked, **rules}),
            Edge(job, raw, out, "name", "full_name", {**ident, **rules}),
        ],
    )
    src = job_urn("civil-capture")
    replace_edges(store.engine, "", "connector:civil-capture", [Edge(src, f"hl:dataset:{PG}/civil.public.person", raw)])


def _owner(name: str):
    from schemas.catalog.business import BusinessPatch

    return BusinessPatch.model_validate({"owner": name})


@pytest.fixture
def settings(tmp_path, receiver):
    s = Settings(state_dir=tmp_path, openlineage_url=receiver[0], openlineage_snapshot_s=0.2)
    _catalogue(s.resolved_control_db_url)
    StageCounters(s.resolved_control_db_url, "civil").add(
        "runner", {"read": 10, "valid": 8, "quarantined": 2, "quarantined.r_id": 2}
    )
    return s


RUNNER = SimpleNamespace(
    name="civil-runner",
    plugin="runner.lean",
    kind="processor",
    tenant=None,
    config={
        "pipeline": "civil",
        "topics": [RAW],
        "rules": [{"id": "r_id", "kind": "not_null", "column": "citizen_id"}, {"id": "r_name", "kind": "not_null"}],
    },
)


def test_a_streaming_job_sends_start_running_snapshots_and_complete_that_validate(settings, receiver):
    _, events = receiver
    with streaming_run(settings, RUNNER, 0):
        time.sleep(0.9)
    kinds = [e["eventType"] for _, e in events]
    assert kinds[0] == "START" and kinds[-1] == "COMPLETE" and kinds.count("RUNNING") >= 2, kinds
    assert set(kinds[1:-1]) == {"RUNNING"}  # no terminal event while it runs
    assert {path for path, _ in events} == {"/api/v1/lineage"}
    assert len({e["run"]["runId"] for _, e in events}) == 1
    for _, event in events:
        validate(event)
    event = events[1][1]
    with pytest.raises(ValidationError):  # the check has teeth: a wrong event type, a wrong facet field
        validate({**event, "eventType": "DONE"})
    wrong = json.loads(json.dumps(event))
    wrong["outputs"][0]["facets"]["columnLineage"]["fields"]["id"]["inputFields"][0]["field"] = 7
    with pytest.raises(ValidationError):
        validate(wrong)
    assert event["job"] == {
        "namespace": "huiliu",
        "name": "civil-runner",
        "facets": event["job"]["facets"],
    }
    job_type = event["job"]["facets"]["jobType"]
    assert (job_type["processingType"], job_type["integration"], job_type["jobType"]) == (
        "STREAMING",
        "HUILIU",
        "RUNNER",
    )
    assert event["job"]["facets"]["ownership"]["owners"] == [{"name": "civil-data-office"}]
    [inp], [out] = event["inputs"], event["outputs"]
    assert (inp["namespace"], inp["name"]) == (KAFKA, RAW) and (out["namespace"], out["name"]) == (KAFKA, CLEAN)
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["id", "citizen_id", "full_name"]
    assert inp["facets"]["dataSource"] == {**inp["facets"]["dataSource"], "name": KAFKA, "uri": KAFKA}
    lineage = out["facets"]["columnLineage"]["fields"]
    assert lineage["full_name"]["inputFields"] == [
        {
            "namespace": KAFKA,
            "name": RAW,
            "field": "name",
            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY", "masking": False}],
        }
    ]
    [masked] = lineage["citizen_id"]["inputFields"][0]["transformations"]
    assert masked == {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True}
    assertions = {a["name"]: a for a in inp["inputFacets"]["dataQualityAssertions"]["assertions"]}
    assert assertions["r_id"]["success"] is False and assertions["r_id"]["actual"] == "2"
    assert assertions["r_id"]["column"] == "citizen_id" and assertions["r_id"]["assertion"] == "not_null"
    assert assertions["r_name"]["success"] is True and assertions["r_name"]["params"]["rows_read"] == 10
    assert inp["inputFacets"]["dataQualityMetrics"]["rowCount"] == 10


def test_a_streaming_job_that_fails_ends_with_fail_and_the_error(settings, receiver):
    _, events = receiver
    with pytest.raises(RuntimeError), streaming_run(settings, RUNNER, 0):
        raise RuntimeError("broker gone")
    assert [e["eventType"] for _, e in events] == ["START", "FAIL"]
    validate(events[1][1])
    assert events[1][1]["run"]["facets"]["errorMessage"]["message"] == "RuntimeError: broker gone"


def test_a_batch_run_sends_start_then_complete_or_fail_with_postgres_naming(settings, receiver):
    _, events = receiver
    capture = SimpleNamespace(name="civil-capture", plugin="relational.snapshot", kind="source", tenant=None, config={})
    assert batch_run(settings, capture, lambda ctx: {"rows": 3})(None) == {"rows": 3}

    def broken(ctx):
        raise ValueError("table gone")

    with pytest.raises(ValueError):
        batch_run(settings, capture, broken)(None)
    assert [e["eventType"] for _, e in events] == ["START", "COMPLETE", "START", "FAIL"]
    for _, event in events:
        validate(event)
        assert event["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    [inp] = events[1][1]["inputs"]
    assert (inp["namespace"], inp["name"]) == (PG, "civil.public.person")  # postgres://host:port + db.schema.table
    assert "dataQualityAssertions" not in (inp.get("inputFacets") or {})  # a capture has no rules


def test_the_file_transport_appends_events_and_off_by_default_sends_nothing(settings, tmp_path, receiver):
    path = tmp_path / "ol" / "events.jsonl"
    path.parent.mkdir()
    on = settings.model_copy(update={"openlineage_url": f"file://{path}"})
    batch_run(on, RUNNER, lambda ctx: None)(None)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    validate(lines[0])
    off = settings.model_copy(update={"openlineage_url": ""})
    assert Settings(state_dir=tmp_path).openlineage_url == ""
    fn = lambda ctx: 7  # noqa: E731
    assert batch_run(off, RUNNER, fn) is fn
    with streaming_run(off, RUNNER, 0):
        time.sleep(0.3)
    assert receiver[1] == []


def test_transports_are_chosen_by_the_url_and_a_bad_one_is_refused():
    assert transport_config("http://marquez:5000")["type"] == "http"
    assert transport_config("kafka://broker:9092/lineage") == {
        "type": "kafka",
        "topic": "lineage",
        "config": {"bootstrap.servers": "broker:9092"},
        "flush": True,
    }
    assert transport_config("file:///var/log/ol.jsonl")["log_file_path"] == "/var/log/ol.jsonl"
    for bad in ("ftp://x", "kafka://broker:9092", "marquez:5000"):
        with pytest.raises(BadTransport):
            transport_config(bad)


def test_a_worker_task_of_a_file_source_is_a_streaming_run_with_its_lineage(stack_settings, tmp_path, receiver):
    """The real path: a harvested file connector run by a worker's TaskRunner sends START, RUNNING
    snapshots and, when stopped, COMPLETE, naming its directory and topic with the field lineage."""
    import uuid

    from api.metadata.lineage import connector_edges
    from connectors.catalog import harvest_steps
    from connectors.store import ConnectorRecord
    from connectors.task_runner import TaskRunner

    run = uuid.uuid4().hex[:6]
    settings = stack_settings.model_copy(
        update={
            "state_dir": tmp_path,
            "control_db_url": "",
            "openlineage_url": receiver[0],
            "openlineage_snapshot_s": 0.3,
        }
    )
    root = settings.resolved_data_root / f"ol-{run}"
    root.mkdir(parents=True)
    (root / "a.csv").write_text("编号,姓名\n1,张三\n", encoding="utf-8")
    config = {
        "connector.class": "files",
        "system": f"ol{run}",
        "table": f"people_{run}",
        "store": {"root": str(root), "pattern": "*.csv"},
        "settle_seconds": 0,
        "columns": [{"name": "id", "type": "int", "key": True, "source": "编号"}, {"name": "name", "source": "姓名"}],
    }
    now = time.time()
    record = ConnectorRecord(f"ol-files-{run}", "source", "files", config, "RUNNING", 1, 1, now, now)
    store = CatalogStore(engine_for(settings.resolved_control_db_url))
    for step in harvest_steps(record.plugin, record.config, settings):
        store.record(step.run(), "")
    replace_edges(store.engine, "", f"connector:{record.name}", connector_edges(record, settings, store, ""))
    states = []
    runner = TaskRunner(record, 0, settings, lambda state, detail, trace: states.append((state, detail)))
    runner.start()
    try:
        deadline = time.time() + 60
        while time.time() < deadline and [e["eventType"] for _, e in receiver[1]].count("RUNNING") < 2:
            time.sleep(0.1)
    finally:
        assert runner.stop(30)
    events = [e for _, e in receiver[1]]
    kinds = [e["eventType"] for e in events]
    assert kinds[0] == "START" and kinds[-1] == "COMPLETE" and kinds.count("RUNNING") >= 2, (kinds, states)
    for event in events:
        validate(event)
    event = events[-1]
    assert event["job"]["name"] == record.name
    assert event["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    [inp], [out] = event["inputs"], event["outputs"]
    assert inp["namespace"].startswith("file://") and inp["name"].endswith(f"ol-{run}/*.csv")
    assert out["namespace"] == f"kafka://{settings.kafka_bootstrap}" and out["name"].endswith(f"people_{run}")
    assert [f["name"] for f in inp["facets"]["schema"]["fields"]] == ["id", "name"]


def test_the_kafka_transport_produces_the_events_to_its_topic(stack_settings, tmp_path):
    import uuid

    from confluent_kafka import Consumer

    topic = f"openlineage-{uuid.uuid4().hex[:6]}"
    settings = Settings(state_dir=tmp_path, openlineage_url=f"kafka://{stack_settings.kafka_bootstrap}/{topic}")
    _catalogue(settings.resolved_control_db_url)
    batch_run(settings, RUNNER, lambda ctx: None)(None)
    consumer = Consumer(
        {"bootstrap.servers": stack_settings.kafka_bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    events, deadline = [], time.time() + 60
    try:
        while len(events) < 2 and time.time() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                events.append(json.loads(msg.value()))
    finally:
        consumer.close()
        close_clients()  # its producer would keep reconnecting after the session's broker stopped
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        validate(event)
    assert events[1]["outputs"][0]["name"] == CLEAN


def test_a_settings_stand_in_without_the_setting_means_off():
    stand_in = SimpleNamespace(control_db_url="")  # what a unit test may hand a TaskRunner
    with streaming_run(stand_in, RUNNER, 0):
        pass
    fn = lambda ctx: 1  # noqa: E731
    assert batch_run(stand_in, RUNNER, fn) is fn

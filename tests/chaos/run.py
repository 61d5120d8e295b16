"""One chaos run: its own stack (durable broker on SeaweedFS, registry, ClickHouse), an API and
three workers, pipelines deployed through the API (PostgreSQL log CDC -> lean runner with two
rules -> ClickHouse; CSV files -> the file source -> the same rules -> a second table,
tests/chaos/files.py; an HDFS sink on both clean topics when Java is here), a steady load, and
seeded faults; then the end state is checked.

`ChaosRun(...).run()` returns a `Report`: every fault with its recovery time (a row inserted right
after the fault, until it is in ClickHouse, and until it is in HDFS), and the end-state checks:
ClickHouse FINAL equals the valid source rows exactly with no key twice, every rejected row has a
quarantine record with its reason, HDFS holds each event of the clean stream exactly once with each
row's last valid version as its latest (tests/chaos/hdfs.py), every task is RUNNING on a live worker.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from connectors.pipeline import PipelineSpec
from deploy.servers import PG_ADMIN
from deploy.settings import Settings, settings_env
from deploy.stack import MANAGED, Stack
from schemas.serde import WireCodec
from sinks.clickhouse import client_from_url
from tests.chaos import files as file_import
from tests.chaos import hdfs
from tests.chaos.faults import Injected, available_faults, plan
from tests.chaos.load import TABLE, SourceLoad, create_table, rejected_now

PIPELINE = "chaos"
TRANSFORMS = [{"kind": "trim", "fields": ["name", "phone"]}]
RULES = [
    {"id": "name_required", "kind": "required", "fields": ["name"], "severity": "reject"},
    {
        "id": "phone_format",
        "kind": "regex",
        "fields": ["phone"],
        "pattern": r"^1[3-9]\d{9}$",
        "severity": "reject",
        "message": "phone must be an 11-digit mobile number",
    },
]
CANARY_BASE = 10_000_000  # ids of the rows that time each recovery, far above the load's


@dataclass
class Report:
    seed: int
    seconds: float
    faults: list[Injected] = field(default_factory=list)
    rows_written: int = 0
    load_retries: int = 0
    source_valid: int = 0
    source_rejected: int = 0
    clickhouse_rows: int = 0
    missing: list[int] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)
    differ: list[int] = field(default_factory=list)
    duplicated_keys: int = 0
    rejected_without_quarantine: list[int] = field(default_factory=list)
    quarantine_without_reason: int = 0
    tasks_not_running: dict = field(default_factory=dict)
    caught_up_after: float | None = None
    lost_at: dict = field(default_factory=dict)  # stage -> ids whose last version stopped there
    error: str | None = None  # the run itself broke down (a process that never came back)
    hdfs: hdfs.HdfsVerdict = field(default_factory=hdfs.HdfsVerdict)
    imports: file_import.ImportsVerdict = field(default_factory=file_import.ImportsVerdict)

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not (self.missing or self.extra or self.differ or self.duplicated_keys)
            and not (self.rejected_without_quarantine or self.quarantine_without_reason)
            and not self.tasks_not_running
            and all(f.recovered_after is not None for f in self.faults)
            and (self.hdfs.skipped is not None or all(f.hdfs_recovered_after is not None for f in self.faults))
            and self.hdfs.ok
            and self.imports.ok
        )

    def text(self) -> str:
        lines = [f"chaos run: seed {self.seed}, {self.seconds:.0f} s of load, {self.rows_written} writes"]
        lines.append(f"{'at s':>6}  {'fault':<11} {'target':<12} {'recovered after':>15} {'in HDFS':>13}  detail")
        for f in self.faults:
            rec = f"{f.recovered_after:.1f} s" if f.recovered_after is not None else "NOT RECOVERED"
            in_hdfs = "-" if self.hdfs.skipped else "NOT RECOVERED"
            in_hdfs = f"{f.hdfs_recovered_after:.1f} s" if f.hdfs_recovered_after is not None else in_hdfs
            lines.append(f"{f.at:6.1f}  {f.kind:<11} {f.target:<12} {rec:>15} {in_hdfs:>13}  {f.detail}")
        lines.append(
            f"source: {self.source_valid} rows with a valid version, {self.source_rejected} rejected now; ClickHouse FINAL: "
            f"{self.clickhouse_rows} rows, caught up {self.caught_up_after} s after the load stopped"
        )
        lines.append(
            f"missing {len(self.missing)}, extra {len(self.extra)}, differ {len(self.differ)}, keys twice "
            f"{self.duplicated_keys}; rejected without quarantine record {len(self.rejected_without_quarantine)}; "
            f"tasks not running {self.tasks_not_running or 0}; load retries {self.load_retries}"
        )
        lines.append(self.hdfs.text())
        lines.append(self.imports.text())
        if self.lost_at:
            lines.append("where the missing and differing rows' last versions stopped: " + json.dumps(self.lost_at))
        if self.error:
            lines.append(f"run broke down: {self.error}")
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        return "\n".join(lines)


def chaos_settings(run_dir: Path, port_base: int, with_hdfs: bool = False) -> Settings:
    return Settings(
        state_dir=run_dir / "state",
        control_db_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/huiliu_chaos_ctl_{port_base}",
        kafka_bootstrap=f"127.0.0.1:{port_base + 92}",
        objectstore_port=port_base + 50,
        schema_registry_url=f"http://127.0.0.1:{port_base + 81}",
        clickhouse_url=f"clickhouse://default:@127.0.0.1:{port_base}/default",
        clickhouse_http_port=port_base + 23,
        api_port=port_base + 100,
        broker_storage="s3",
        # the stack's HDFS: connectors may reach it (connectors.probes allows the stack's ports)
        hdfs_url=hdfs.webhdfs_url(port_base) if with_hdfs else "",
    )


def _differences(got: dict, expected: dict) -> tuple[list, list, list]:
    """Keys missing, keys extra, keys whose values differ (the first 50 of each)."""
    missing = sorted(set(expected) - set(got))[:50]
    extra = sorted(set(got) - set(expected))[:50]
    differ = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])[:50]
    return missing, extra, differ


def _drop_database(name: str, create: bool = False) -> str:
    """Drop (and create again) a database of the run, with its replication slots (DROP DATABASE
    refuses while a slot is on it)."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = %s AND active", (name,)
        )
        for (slot,) in conn.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if create:
            conn.execute(f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


class Cluster:
    """The API and worker processes of the run, restartable one by one."""

    def __init__(self, settings: Settings, logs: Path, worker_ids: list[str], lease: float):
        self.settings, self.logs, self.lease = settings, logs, lease
        self.stack = Stack(settings)
        self.env = {**os.environ, **settings_env(settings)}
        self.api: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.worker_ids = worker_ids
        self.base = f"http://{settings.api_host}:{settings.api_port}"
        self.client: httpx.Client | None = None

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        out = (self.logs / log).open("ab")
        return subprocess.Popen([sys.executable, "-m", "api.cli", *args], env=self.env, stdout=out, stderr=out)

    def start_api(self) -> None:
        from api.auth import api_key_for

        self.api = self._spawn(["api"], "api.log")
        deadline = time.monotonic() + 240  # a loaded 2-core machine takes a minute and more to import it
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/livez", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"the API did not start: {(self.logs / 'api.log').read_text()[-2000:]}")
        if self.client is None:
            self.client = httpx.Client(
                base_url=self.base, headers={"X-API-Key": api_key_for(self.settings)}, timeout=60
            )

    def start_worker(self, worker_id: str) -> None:
        self.workers[worker_id] = self._spawn(
            ["worker", "--worker-id", worker_id, "--lease-seconds", str(self.lease)], f"{worker_id}.log"
        )

    def up(self) -> None:
        from deploy.components.base import port_in_use

        # a server of another run on these ports would be taken for ours (and never be killed)
        taken = [(self.settings.api_host, self.settings.api_port)] + [
            self.stack.component(name).listen_address() for name in MANAGED
        ]
        busy = [f"{h}:{p}" for h, p in filter(None, taken) if port_in_use(h, p)]
        if busy:
            raise RuntimeError(f"ports taken ({', '.join(busy)}): a run on this port block is still up")
        self.logs.mkdir(parents=True, exist_ok=True)
        self.stack.up(progress=False)
        self.start_api()
        for wid in self.worker_ids:
            self.start_worker(wid)

    def call(self, method: str, path: str, **kw) -> httpx.Response:
        """An API call that rides out the API's own restart."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return self.client.request(method, path, **kw)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def connectors(self) -> list[str]:
        return [n for n in self.call("GET", "/connectors").json() if n.startswith(PIPELINE + "-")]

    def tasks_of(self, worker_id: str) -> list[str]:
        return [
            n
            for n in self.connectors()
            for t in self.call("GET", f"/connectors/{n}/status").json().get("tasks", [])
            if t.get("worker_id") == worker_id
        ]

    def host_of(self, connector: str) -> str | None:
        """The live worker running `connector`'s task, if any."""
        for t in self.call("GET", f"/connectors/{connector}/status").json().get("tasks", []):
            if t.get("state") == "RUNNING" and t.get("worker_id") in self.workers:
                return t["worker_id"]
        return None

    def tasks_not_running(self) -> dict[str, str]:
        out = {}
        for n in self.connectors():
            for t in self.call("GET", f"/connectors/{n}/status").json().get("tasks", []):
                if t.get("state") != "RUNNING" or t.get("worker_id") not in self.workers:
                    out[n] = f"{t.get('state')} on {t.get('worker_id')}: {str(t.get('trace', ''))[-300:]}"
        return out

    def down(self) -> None:
        for proc in [*self.workers.values(), self.api]:
            if proc and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self.client:
            self.client.close()
        self.stack.down()


class ChaosRun:
    def __init__(self, run_dir: Path, port_base: int, seconds: float, seed: int, rate: int = 60):
        self.run_dir, self.seconds, self.seed, self.rate = Path(run_dir), seconds, seed, rate
        self.port_base = port_base
        self.rng = random.Random(seed)
        self.report = Report(seed=seed, seconds=seconds)
        self.report.hdfs.skipped = hdfs.unavailable()
        self.settings = chaos_settings(self.run_dir, port_base, with_hdfs=self.report.hdfs.skipped is None)
        self.cluster = Cluster(self.settings, self.run_dir / "logs", [f"chaos-w{i}" for i in range(3)], lease=10.0)
        self.hdfs: hdfs.RunCluster | None = None  # the run's HDFS cluster, unless this machine has no Java
        self.hdfs_files: hdfs.HdfsFiles | None = None
        self.file_load = file_import.FileLoad(
            self.settings.resolved_data_root / file_import.INBOX, max(1, rate // 3), seed + 1
        )

    # --- set-up ---------------------------------------------------------------------------
    def _document(self, source_url: str) -> dict:
        return {
            "name": PIPELINE,
            "source": {
                "kind": "relational.pg_logical",
                "config": {
                    "url": source_url,
                    "system": "chaos",
                    "db_schema": "public",
                    "tables": [TABLE],
                    "slot_name": f"huiliu_chaos_{self.port_base}",
                    "publication": f"huiliu_chaos_{self.port_base}",
                },
            },
            "transforms": TRANSFORMS,
            "rules": RULES,
            "sink": {"kind": "clickhouse", "config": {"table": TABLE}},
        }

    def _files_document(self) -> dict:
        return file_import.document(self.file_load.inbox, TRANSFORMS, RULES)

    def _topics(self, document: dict) -> dict[str, str]:
        return PipelineSpec.model_validate(document).topics(self.settings)

    def _deploy(self, source_url: str) -> None:
        for document in (self._document(source_url), self._files_document()):
            r = self.cluster.call("POST", "/pipelines", json=document)
            assert r.status_code == 201, r.text
            r = self.cluster.call("POST", f"/pipelines/{document['name']}/deploy")
            assert r.status_code == 200, r.text
        if self.hdfs is not None:  # a second sink of both clean topics, a connector of its own
            self.hdfs.wait()
            self.report.hdfs.started_after = self.hdfs.started_after
            clean = [self._topics(self._document(source_url))["clean"], self._topics(self._files_document())["clean"]]
            r = self.cluster.call(
                "POST", "/connectors", json={"name": hdfs.SINK, "config": self.hdfs.sink_document(clean)}
            )
            assert r.status_code == 201, r.text
            self.hdfs_files = hdfs.HdfsFiles(self.hdfs.cluster.webhdfs_url, TABLE)

    # --- the measured pieces ----------------------------------------------------------------
    def _clickhouse(self, query: str):
        client = client_from_url(self.settings.clickhouse_url)
        try:
            return client.execute(query)
        finally:
            client.disconnect()

    def _in_clickhouse(self, id_: int) -> bool:
        try:
            return (
                self._clickhouse(f"SELECT count() FROM {TABLE} FINAL WHERE id = {int(id_)} AND _deleted = 0")[0][0] > 0
            )
        except Exception:  # noqa: BLE001 - the table not made yet, or ClickHouse restarting
            return False

    def _in_hdfs(self, id_: int) -> bool:
        try:
            return self.hdfs_files.holds(id_)
        except Exception:  # noqa: BLE001 - nothing written yet, or WebHDFS busy
            return False

    def _time_recovery(self, fault: Injected, canary: int, started: float, timeout: float = 120.0) -> None:
        self.load.insert_canary(canary)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fault.recovered_after is None and self._in_clickhouse(canary):
                fault.recovered_after = round(time.monotonic() - started, 1)
            if self.hdfs_files is not None and fault.hdfs_recovered_after is None and self._in_hdfs(canary):
                fault.hdfs_recovered_after = round(time.monotonic() - started, 1)
            if fault.recovered_after is not None and (
                self.hdfs_files is None or fault.hdfs_recovered_after is not None
            ):
                return
            time.sleep(0.5)

    def _warm_up(self, timeout: float = 300.0) -> None:
        """The clock starts once a row goes through end to end: a fault before the stages first
        ran would time their start-up, not a recovery."""
        self.load.insert_canary(CANARY_BASE - 1)
        deadline = time.monotonic() + timeout
        while not (
            self._in_clickhouse(CANARY_BASE - 1) and (self.hdfs_files is None or self._in_hdfs(CANARY_BASE - 1))
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pipeline carried no row within {timeout:.0f} s of its deployment")
            time.sleep(0.5)

    def _inject_faults(self, t0: float) -> None:
        faults = available_faults(hdfs=self.hdfs_files is not None)
        # The run keeps its length, unless recoveries took so long that some kind of fault never
        # came: then, still under load, each missing kind once more (the run at most twice as long).
        for i, (at, kind) in enumerate(plan(self.seed, 2 * self.seconds, sorted(faults))):
            elapsed, met = time.monotonic() - t0, {f.kind for f in self.report.faults}
            late = max(at, elapsed) >= self.seconds
            if late and (met >= set(faults) or elapsed >= 2 * self.seconds):
                break
            if late and kind in met:
                continue
            wait = at - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            started = time.monotonic()
            fault = Injected(kind=kind, target="", at=round(started - t0, 1))
            fault.target, fault.detail = faults[kind](self.cluster, self.rng)
            self.report.faults.append(fault)
            self._time_recovery(fault, CANARY_BASE + i, started)
            print(
                f"[chaos] {fault.at:6.1f}s {kind:<11} {fault.target:<12} recovered after {fault.recovered_after}"
                + (f", in HDFS after {fault.hdfs_recovered_after}" if self.hdfs_files is not None else ""),
                flush=True,
            )

    # --- the end state --------------------------------------------------------------------
    def _wait_caught_up(self, table: str, expected: dict, timeout: float) -> tuple[dict, float | None]:
        """The table's live rows once they equal `expected` (or at the timeout), and after how long."""
        started, got = time.monotonic(), {}
        while time.monotonic() - started < timeout:
            try:
                got = {
                    i: (n, p)
                    for i, n, p in self._clickhouse(f"SELECT id, name, phone FROM {table} FINAL WHERE _deleted = 0")
                }
            except Exception:  # noqa: BLE001
                got = {}
            if got == expected:
                return got, round(time.monotonic() - started, 1)
            time.sleep(2)
        return got, None

    def _keys_twice(self, table: str) -> int:
        total, distinct = self._clickhouse(f"SELECT count(), uniqExact(id) FROM {table} FINAL WHERE _deleted = 0")[0]
        return total - distinct

    def _scan(self, topic: str, each) -> None:
        """`each(record)` for every message of `topic` from its start, until 5 s bring nothing new."""
        codec = WireCodec(self.settings.schema_registry_url)
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"chaos-check-{uuid.uuid4().hex[:6]}",
                "enable.auto.commit": False,
            }
        )
        try:
            parts = consumer.list_topics(topic, timeout=20).topics[topic].partitions
            consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            idle_since = time.monotonic()
            while time.monotonic() - idle_since < 5:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() or msg.value() is None:
                    continue
                idle_since = time.monotonic()
                each(codec.decode(msg.value())[1])
        finally:
            consumer.close()

    def _quarantined_ids(self, topic: str) -> tuple[set[int], int]:
        ids, no_reason = set(), [0]

        def each(record: dict) -> None:
            event = json.loads(record["original_json"])  # the change envelope: the row is its after
            ids.add(int((event.get("after") or event.get("before") or event)["id"]))
            no_reason[0] += not (record.get("reason") and record.get("violations"))

        self._scan(topic, each)
        return ids, no_reason[0]

    def _trace_losses(self, source_url: str, expected: dict, ids: list[int]) -> dict[str, list[int]]:
        """For rows whose last version is not in ClickHouse: the stage it stopped at. `source`: not in
        the source topic; `runner`: in it but not in the clean topic; `sink`: in the clean topic."""
        topics = self._topics(self._document(source_url))
        wanted, seen = set(ids), {"source": set(), "clean": set()}

        def into(where: str):
            def each(record: dict) -> None:
                after = record.get("after") or {}
                i = after.get("id")
                if i in wanted and (after.get("name"), after.get("phone")) == expected.get(i):
                    seen[where].add(i)

            return each

        self._scan(topics["source"], into("source"))
        self._scan(topics["clean"], into("clean"))
        stages = {
            "source": sorted(wanted - seen["source"]),
            "runner": sorted(seen["source"] - seen["clean"]),
            "sink": sorted(seen["clean"]),
        }
        return {k: v for k, v in stages.items() if v}

    def _check(self, source_url: str) -> None:
        expected, rejected = dict(self.load.last_valid), rejected_now(source_url)
        r = self.report
        r.source_valid, r.source_rejected = len(expected), len(rejected)
        got, r.caught_up_after = self._wait_caught_up(TABLE, expected, timeout=240)
        r.clickhouse_rows = len(got)
        r.missing, r.extra, r.differ = _differences(got, expected)
        r.duplicated_keys = self._keys_twice(TABLE)
        quarantined, r.quarantine_without_reason = self._quarantined_ids(
            self._topics(self._document(source_url))["quarantine"]
        )
        r.rejected_without_quarantine = sorted(rejected - quarantined)[:50]
        r.tasks_not_running = self.cluster.tasks_not_running()
        if self.hdfs_files is not None:
            r.hdfs = self._hdfs_verdict(self._topics(self._document(source_url))["clean"], self.hdfs_files, expected)
        r.imports = self._check_imports()
        if r.missing or r.differ:
            try:
                r.lost_at = self._trace_losses(source_url, expected, r.missing + r.differ)
            except Exception as exc:  # noqa: BLE001 - the verdict stands without the trace
                r.lost_at = {"trace failed": [str(exc)[:200]]}

    def _check_imports(self) -> file_import.ImportsVerdict:
        load, v = self.file_load, file_import.ImportsVerdict()
        v.files, v.rows, v.valid, v.rejected = load.files, load.rows, len(load.valid), len(load.rejected)
        got, v.caught_up_after = self._wait_caught_up(file_import.TABLE, load.valid, timeout=120)
        v.clickhouse_rows = len(got)
        v.missing, v.extra, v.differ = _differences(got, load.valid)
        v.duplicated_keys = self._keys_twice(file_import.TABLE)
        topics = self._topics(self._files_document())
        quarantined, v.quarantine_without_reason = self._quarantined_ids(topics["quarantine"])
        v.rejected_without_quarantine = sorted(load.rejected - quarantined)[:50]
        if self.hdfs_files is not None:
            imported = hdfs.HdfsFiles(self.hdfs.cluster.webhdfs_url, file_import.TABLE)
            v.hdfs = self._hdfs_verdict(topics["clean"], imported, load.valid)
            v.hdfs.started_after = None  # said once, in the run's own HDFS line
        else:
            v.hdfs.skipped = self.report.hdfs.skipped
        return v

    def _hdfs_verdict(self, clean_topic: str, files: hdfs.HdfsFiles, expected: dict) -> hdfs.HdfsVerdict:
        clean: dict[tuple[int, int], int] = {}

        def each(record: dict) -> None:
            row = record.get("after") or record.get("before") or {}
            pair = (int(row["id"]), int(record["source"]["sequence"]))
            clean[pair] = clean.get(pair, 0) + 1

        self._scan(clean_topic, each)
        v = hdfs.verdict(files, clean, expected, timeout=120)
        v.started_after = self.report.hdfs.started_after
        return v

    # --- the whole run ----------------------------------------------------------------------
    def run(self) -> Report:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        source_url = _drop_database(f"huiliu_chaos_src_{self.port_base}", create=True)
        _drop_database(f"huiliu_chaos_ctl_{self.port_base}", create=True)
        create_table(source_url)
        self.load = SourceLoad(source_url, self.rate, self.seed)
        if self.report.hdfs.skipped is None:
            self.hdfs = hdfs.RunCluster(self.run_dir / "hdfs", self.port_base)
            self.hdfs.start()  # beside the stack's start
        try:
            self.cluster.up()
            self._deploy(source_url)
            self._warm_up()
            self.load.start()
            self.file_load.start()
            t0 = time.monotonic()
            self._inject_faults(t0)
            time.sleep(max(0.0, self.seconds - (time.monotonic() - t0)))
            self.load.stop()
            self.file_load.stop()
            self.report.rows_written, self.report.load_retries = self.load.written, self.load.retries
            self._check(source_url)
        except Exception as exc:
            self.report.error = f"{type(exc).__name__}: {str(exc)[-1500:]}"
            raise
        finally:
            self._tear_down()
        return self.report

    def _tear_down(self) -> None:
        """Each step on its own: a run that broke down still leaves no process or database behind
        (a stack left running would be taken over by the next run on the same ports)."""
        for step in (
            self.load.stop,
            self.file_load.stop,
            self._write_report,
            self._undeploy,
            self.cluster.down,
            self._stop_hdfs,
        ):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - the next step still runs
                print(f"[chaos] tear-down: {step.__name__} failed: {exc}", flush=True)
        _drop_database(f"huiliu_chaos_src_{self.port_base}")  # and the run's replication slot
        _drop_database(f"huiliu_chaos_ctl_{self.port_base}")

    def _write_report(self) -> None:
        (self.run_dir / "report.json").write_text(
            json.dumps({**asdict(self.report), "ok": self.report.ok}, indent=2, ensure_ascii=False)
        )
        (self.run_dir / "report.txt").write_text(self.report.text(), encoding="utf-8")

    def _undeploy(self) -> None:
        for name in (PIPELINE, file_import.PIPELINE):
            self.cluster.call("POST", f"/pipelines/{name}/undeploy")
        if self.hdfs_files is not None:
            self.cluster.call("DELETE", f"/connectors/{hdfs.SINK}")

    def _stop_hdfs(self) -> None:
        if self.hdfs is not None:
            self.hdfs.stop()

"""Workers sharing tasks through Redis leases (AGG-09), over real API and worker processes.

Two workers split four timestamp connectors; a kill -9 of one moves its tasks to the other
within the lease time and capture continues with no row lost; a third worker joining takes its
fair share. A lost source table is retried with backoff (RUNNING + `retrying` detail), recovers,
and becomes FAILED with a trace after the attempts run out; restart brings it back.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from schemas.naming import topic_name
from tests.connect_cluster import (
    TopicReader,
    api_and_workers,
    insert_rows,
    make_table,
    own_control_db,  # noqa: F401 - a fixture: stack_settings with its own control DB
    start_worker,
    stop,
    timestamp_config,
    wait_until,
)

RUN = uuid.uuid4().hex[:6]
LEASE = 3.0


@pytest.fixture(scope="module")
def cluster(stack_settings, tmp_path_factory):
    with api_and_workers(
        stack_settings, tmp_path_factory.mktemp("worker-logs"), [f"wa-{RUN}", f"wb-{RUN}"], LEASE
    ) as state:
        yield state


def statuses(client, names):
    return {n: client.get(f"/connectors/{n}/status").json()["tasks"][0] for n in names}


def placement(client, names) -> dict[str, str | None]:
    """connector -> worker id, only when every task is RUNNING."""
    s = statuses(client, names)
    return {n: t["worker_id"] for n, t in s.items()} if all(t["state"] == "RUNNING" for t in s.values()) else {}


def running_tasks(client) -> dict[str, int]:
    """Running tasks per worker over every connector in the control DB: the session's DB may hold
    other modules' connectors, and the fair share counts them too."""
    counts: dict[str, int] = {}
    for name in client.get("/connectors").json():
        for task in client.get(f"/connectors/{name}/status").json().get("tasks", []):
            if task.get("state") == "RUNNING" and task.get("worker_id"):
                counts[task["worker_id"]] = counts.get(task["worker_id"], 0) + 1
    return counts


def test_lost_table_is_retried_with_backoff_then_fails_and_restart_recovers(cluster, stack_settings, pg_url):
    client = cluster["client"]
    table, name = f"flaky_{RUN}", f"flaky-{RUN}"
    make_table(pg_url, table)
    insert_rows(pg_url, table, range(1, 6))
    assert (
        client.post(
            "/connectors", json={"name": name, "config": timestamp_config(pg_url, table, f"fl{RUN}")}
        ).status_code
        == 201
    )
    wait_until(lambda: statuses(client, [name])[name]["state"] == "RUNNING", 60, message="RUNNING")
    reader = TopicReader(stack_settings, topic_name(stack_settings.topic_prefix, f"fl{RUN}", "public", table))
    engine = create_engine(pg_url)
    try:
        reader.wait_for_ids(set(range(1, 6)))
        with engine.begin() as conn:  # the table goes away: every poll fails
            conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        task = wait_until(
            lambda: (t := statuses(client, [name])[name]).get("detail", "").startswith("retrying") and t,
            30,
            interval=0.1,
            message="retrying detail",
        )
        assert task["state"] == "RUNNING" and "Traceback" in task["trace"]
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
        insert_rows(pg_url, table, range(6, 11))
        reader.wait_for_ids(set(range(1, 11)))
        wait_until(
            lambda: (
                "detail" not in statuses(client, [name])[name]
                or statuses(client, [name])[name]["detail"] == "recovered after a retry"
            ),
            30,
            message="recovered",
        )

        with engine.begin() as conn:  # gone for good: after the attempts (1+2+4 s) the task is FAILED
            conn.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        task = wait_until(
            lambda: (t := statuses(client, [name])[name])["state"] == "FAILED" and t, 60, message="FAILED"
        )
        assert "gave up after 4 attempts" in task["detail"] and "Traceback" in task["trace"]
        assert client.get(f"/connectors/{name}/status").json()["connector"]["state"] == "FAILED"

        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
        assert client.post(f"/connectors/{name}/restart").status_code == 204
        insert_rows(pg_url, table, range(11, 16))
        reader.wait_for_ids(set(range(1, 16)))
        wait_until(lambda: statuses(client, [name])[name]["state"] == "RUNNING", 30, message="RUNNING after restart")
    finally:
        reader.close()
        engine.dispose()
        client.delete(f"/connectors/{name}")


def test_workers_share_tasks_and_take_over_a_dead_workers_tasks(cluster, stack_settings, pg_url):
    client, workers = cluster["client"], cluster["workers"]
    names = [f"share{i}-{RUN}" for i in range(4)]
    tables = [f"share{i}_{RUN}" for i in range(4)]
    for table, name in zip(tables, names):
        make_table(pg_url, table)
        insert_rows(pg_url, table, range(1, 51))
        r = client.post("/connectors", json={"name": name, "config": timestamp_config(pg_url, table, f"sh{RUN}")})
        assert r.status_code == 201, r.text

    # both workers run two tasks each
    def balanced():
        p = placement(client, names)
        return p if p and sorted(list(p.values()).count(w) for w in workers) == [2, 2] else None

    place = wait_until(balanced, 90, message="two tasks on each worker")

    # rows keep arriving while one worker is killed
    inserted = {t: set(range(1, 51)) for t in tables}
    done = threading.Event()

    def writer():  # one transaction per row, so rows commit in timestamp order
        engine = create_engine(pg_url)
        i = 51
        with engine.connect() as conn:
            while not done.is_set() and i <= 2000:
                for t in tables:
                    conn.execute(text(f"INSERT INTO {t} VALUES (:i, 'live', clock_timestamp())"), {"i": i})
                    conn.commit()
                    inserted[t].add(i)
                i += 1
                time.sleep(0.01)
        engine.dispose()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(2)
        victim, survivor = f"wa-{RUN}", f"wb-{RUN}"
        workers[victim].kill()  # kill -9: no lease is released, they must expire
        workers[victim].wait(10)
        killed_at = time.time()
        moved = wait_until(
            lambda: (p := placement(client, names)) and set(p.values()) == {survivor} and p,
            LEASE + 20,
            interval=0.2,
            message="every task on the surviving worker",
        )
        took = time.time() - killed_at
        # lease expiry + one reconcile tick + the task's start, with room for a loaded machine
        assert took <= 3 * LEASE, f"takeover took {took:.1f}s with a {LEASE}s lease"
        assert [n for n in names if place[n] == victim] and set(moved) == set(names)
    finally:
        time.sleep(2)
        done.set()
        thread.join(60)

    for table in tables:  # at least once: every row id arrives (duplicates after the takeover are fine)
        reader = TopicReader(stack_settings, topic_name(stack_settings.topic_prefix, f"sh{RUN}", "public", table))
        try:
            got = reader.wait_for_ids(inserted[table], timeout=90)
            assert inserted[table] <= got and len(inserted[table]) > 100
        finally:
            reader.close()

    # a new worker joins: the survivor hands over its surplus, two tasks each again
    joined = f"wc-{RUN}"
    workers[joined] = start_worker(stack_settings, joined, cluster["logs"] / f"{joined}.log", lease=LEASE)

    def rebalanced():  # the survivor handed its surplus over: the two hold fair shares of every task
        p, load = placement(client, names), running_tasks(client)
        ours_placed = p and set(p.values()) <= {survivor, joined}
        return ours_placed and load.get(joined, 0) >= 1 and abs(load.get(survivor, 0) - load.get(joined, 0)) <= 1

    wait_until(rebalanced, 120, message="rebalanced onto the new worker")

    # a graceful stop (SIGTERM) releases the leases: the tasks move before any lease could expire
    stop(workers[joined])
    stopped_at = time.time()
    wait_until(
        lambda: (p := placement(client, names)) and set(p.values()) == {survivor},
        30,
        interval=0.2,
        message="tasks back on the survivor",
    )
    assert time.time() - stopped_at < 30
    expanded = client.get("/connectors", params={"expand": "status"}).json()
    assert {expanded[n]["status"]["connector"]["worker_id"] for n in names} == {survivor}

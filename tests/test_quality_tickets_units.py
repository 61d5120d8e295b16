"""Quality tickets' domain on a real SQLite control DB (the migrations build it): the monitor opens
at the threshold and not below, counts into the live ticket instead of opening another, verifies on
passing data, reopens on recurrence, escalates overdue once; the workflow refuses illegal moves.
The catalogue, lineage and message centre are the Context's functions (the API test drives the
real ones)."""

from __future__ import annotations

import time

import pytest

from deploy.control import engine_for
from quality_stream.tickets.model import BadInput, IllegalTransition, NotFound
from quality_stream.tickets.monitor import Context, Monitor, Watched
from quality_stream.tickets.store import TicketStore
from quality_stream.tickets.thresholds import Threshold, delta, window

URN = "hl:dataset:kafka://b:9092/raw.t"


@pytest.fixture
def world(tmp_path):
    store = TicketStore(engine_for(f"sqlite:///{tmp_path / 'control.db'}"))
    posted: list[tuple] = []
    owners = {URN: ("alice", "户籍科")}
    ctx = Context(
        owner=lambda scope, urn: owners.get(urn, (None, None)),
        downstream=lambda scope, urn: [{"dataset": "hl:dataset:clickhouse://c:9000/d.r", "owner": "bob"}],
        samples=lambda pipeline, rule: [
            {"partition": 0, "offset": 1, "violations": [{"rule_id": rule, "dimension": "completeness"}], "event": {}}
        ],
        post=lambda scope, level, subject, body: posted.append((scope, level, subject)) or len(posted),
    )
    store.set_threshold("t1", "", "", Threshold(min_failed=3, window_seconds=600, sla_hours=1), "admin")
    return store, Monitor(store, ctx), posted, owners


def _w(read: int, failed: int, urn: str = URN) -> list[Watched]:
    return [Watched("t1", "p1", urn, {"read": read, "quarantined": failed, "quarantined.r1": failed})]


def test_threshold_open_count_verify_reopen(world):
    store, monitor, posted, _ = world
    assert monitor.tick(_w(10, 2))["opened"] == []  # below: nothing
    out = monitor.tick(_w(20, 3))
    assert len(out["opened"]) == 1
    t = store.get({"t1"}, out["opened"][0])
    assert (t["state"], t["assignee"], t["department"], t["dimension"], t["failed"]) == (
        "assigned",
        "alice",
        "户籍科",
        "completeness",
        3,
    )
    assert any("bob" in p[2] for p in posted)  # the downstream owner was told
    assert monitor.tick(_w(30, 5))["counted"] == [t["id"]]  # counted in, not a second ticket
    assert store.list({"t1"})[0] == 1 and store.get({"t1"}, t["id"])["failed"] == 5
    with pytest.raises(IllegalTransition, match="cannot close a ticket that is assigned"):
        store.transition({"t1"}, t["id"], "close", "alice")
    with pytest.raises(BadInput):
        store.transition({"t1"}, t["id"], "resolve", "alice", resolution="waived")  # no reason
    store.transition({"t1"}, t["id"], "start", "alice")
    store.transition({"t1"}, t["id"], "resolve", "alice", resolution="fixed_at_source", reason="x", base=(30, 5))
    with pytest.raises(IllegalTransition, match="verified"):
        store.transition({"t1"}, t["id"], "close", "alice")
    assert monitor.tick(_w(30, 5))["verified"] == []  # no new data yet
    assert monitor.tick(_w(40, 5))["verified"] == [t["id"]]
    assert store.transition({"t1"}, t["id"], "close", "alice")["state"] == "closed"
    out = monitor.tick(_w(50, 6))  # failures came back
    assert out["reopened"] == [t["id"]] and out["opened"] == []
    again = store.get({"t1"}, t["id"])
    assert again["state"] == "reopened" and again["resolution"] is None
    history = [(e["kind"], e["to"]) for e in store.events(t["id"])]
    assert ("transition", "verified") in history and history[-2:] == [("transition", "reopened"), ("notified", None)]
    with pytest.raises(NotFound):
        store.get({"t2"}, t["id"])  # another tenant's


def test_waived_is_not_reopened_and_overdue_escalates_once(world):
    store, monitor, posted, owners = world
    owners.clear()
    t = store.get(None, monitor.tick(_w(10, 4))["opened"][0])
    assert t["state"] == "open" and t["assignee"] is None and "no owner" in t["assignee_note"]
    store.transition(None, t["id"], "assign", "lead", assignee="carol")
    store.transition(None, t["id"], "resolve", "carol", resolution="waived", reason="accepted", base=(10, 4))
    assert monitor.tick(_w(20, 9)) == {"opened": [], "counted": [], "verified": [], "reopened": [], "escalated": []}
    assert store.transition(None, t["id"], "close", "carol")["state"] == "closed"  # waived closes directly

    late, _ = store.open(
        "t1", pipeline="p1", dataset_urn=URN, rule="r2", dimension="validity", failed=1, evaluated=0,
        samples=[], assignee="dave", department=None, actor="eve", origin="manual", sla_hours=0.0001,
    )  # fmt: skip
    time.sleep(0.5)
    assert monitor.tick([])["escalated"] == [late["id"]]
    assert monitor.tick([])["escalated"] == []  # once
    assert any("overdue" in p[2] and p[1] == "warning" for p in posted)
    m = store.metrics({"t1"})
    assert {o["owner"] for o in m["by_owner"]} == {"carol", "dave"}
    carol = next(o for o in m["by_owner"] if o["owner"] == "carol")
    assert carol["resolved"] == 1 and carol["time_to_resolve_s"]["max"] >= 0


def test_window_and_delta():
    samples = [(100.0, {"read": 5}), (200.0, {"read": 9})]
    assert window(samples, 400.0, 250) == {"read": 5}
    assert window(samples, 150.0, 100) is None  # no sample before the start: from zero
    assert delta({"read": 12}, {"read": 5}, "read") == 7
    assert delta({"read": 3}, {"read": 5}, "read") == 3  # counters reset


def test_ratio_threshold_per_pipeline(world):
    """A pipeline's own threshold wins over the tenant's: 2 failures open only once they are 10% of
    the records checked in the window."""
    store, monitor, _, _ = world
    store.set_threshold("t1", "p1", "", Threshold(min_failed=2, min_ratio=0.1), "admin")
    assert store.threshold_for("t1", "p1", "r1").min_ratio == 0.1
    assert store.threshold_for("t1", "p2", "r1").min_failed == 3  # the tenant's
    assert monitor.tick(_w(100, 2))["opened"] == []  # 2%: below the ratio
    assert len(monitor.tick(_w(110, 12))["opened"]) == 1  # 12 of 110: above
    assert Threshold(min_failed=1, min_ratio=0.5).crossed(1, 0) is False  # nothing checked: no ratio

"""Lineage read off a PyFlink job's config (streams/flink/lineage.py), pure logic: which edges each
part of the job gives, with which transformation, and which config paths a bad config names."""

from __future__ import annotations

import pytest

from schemas.catalog.received import BadLineage
from streams.flink.lineage import flink_edges, job_config, key_column

K = "hl:dataset:kafka://k:9092/"
CONFIG = """
kafka: {bootstrap: "k:9092"}
inputs:
  - topic: a
    dedupe: {key: [row.id], window_seconds: 30, output: a.once}
    rules: [{id: name_required, kind: required, fields: [name, phone]}]
  - topic: b
metrics: {topic: m}
joins: [{left: {topic: a, key: after.id}, right: {topic: b, key: after.a_id}, output: ab}]
"""


def _edges(fields=None):
    known = fields or {K + "a": ["id", "name", "phone"]}
    return flink_edges("j", job_config(CONFIG), lambda urn: known.get(urn, []))


def test_each_part_of_the_job_gives_its_edges():
    job, edges, named = _edges()
    assert job == "hl:job:huiliu/flink/j"
    datasets = {(e.source, e.target, (e.transformation or {}).get("kind")) for e in edges if e.source_field is None}
    assert datasets == {
        (K + "a", K + "a.once", "dedupe"),
        (K + "a", K + "m", "metrics"),
        (K + "b", K + "m", "metrics"),
        (K + "a", K + "ab", "join"),
        (K + "b", K + "ab", "join"),
    }
    fields = {
        (e.source, e.source_field, e.target, e.target_field, e.transformation["subtype"])
        for e in edges
        if e.source_field
    }
    assert {f for f in fields if f[2] == K + "a.once"} == {
        (K + "a", c, K + "a.once", c, "IDENTITY") for c in ("id", "name", "phone")
    }
    assert {f[1:4] for f in fields if f[2] == K + "m"} == {
        (c, K + "m", t) for c in ("name", "phone") for t in ("valid", "invalid")
    }
    assert all(f[4] == "AGGREGATION" for f in fields if f[2] == K + "m")
    # b is not catalogued: its key column is all that is known of it
    assert {f[1:4] for f in fields if f[2] == K + "ab" and f[0] == K + "b"} == {
        ("a_id", K + "ab", "right.a_id"),
        ("a_id", K + "ab", "key"),
    }
    assert named[K + "b"] == ["a_id"] and named[K + "m"][-2:] == ["valid", "invalid"]


def test_key_paths_name_row_columns_only():
    assert [key_column(p) for p in ("after.id", "before.id", "row.id", "source.sequence", "after.a.b")] == [
        "id",
        "id",
        "id",
        None,
        None,
    ]


@pytest.mark.parametrize(
    "config, says",
    [
        ("[1, 2]", "config: the job's config is an object"),
        ({"kafka": {}, "inputs": [{"topic": "a"}]}, "config.kafka.bootstrap"),
        ({"kafka": {"bootstrap": "k:1"}, "inputs": ["a"]}, "config.inputs[0]"),
        ({"kafka": {"bootstrap": "k:1"}, "inputs": [{"topic": "a", "dedupe": {"key": "id"}}]}, "dedupe.key"),
        ({"kafka": {"bootstrap": "k:1"}, "inputs": [{"topic": "a"}], "joins": [{"output": "o"}]}, "joins[0].left"),
    ],
)
def test_bad_configs_name_their_path(config, says):
    with pytest.raises(BadLineage, match=says.replace("[", r"\[").replace("]", r"\]")):
        flink_edges("j", job_config(config), lambda urn: [])

"""PipelineStore.current_documents: every visible pipeline's current document in one query (the
topic list's visibility check read them one `document` call each, two queries a pipeline)."""

from __future__ import annotations

from api.pipelines.store import pipeline_store_for
from deploy.settings import Settings


def _doc(name: str, tenant: str, **extra) -> dict:
    return {"name": name, "tenant": tenant, "source": {"kind": "x", "config": {}}, "sink": {"kind": "y"}, **extra}


def test_current_documents_by_tenant_and_latest_version(tmp_path):
    store = pipeline_store_for(Settings(state_dir=tmp_path))
    store.create("a1", _doc("a1", "A"), "u")
    store.create("b1", _doc("b1", "B"), "u")
    store.create("a0", _doc("a0", "A"), "u")
    store.save("a1", _doc("a1", "A", description="v2"), 1, "u")
    store.save("a0", _doc("a0", "A"), 1, "u", op="delete", deleted=True)
    mine = store.current_documents({"A"})
    assert [d["name"] for d in mine] == ["a1"] and mine[0]["description"] == "v2"  # deleted a0 left out
    assert [d["name"] for d in store.current_documents(None)] == ["a1", "b1"]
    assert store.current_documents({"C"}) == []

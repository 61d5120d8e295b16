"""Many objects of the newer console pages for bench_console.py, written straight through each
domain's store (the benchmark times reading them, not creating them): data elements and code sets
(drafts), quality tickets, data-service drafts, and users, groups and roles."""

from __future__ import annotations

from unittest import mock


def seed_standards(settings, tenant: str, author: str, n: int) -> None:
    from api.standards import standards_store
    from quality_stream.governance.model import CodeSetSpec, ElementSpec

    store = standards_store(settings)
    elements = [
        ElementSpec(code=f"e{i:04d}", name_zh=f"数据元{i}", data_type="string", length=20, synonyms=[f"别名{i}"])
        for i in range(n)
    ]
    store.save_drafts(tenant, "element", elements, author)
    items = [{"code": str(k), "label": f"值{k}"} for k in range(20)]
    code_sets = [CodeSetSpec(code=f"cs{i:04d}", name=f"代码集{i}", items=items) for i in range(n)]
    store.save_drafts(tenant, "code_set", code_sets, author)


def seed_tickets(settings, tenant: str, author: str, n: int) -> None:
    from api.quality.tickets import ticket_store

    store = ticket_store(settings)
    for i in range(n):
        store.open(
            tenant,
            pipeline=f"p{i % 50:04d}",
            dataset_urn=f"urn:li:dataset:(urn:li:dataPlatform:kafka,bench.t{i},PROD)",
            rule="name_required",
            dimension="completeness",
            failed=3,
            evaluated=100,
            samples=[{"id": i, "name": None}],
            assignee=author if i % 2 else None,
            department=None,
            actor=author,
            origin="bench",
            sla_hours=24,
        )


def seed_services(settings, tenant: str, author: str, n: int) -> None:
    from deploy.control import engine_for
    from streams.dataservices.model import ServiceSpec
    from streams.dataservices.store import ServiceStore

    store = ServiceStore(engine_for(settings.resolved_control_db_url))
    for i in range(n):
        spec = ServiceSpec(name=f"svc{i:04d}", title=f"服务{i}", resource={"table": f"t{i}"}, fields=["id", "name"])
        store.save_draft(tenant, spec, author)


def seed_identity(settings, tenant: str, n: int) -> None:
    """n users (one password hash computed once: hashing is slow by design), n/10 groups and roles."""
    from api.identity import passwords
    from api.identity.store import store_for

    store = store_for(settings.resolved_control_db_url)
    hashed = passwords.hash_password("Bench-user-pass-1")
    for r in range(n // 10):
        store.create_role(
            name=f"role{r:03d}", tenant=tenant, description="bench", permissions=["pipeline:view"], grants=[]
        )
        store.create_group(name=f"group{r:03d}", tenant=tenant, description="bench", roles=[f"role{r:03d}"])
    with mock.patch.object(passwords, "hash_password", lambda _password: hashed):
        for i in range(n):
            store.create_user(
                f"user{i:04d}", "unused", tenant=tenant, roles=["viewer"], groups=[f"group{i % max(n // 10, 1):03d}"]
            )

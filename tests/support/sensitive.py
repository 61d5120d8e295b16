"""A demo-like people table for sensitive-data detection: valid citizen IDs (GB 11643 check digit),
mobiles, names, addresses, beside a column of random 18-digit strings and a status column; created
in ClickHouse and recorded in the catalogue as a harvest of the sink's tables records it (the shape
of sinks/clickhouse/catalog.py; recorded directly, without a harvest job: the harvest itself is
tested in tests/test_clickhouse_catalog.py)."""

from __future__ import annotations

import random
from urllib.parse import urlparse

from quality_stream.standards.citizen_id import check_char

COLUMNS = {
    "id": "Int64",
    "name": "String",
    "id_number": "String",
    "phone": "String",
    "address": "String",
    "serial": "String",
    "status": "String",
}


def make_id(rng: random.Random) -> str:
    body = (
        f"{rng.choice(['370102', '110105', '440305'])}{rng.randint(1950, 2005)}"
        f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    )
    return body + check_char(body)


def people_table(settings, tenant: str, table: str, rows: int = 300) -> str:
    """Creates `table` and its catalogue entry in `tenant`; returns the dataset URN."""
    from deploy.control import engine_for
    from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
    from schemas.catalog.store import CatalogStore
    from schemas.catalog.urns import dataset_urn, host_namespace, system_urn
    from sinks.clickhouse import client_from_url

    rng = random.Random(5)
    values = [
        (
            i,
            rng.choice(["张", "李", "王", "欧阳"]) + rng.choice(["伟", "芳", "娜娜", "建国"]),
            make_id(rng),
            f"1{rng.choice('3589')}{rng.randint(0, 10**9 - 1):09d}",
            f"山东省济南市历下区泉城路{rng.randint(1, 300)}号",
            "".join(rng.choice("0123456789") for _ in range(18)),
            rng.choice(["已办结", "待审核"]),
        )
        for i in range(rows)
    ]
    client = client_from_url(settings.clickhouse_url)
    client.execute(
        f"CREATE TABLE {table} ({', '.join(f'{n} {t}' for n, t in COLUMNS.items())}) ENGINE = MergeTree ORDER BY id"
    )
    client.execute(f"INSERT INTO {table} VALUES", values)
    client.disconnect()
    address = urlparse(settings.clickhouse_url)
    namespace = host_namespace("clickhouse", f"{address.hostname}:{address.port}")
    urn = dataset_urn(namespace, f"default.{table}")
    fields = [FieldInfo(name=n, type=t, position=i + 1, key=n == "id") for i, (n, t) in enumerate(COLUMNS.items())]
    harvest = Harvest(
        system=SystemInfo(
            urn=system_urn(namespace, "default"),
            name="clickhouse default",
            kind="clickhouse",
            properties={"namespace": namespace, "database": "default"},
        ),
        datasets=[DatasetInfo(urn=urn, name=f"default.{table}", kind="sink_table", fields=fields)],
    )
    CatalogStore(engine_for(settings.resolved_control_db_url)).record(harvest, tenant)
    return urn


def drop_table(settings, table: str) -> None:
    from sinks.clickhouse import client_from_url

    client = client_from_url(settings.clickhouse_url)
    client.execute(f"DROP TABLE IF EXISTS {table}")
    client.disconnect()

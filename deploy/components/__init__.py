"""Components of the local stack (`huiliu stack`): one module per component."""

from deploy.components.base import Component, ComponentStatus, StackError
from deploy.components.broker import Broker
from deploy.components.clickhouse import ClickHouse
from deploy.components.external import Postgres, Redis
from deploy.components.objectstore import ObjectStore
from deploy.components.registry import SchemaRegistry

__all__ = [
    "Broker",
    "ClickHouse",
    "Component",
    "ComponentStatus",
    "ObjectStore",
    "Postgres",
    "Redis",
    "SchemaRegistry",
    "StackError",
]

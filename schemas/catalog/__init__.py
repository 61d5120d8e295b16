"""The metadata catalogue's domain: entity model, URNs, harvesters, versions, search, lineage.

Nothing here imports the layers above: connectors and sinks hand their engines and URLs to the
harvesters (connectors/catalog.py, sinks/clickhouse/catalog.py), the API only wires it up.
"""

from schemas.catalog.model import DatasetInfo, FieldInfo, Harvest, SystemInfo
from schemas.catalog.store import CatalogStore, NoSuchVersion, NotInCatalogue, Outcome
from schemas.catalog.urns import BadUrn, Urn, dataset_urn, job_urn, parse_urn, system_urn

__all__ = [
    "BadUrn",
    "CatalogStore",
    "DatasetInfo",
    "FieldInfo",
    "Harvest",
    "NoSuchVersion",
    "NotInCatalogue",
    "Outcome",
    "SystemInfo",
    "Urn",
    "dataset_urn",
    "job_urn",
    "parse_urn",
    "system_urn",
]

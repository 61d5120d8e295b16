"""HBase sink: change events -> one HBase table per target, one column family per source table."""

from .rowkey import row_key
from .settings import HBaseSinkSettings
from .task import HBaseSinkTask

__all__ = ["HBaseSinkSettings", "HBaseSinkTask", "row_key"]

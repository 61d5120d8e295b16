"""HDFS sink: change events as Avro or Parquet files, partitioned by table and date, over WebHDFS."""

from sinks.hdfs.settings import HdfsSinkSettings
from sinks.hdfs.task import HdfsSinkTask

__all__ = ["HdfsSinkSettings", "HdfsSinkTask"]

"""Big-data inputs (AGG-03): HDFS file copy, HBase table scan, Hive table read (PyHive; untested here).

HDFS to a topic is the file source with `store.kind: hdfs` (connectors.files.source).
"""

"""File sources (AGG-05): local, FTP, SFTP and HDFS directories; CSV/TSV, XML, Excel, JSON, fixed width.

See connectors/README.md ("Files, streams, big data") for tracking and quarantine rules.
"""

"""Real-time collection (AGG-04): socket listeners (TCP/UDP, syslog) and log-file tailing into Kafka."""

"""Connectors: sources that turn database tables, files and streams into change events on Kafka."""

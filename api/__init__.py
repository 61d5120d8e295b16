"""The thin FastAPI service: health, pipeline statistics (and later connectors, data services)."""

"""The thin FastAPI service: routes, authentication, permissions and audit over the domain modules (see README.md)."""

"""The web console under /console (api/console/): pages over this API, not part of its OpenAPI document."""

from __future__ import annotations

from api.console.routes import router

__all__ = ["router"]

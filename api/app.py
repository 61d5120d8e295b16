"""FastAPI application factory. Routers per resource (api/routers/*); every route is authorised."""
from __future__ import annotations

from fastapi import FastAPI

from api.auth import api_key_for
from api.routers import all_routers
from deploy.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="Huiliu", version="0.1.0", description="Streaming data integration and governance")
    app.state.settings = settings
    app.state.api_key = api_key_for(settings)
    for router in all_routers():
        app.include_router(router)
    return app

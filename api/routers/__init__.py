"""Each module here defines `router: fastapi.APIRouter`; api.app includes them all.

Modules are discovered, so features are added by adding a module, not by editing app.py.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    routers = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if isinstance(getattr(module, "router", None), APIRouter):
            routers.append(module.router)
    return routers

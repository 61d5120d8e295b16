"""HTTP routes: Confluent Schema Registry REST API (Avro subset) on FastAPI."""

from __future__ import annotations

import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import compat, errors
from .errors import RegistryError
from .parsing import SUPPORTED_TYPES
from .service import Registry
from .store import GLOBAL, Store, SubjectVersion

log = logging.getLogger("schemas.registry")
MEDIA_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryJSONResponse(JSONResponse):
    media_type = MEDIA_TYPE


def _error(status: int, code: int, message: str) -> RegistryJSONResponse:
    return RegistryJSONResponse({"error_code": code, "message": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    """Parse the body ourselves so any JSON-ish content type is accepted."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise RegistryError(400, 400, f"Malformed JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise RegistryError(422, 422, "Request body must be a JSON object")
    return body


def _version_json(v: SubjectVersion) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": v.subject, "version": v.version, "id": v.schema.id, "schema": v.schema.text}
    if v.schema.schema_type != "AVRO":  # Confluent omits the default type
        out["schemaType"] = v.schema.schema_type
    if v.schema.references:
        out["references"] = v.schema.references
    return out


def _level_from(body: dict[str, Any]) -> str:
    return compat.validate_level(body.get("compatibility", body.get("compatibilityLevel")))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def registry_error(_: Request, exc: RegistryError) -> Response:
        return _error(exc.http_status, exc.error_code, exc.message)

    @app.exception_handler(SQLAlchemyError)
    async def store_error(_: Request, exc: SQLAlchemyError) -> Response:
        log.exception("store failure")
        err = errors.store_error(f"Error in the backend data store: {type(exc).__name__}")
        return _error(err.http_status, err.error_code, err.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return _error(exc.status_code, exc.status_code, f"HTTP {exc.status_code} {exc.detail}")

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return _error(422, 422, f"Unprocessable request: {exc.errors()}")


def create_app(data_dir: Path) -> FastAPI:
    store = Store(Path(data_dir))
    reg = Registry(store)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        store.close()  # release the SQLite file cleanly on shutdown

    app = FastAPI(title="Huiliu Schema Registry", default_response_class=RegistryJSONResponse, lifespan=lifespan)
    app.state.registry = reg
    _install_error_handlers(app)
    # Handlers are `async def` on purpose: the store calls are short and
    # synchronous, so running them on the event loop serialises every request
    # (see service.py), which keeps register's check-then-append atomic.

    @app.get("/")
    async def root() -> dict:
        return {}

    # ---- schemas by id ---------------------------------------------------
    def _schema_or_404(schema_id: int):
        found = store.schema_by_id(schema_id)
        if found is None:
            raise errors.schema_not_found(f"Schema {schema_id} not found")
        return found

    @app.get("/schemas/types")
    async def schema_types() -> list[str]:
        return list(SUPPORTED_TYPES)

    @app.get("/schemas/ids/{schema_id}")
    async def schema_by_id(schema_id: int) -> dict:
        s = _schema_or_404(schema_id)
        out: dict[str, Any] = {"schema": s.text}
        if s.schema_type != "AVRO":
            out["schemaType"] = s.schema_type
        if s.references:
            out["references"] = s.references
        return out

    @app.get("/schemas/ids/{schema_id}/schema")
    async def raw_schema_by_id(schema_id: int) -> Response:
        return Response(_schema_or_404(schema_id).text, media_type=MEDIA_TYPE)

    @app.get("/schemas/ids/{schema_id}/versions")
    async def schema_versions(schema_id: int, deleted: bool = False) -> list[dict]:
        _schema_or_404(schema_id)
        return [{"subject": s, "version": v} for s, v in store.versions_of_schema(schema_id, deleted)]

    @app.get("/schemas/ids/{schema_id}/subjects")
    async def schema_subjects(schema_id: int, deleted: bool = False) -> list[str]:
        _schema_or_404(schema_id)
        return sorted({s for s, _ in store.versions_of_schema(schema_id, deleted)})

    # ---- subjects --------------------------------------------------------
    @app.get("/subjects")
    async def subjects(
        deleted: bool = False, deleted_only: bool = False, subjectPrefix: str = "", offset: int = 0, limit: int = -1
    ) -> list[str]:
        found = [s for s in store.subjects(deleted, deleted_only) if s.startswith(subjectPrefix)][offset:]
        return found if limit < 0 else found[:limit]

    @app.post("/subjects/{subject}/versions")
    async def register(subject: str, request: Request) -> dict:
        schema_id = reg.register(subject, await _body(request))
        log.info("registered schema id %s under subject %s", schema_id, subject)
        return {"id": schema_id}

    @app.post("/subjects/{subject}")
    async def lookup(subject: str, request: Request, deleted: bool = False) -> dict:
        return _version_json(reg.lookup(subject, await _body(request), deleted))

    @app.get("/subjects/{subject}/versions")
    async def list_versions(subject: str, deleted: bool = False) -> list[int]:
        return [v.version for v in reg.versions(subject, deleted)]

    @app.get("/subjects/{subject}/versions/{version}")
    async def get_version(subject: str, version: str, deleted: bool = False) -> dict:
        return _version_json(reg.version(subject, version, deleted))

    @app.get("/subjects/{subject}/versions/{version}/schema")
    async def get_version_schema(subject: str, version: str, deleted: bool = False) -> Response:
        return Response(reg.version(subject, version, deleted).schema.text, media_type=MEDIA_TYPE)

    @app.get("/subjects/{subject}/versions/{version}/referencedby")
    async def referenced_by(subject: str, version: str) -> list[int]:
        return reg.referenced_by(subject, version)

    @app.delete("/subjects/{subject}")
    async def delete_subject(subject: str, permanent: bool = False) -> list[int]:
        return reg.delete_subject(subject, permanent)

    @app.delete("/subjects/{subject}/versions/{version}")
    async def delete_version(subject: str, version: str, permanent: bool = False) -> int:
        return reg.delete_version(subject, version, permanent)

    # ---- compatibility ---------------------------------------------------
    def _compat_answer(ok: bool, messages: list[str], verbose: bool) -> dict:
        return {"is_compatible": ok, "messages": messages} if verbose else {"is_compatible": ok}

    @app.post("/compatibility/subjects/{subject}/versions/{version}")
    async def compatibility_one(subject: str, version: str, request: Request, verbose: bool = False) -> dict:
        ok, messages = reg.test_compatibility(subject, version, await _body(request))
        return _compat_answer(ok, messages, verbose)

    @app.post("/compatibility/subjects/{subject}/versions")
    async def compatibility_all(subject: str, request: Request, verbose: bool = False) -> dict:
        ok, messages = reg.test_compatibility(subject, None, await _body(request))
        return _compat_answer(ok, messages, verbose)

    # ---- config and mode ---------------------------------------------------
    @app.get("/config")
    async def get_global_config() -> dict:
        return {"compatibilityLevel": reg.level(GLOBAL)}

    @app.put("/config")
    async def put_global_config(request: Request) -> dict:
        level = _level_from(await _body(request))
        store.set_config(level, GLOBAL)
        return {"compatibility": level}

    @app.delete("/config")
    async def delete_global_config() -> dict:
        old = reg.level(GLOBAL)
        store.delete_config(GLOBAL)
        return {"compatibilityLevel": old}

    @app.get("/config/{subject}")
    async def get_subject_config(subject: str, defaultToGlobal: bool = False) -> dict:
        return {"compatibilityLevel": reg.subject_config(subject, defaultToGlobal)}

    @app.put("/config/{subject}")
    async def put_subject_config(subject: str, request: Request) -> dict:
        level = _level_from(await _body(request))
        store.set_config(level, subject)
        return {"compatibility": level}

    @app.delete("/config/{subject}")
    async def delete_subject_config(subject: str) -> dict:
        return {"compatibilityLevel": reg.delete_subject_config(subject)}

    @app.get("/mode")
    async def get_mode() -> dict:
        return {"mode": "READWRITE"}  # import/read-only modes are not supported

    @app.get("/mode/{subject}")
    async def get_subject_mode(subject: str) -> dict:
        return {"mode": "READWRITE"}

    return app

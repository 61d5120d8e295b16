"""Wiring of the data-service routes (api/routers/services.py and service_sharing.py): the stores
and clients they share, and the call routes' credential (an app key or a signed request's
headers, checked before any parameter). Domain logic stays in streams/dataservices."""

from __future__ import annotations

from functools import lru_cache

from fastapi import Header, HTTPException, Path, Request

from streams.dataservices.model import NAME
from streams.dataservices.serving import TokenBuckets, split_key
from streams.dataservices.store import ServiceStore

NamePath = Path(pattern=NAME, description="the service's name")


@lru_cache(maxsize=8)
def store_for(url: str, state_dir: str | None = None, redis_url: str | None = None) -> ServiceStore:
    """The API's store: grants and published versions cached per process, dropped in every process
    at once on a change (streams/dataservices/cache.py: a generation counter in Redis)."""
    from connectors.secrets import Vault
    from deploy.control import engine_for
    from streams.dataservices.cache import CachingServiceStore, Generation

    generation = Generation(buckets_for(redis_url).client) if redis_url else None
    # the vault seals signing secrets with the connector secrets' key (<state_dir>/connector_secrets.key)
    return CachingServiceStore(engine_for(url), Vault(state_dir) if state_dir else None, generation)


@lru_cache(maxsize=8)
def buckets_for(url: str) -> TokenBuckets:
    import redis

    return TokenBuckets(redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))


@lru_cache(maxsize=8)
def classifier(url: str):
    """scope, dataset URN -> {field: classification level} (a field's own, else its dataset's),
    read per call, the parsed levels kept while the catalogue row is unchanged."""
    from deploy.control import engine_for
    from streams.dataservices.cache import Classifier

    return Classifier(engine_for(url))


def service_store(request: Request) -> ServiceStore:
    settings = request.app.state.settings
    return store_for(settings.resolved_control_db_url, str(settings.state_dir), settings.redis_url)


SIGNED = ("x-app-key-id", "x-timestamp", "x-nonce", "x-signature")


async def app_credential(request: Request, x_app_key: str | None = Header(None, max_length=200)) -> dict:
    """The call route's credential, checked before its parameters: a call without an app key or
    a signed request's headers is 401 whatever else is wrong with it (a platform user's token is
    no credential here). Async: it only reads headers, so it runs on the event loop instead of
    costing every call a hop to a worker thread and back."""
    headers = request.headers
    if not x_app_key and any(h in headers for h in SIGNED):
        missing = [h for h in SIGNED if not headers.get(h)]
        if missing or any(len(headers[h]) > 200 for h in SIGNED):
            raise HTTPException(
                401,
                {
                    "message": f"a signed request needs the headers {', '.join(SIGNED)} (missing: {', '.join(missing)})",
                    "message_zh": f"签名请求需要请求头 {', '.join(SIGNED)}（缺少：{', '.join(missing)}）",
                },
                headers={"WWW-Authenticate": "X-Signature"},
            )
        return {"signed": {h.removeprefix("x-").replace("app-key-id", "key_id"): headers[h] for h in SIGNED}}
    if not x_app_key or split_key(x_app_key) is None:
        raise HTTPException(
            401,
            {
                "message": "an app key is required (X-App-Key: hls_...) or a signed request (X-Signature)",
                "message_zh": "需要应用密钥（X-App-Key: hls_...）或签名请求（X-Signature）",
            },
            headers={"WWW-Authenticate": "X-App-Key"},
        )
    return {"key": x_app_key}

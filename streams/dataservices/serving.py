"""Serving a published service to an application, with every check on every call.

    result = serve(store, clickhouse, limiter, key, name, version, params)   # -> {"rows": [...], ...}
    result = serve(..., signed={...}, client_ip="10.1.2.3", info={})          # signed request; info gets
                                                                              # scope, application, key_id
    raises CallRefused(status, message, message_zh, retry_after=None) for 401 / 403 / 404 / 422 / 429 / 503

The order of the checks: the credential (a plain app key: known, secret matching; or a signed
request, streams/dataservices/access.py: timestamp within the window, signature, nonce not seen;
an application uses the scheme it chose, never the other), not revoked, not expired, its scope
(this service and version, still published), the client's IP in the application's allowlist, the
application's rate limit (a Redis token bucket per key), its daily / monthly quota, the
query parameters (only declared filters and operators, required ones present, values of the
column's type, `limit` within the service's maximum), then the query: the granted fields only,
the application's row filter ANDed to the caller's filters, read through sinks/clickhouse/reader.py
(FINAL, parameterised, bounded), and the service's masking applied to what leaves. A service with a
`cache_ttl_s` reuses the masked rows of the same query, fields and masks for that long
(streams/dataservices/answers.py), after every check of the call.

Query parameters: `field=v` (eq), `field.in=a,b` (in), `field.gte=v` / `field.lte=v` (range),
`limit`, `offset`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from typing import Any

from clickhouse_driver.errors import Error as ClickHouseError
from redis.exceptions import RedisError

from sinks.clickhouse.reader import coerce, read_rows, table_columns, table_engine, table_keys
from streams.dataservices.access import Denied, Guard, check_expiry, check_ip, quota_denied
from streams.dataservices.answers import ANSWERS, answer_key
from streams.dataservices.model import NotFound
from streams.dataservices.store import ServiceStore, key_matches, split_key
from streams.transforms.masking import MaskPolicy

log = logging.getLogger(__name__)
MAX_OFFSET = 1_000_000
MAX_IN = 1000
SUFFIX_OPS = {"in": "in", "gte": "range", "lte": "range"}


class CallRefused(Exception):
    def __init__(self, status: int, message: str, message_zh: str, retry_after: float | None = None, **about):
        super().__init__(message)
        self.status, self.message, self.message_zh, self.retry_after, self.about = (
            status,
            message,
            message_zh,
            retry_after,
            about,
        )


# A token bucket in one Lua call: refill by elapsed time, take one token or say how long to wait.
_BUCKET = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', key, math.ceil(burst / rate) + 60)
return tostring(wait)
"""


# A counted call's admission in one round trip (the checks before it trusted this process's cache
# at generation ARGV[1]): the services' generation (KEYS[1]) still that one, else nothing is taken
# and {-1, generation} asks for fresh checks; then the token bucket (KEYS[2], as _BUCKET: {1, wait}
# when empty); then the daily and monthly quota counters (KEYS[3], KEYS[4], as access.py's _QUOTA:
# both or neither, {2, 1|2} when over the day's or the month's). {0, ""}: admitted.
_ADMIT = """
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
if gen ~= tonumber(ARGV[1]) then return {-1, tostring(gen)} end
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[2], math.ceil(burst / rate) + 60)
if wait > 0 then return {1, tostring(wait)} end
local qd = tonumber(ARGV[5])
local qm = tonumber(ARGV[6])
if qd > 0 or qm > 0 then
  local d = redis.call('INCR', KEYS[3])
  local m = redis.call('INCR', KEYS[4])
  if d == 1 then redis.call('EXPIRE', KEYS[3], 172800) end
  if m == 1 then redis.call('EXPIRE', KEYS[4], 2764800) end
  local over = 0
  if qd > 0 and d > qd then over = 1 elseif qm > 0 and m > qm then over = 2 end
  if over > 0 then
    redis.call('DECR', KEYS[3])
    redis.call('DECR', KEYS[4])
    return {2, tostring(over)}
  end
end
return {0, ''}
"""


TABLE_INFO_TTL_S = 5.0
_table_info: dict[tuple[str, str], tuple[float, dict[str, str], str]] = {}


def table_info(clickhouse, table: str) -> tuple[dict[str, str], str, frozenset[str]]:
    """A table's columns, engine and primary-key columns, remembered TABLE_INFO_TTL_S seconds per ClickHouse server and
    database (two system-table queries per call were most of a call's ClickHouse time); a column a
    schema change adds is served at most that much later. A missing table is never remembered."""
    conn = getattr(clickhouse, "connection", None)
    key = (
        repr((list(getattr(conn, "hosts", [])), getattr(conn, "database", None))) if conn else str(id(clickhouse)),
        table,
    )
    hit = _table_info.get(key)
    now = time.monotonic()
    if hit and now - hit[0] < TABLE_INFO_TTL_S:
        return hit[1], hit[2], hit[3]
    columns = table_columns(clickhouse, table)
    engine = table_engine(clickhouse, table) if columns else ""
    keys = table_keys(clickhouse, table) if columns else frozenset()
    if columns:
        if len(_table_info) > 10_000:
            _table_info.clear()
        _table_info[key] = (now, columns, engine, keys)
    return columns, engine, keys


class TokenBuckets:
    """Per-application rate limits in Redis (shared by every API process)."""

    def __init__(self, client, prefix: str = "huiliu:ds:bucket:"):
        self.client, self.prefix = client, prefix
        self._script = client.register_script(_BUCKET)
        self._admit = client.register_script(_ADMIT)
        self.guard = Guard(client)  # nonces and quotas, in the same Redis

    def take(self, key_id: str, rate: float, burst: int) -> float:
        """0 when a call may go ahead now, else the seconds until it may."""
        return float(self._script(keys=[self.prefix + key_id], args=[rate, burst, time.time()]))

    def admit(self, app: dict[str, Any], rate: float, burst: int, generation_key: str, generation: int):
        """One round trip: the generation still `generation`, a token, the quota (see _ADMIT)
        -> ("stale", generation now) | ("wait", seconds) | ("quota", 1 day | 2 month) | ("ok", None)."""
        now = time.time()
        key_id = app["key_id"]
        code, value = self._admit(
            keys=[generation_key, self.prefix + key_id, *self.guard.quota_keys(key_id, now)],
            args=[generation, rate, burst, now, app.get("quota_daily") or 0, app.get("quota_monthly") or 0],
        )
        value = value.decode() if isinstance(value, bytes) else value
        code = int(code)
        if code == -1:
            return "stale", int(value)
        if code == 1:
            return "wait", float(value)
        if code == 2:
            return "quota", int(value)
        return "ok", None


def authorise(
    store: ServiceStore,
    key: str | None,
    name: str,
    version: int,
    signed: dict | None = None,
    guard: Guard | None = None,
) -> tuple[str, dict[str, Any]]:
    """The application a call's credential names, checked; `signed` (access.py) instead of `key`
    for a signing application (then `guard` checks the nonce)."""
    if signed is not None:
        key_id = str(signed.get("key_id") or "")
        found = store.grant(key_id) if key_id else None
        if found is None:
            raise CallRefused(401, "unknown app key id", "应用密钥标识无效")
    else:
        parts = split_key(key or "")
        if parts is None:
            raise CallRefused(401, "an app key is required (X-App-Key: hls_...)", "需要应用密钥（X-App-Key: hls_...）")
        key_id = parts[0]
        found = store.grant(key_id)
        if found is None or not key_matches(found[2], parts[1]):
            raise CallRefused(401, "unknown app key", "应用密钥无效", key_id=key_id)
    scope, app, _ = found
    if app["status"] != "approved":
        raise CallRefused(401, f"the app key is {app['status']}", f"应用密钥已失效（{app['status']}）", key_id=key_id)
    try:
        check_expiry(app)
        if signed is None and app["auth"] == "hmac":
            raise Denied(
                401,
                "this application signs its requests (X-App-Key-Id, X-Timestamp, X-Nonce, X-Signature)",
                "该应用须使用签名请求（X-App-Key-Id、X-Timestamp、X-Nonce、X-Signature）",
            )
        if signed is not None:
            if app["auth"] != "hmac":
                raise Denied(
                    401, "this application uses a plain app key (X-App-Key)", "该应用使用应用密钥（X-App-Key）"
                )
            if guard is None:
                raise RuntimeError("signed requests need Redis for their nonces: pass guard=")
            guard.verify_signed(key_id, store.signing_secret(key_id), signed)
    except Denied as exc:
        raise CallRefused(
            exc.status, exc.message, exc.message_zh, key_id=key_id, application=app["application"]
        ) from None
    if (app["service"], app["version"]) != (name, version):
        raise CallRefused(
            403,
            f"the app key is for {app['service']} v{app['version']}, not {name} v{version}",
            f"该应用密钥仅可调用 {app['service']} v{app['version']}",
            application=app["application"],
        )
    return scope, app


def field_masks(spec, scope: str, granted: list[str], classify) -> dict[str, Any]:
    """The mask spec of every granted field that has one: named in the service's `masking`, else
    by its catalogue classification (`classification_masking`)."""
    masks = {f: m for f, m in spec.masking.items() if f in granted}
    if spec.classification_masking:
        masks |= _by_classification(spec, scope, granted, masks, classify)
    return masks


def _by_classification(spec, scope: str, granted: list[str], explicit: dict, classify) -> dict[str, Any]:
    """Masks for the granted fields the service does not mask by name, from their catalogue level.
    A catalogue entry that is gone refuses the call (503): refusing beats serving clear data."""
    try:
        levels = classify(scope, spec.dataset) if classify else None
    except LookupError:
        levels = None
    if levels is None:
        raise CallRefused(503, "the service's catalogue entry is not there", "服务对应的数据目录条目不存在")
    return {
        f: spec.classification_masking[levels[f]]
        for f in granted
        if f not in explicit and levels.get(f) in spec.classification_masking
    }


_policies: dict[str, MaskPolicy] = {}


def mask_policy(masking: dict[str, Any]) -> MaskPolicy:
    """The compiled masking of a field -> spec mapping, kept per process (a service's masks, and
    those its fields' classification levels give, are a handful of mappings; each compiles once)."""
    key = json.dumps(masking, sort_keys=True, default=str)
    policy = _policies.get(key)
    if policy is None:
        policy = MaskPolicy({"default": masking})
        if len(_policies) > 1000:
            _policies.clear()
        _policies[key] = policy
    return policy


def parse(spec, params: list[tuple[str, str]]) -> tuple[list[tuple[str, str, Any]], int, int]:
    declared = {f.field: f for f in spec.filters}
    where: list[tuple[str, str, Any]] = []
    seen: set[str] = set()
    limit, offset = spec.default_limit, 0
    for raw, value in params:
        if raw in seen:
            raise CallRefused(422, f"parameter {raw!r} given twice", f"参数 {raw!r} 重复")
        seen.add(raw)
        if raw in ("limit", "offset"):
            try:
                n = int(value)
            except ValueError:
                raise CallRefused(422, f"{raw} must be a whole number", f"{raw} 须为整数") from None
            top = spec.max_limit if raw == "limit" else MAX_OFFSET
            if n < (1 if raw == "limit" else 0) or n > top:
                raise CallRefused(422, f"{raw} must be within 0..{top}", f"{raw} 须在 0..{top} 之间")
            limit, offset = (n, offset) if raw == "limit" else (limit, n)
            continue
        field, _, suffix = raw.partition(".")
        op = SUFFIX_OPS.get(suffix, "eq") if suffix else "eq"
        if suffix and suffix not in SUFFIX_OPS:
            raise CallRefused(
                422, f"unknown operator {suffix!r} (in, gte, lte)", f"未知运算符 {suffix!r}（in、gte、lte）"
            )
        if field not in declared:
            raise CallRefused(422, f"{field!r} is not a filter of this service", f"{field!r} 不是本服务可用的过滤条件")
        if op not in declared[field].ops:
            raise CallRefused(422, f"filter {field!r} does not allow {op}", f"过滤条件 {field!r} 不支持 {op}")
        if op == "in":
            values = [v for v in value.split(",") if v != ""]
            if not values or len(values) > MAX_IN:
                raise CallRefused(422, f"{raw} takes 1..{MAX_IN} values", f"{raw} 需要 1..{MAX_IN} 个值")
            where.append((field, "in", values))
        else:
            where.append((field, suffix if op == "range" else "eq", value))
    missing = [f for f in declared.values() if f.required and f.field not in {w[0] for w in where}]
    if missing:
        names = [f.field for f in missing]
        raise CallRefused(422, f"required filters missing: {names}", f"缺少必填的过滤条件：{names}")
    return where, limit, offset


def serve(
    store: ServiceStore,
    clickhouse,
    buckets: TokenBuckets,
    key,
    name,
    version,
    params,
    classify=None,
    *,
    signed: dict | None = None,
    client_ip: str | None = None,
    info: dict | None = None,
) -> dict[str, Any]:
    """The rows a call may see (see the module's docstring); ClickHouse failing answers 503, not 500.
    `classify(scope, dataset_urn) -> {field: level}` reads the catalogue's field classification.
    `signed`: {key_id, timestamp, nonce, signature, method, path, query, body} of a signed request;
    `client_ip`: checked against the application's allowlist (an unknown one is outside any);
    `info`: filled with scope, application and key_id once known (for the call log)."""
    try:
        return _serve(store, clickhouse, buckets, key, name, version, params, classify, signed, client_ip, info)
    except RedisError as exc:  # the rate limits, quotas and nonces live there: no call without them
        log.warning("service %s v%s: Redis failed: %s", name, version, str(exc)[:300])
        raise CallRefused(
            503, "the rate limiter is not answering; retry later", "调用限流服务暂不可用，请稍后重试"
        ) from None
    except (ClickHouseError, OSError, EOFError) as exc:
        log.warning("service %s v%s: ClickHouse failed: %s", name, version, str(exc)[:300])
        raise CallRefused(503, "the data store is not answering; retry later", "数据存储暂不可用，请稍后重试") from None


def admit(store, buckets: TokenBuckets, key, name, version, signed, client_ip, count_call: bool = True, info=None):
    """The checks before any data: credential and application, the version published, the IP
    allowlist and, for a counted call, the rate limit and quota -> (scope, application, spec);
    CallRefused otherwise. `info` (the call log's) learns the application as soon as it is known.

    A counted plain-key call on the caching store (cache.py) first decides on the cache as of the
    generation this process saw last and validates it in the same Redis round trip that takes its
    token and quota (`_admit_pinned`); when the generation moved it is decided again as below, on
    fresh reads. Signed calls go the fresh way at once (their nonce must be spent only once)."""
    gen = store.seen_generation() if count_call and signed is None and hasattr(store, "pinned") else None
    if gen is not None:
        admitted = _admit_pinned(store, buckets, key, name, version, client_ip, info, gen)
        if admitted is not None:
            return admitted
    return _admit_fresh(store, buckets, key, name, version, signed, client_ip, count_call, info)


def _checks(store, buckets, key, name, version, signed, client_ip, info):
    """credential, application, version published, IP allowlist -> (scope, app, spec)."""
    scope, app = authorise(store, key, name, version, signed, buckets.guard)
    if info is not None:
        info.update(scope=scope, application=app["application"], key_id=app["key_id"])
    try:
        spec = store.published(scope, name, version)
    except NotFound:
        raise CallRefused(
            404, f"service {name} v{version} is not published", f"服务 {name} v{version} 未发布"
        ) from None
    try:
        check_ip(app, client_ip)
    except Denied as exc:
        raise CallRefused(exc.status, exc.message, exc.message_zh, application=app["application"]) from None
    return scope, app, spec


def _admit_pinned(store, buckets: TokenBuckets, key, name, version, client_ip, info, gen: int):
    """The checks on the cache as of generation `gen`, then one script validating `gen` while it
    takes the token and the quota; None when `gen` was no longer current (nothing was taken)."""
    try:
        with store.pinned(gen):
            scope, app, spec = _checks(store, buckets, key, name, version, None, client_ip, info)
    except CallRefused:
        if store.current_generation() == gen:
            raise  # decided on what is current
        return None  # perhaps on a stale cache: decide again
    outcome, value = buckets.admit(app, spec.rate_limit.rate, spec.rate_limit.burst, store.generation.key, gen)
    if outcome == "stale":
        store.saw(value)
        return None
    if outcome == "wait":
        raise CallRefused(
            429, "rate limit reached: retry later", "调用频率超限，请稍后重试", math.ceil(value),
            application=app["application"],
        )  # fmt: skip
    if outcome == "quota":
        exc = quota_denied(value, time.time())
        raise CallRefused(
            exc.status, exc.message, exc.message_zh, math.ceil(exc.retry_after), application=app["application"]
        )
    return scope, app, spec


def _one_generation_read(store):
    """A call's two lookups (grant, published version) trust one generation read at its start:
    one Redis GET a call, and nothing carried over from an earlier call."""
    gen = store.current_generation() if hasattr(store, "pinned") else None
    return store.pinned(gen) if gen is not None else nullcontext()


def _admit_fresh(store, buckets: TokenBuckets, key, name, version, signed, client_ip, count_call, info):
    with _one_generation_read(store):
        scope, app, spec = _checks(store, buckets, key, name, version, signed, client_ip, info)
    if not count_call:
        return scope, app, spec
    try:
        wait = buckets.take(app["key_id"], spec.rate_limit.rate, spec.rate_limit.burst)
        if wait > 0:
            raise Denied(429, "rate limit reached: retry later", "调用频率超限，请稍后重试", retry_after=wait)
        buckets.guard.take_quota(app)
    except Denied as exc:
        retry = math.ceil(exc.retry_after) if exc.retry_after else None
        raise CallRefused(exc.status, exc.message, exc.message_zh, retry, application=app["application"]) from None
    return scope, app, spec


def selection(spec, app, params, columns: dict[str, str]):
    """What a call reads: its filters and the application's row filter, typed to the table's
    columns, and the granted fields -> (where, granted, limit, offset); CallRefused 422 / 503."""
    where, limit, offset = parse(spec, params)
    where += [(field, "eq", value) for field, value in (app["row_filter"] or {}).items()]
    if not columns:
        raise CallRefused(503, "the service's table is not there", "服务的数据表不存在")
    typed = []
    for field, op, value in where:
        if field not in columns:
            raise CallRefused(503, f"the table has no column {field!r}", f"数据表没有列 {field!r}")
        try:
            typed.append(
                (field, op, [coerce(columns[field], v) for v in value] if op == "in" else coerce(columns[field], value))
            )
        except ValueError:
            raise CallRefused(
                422,
                f"{field!r}: a value of type {columns[field]} expected",
                f"{field!r} 的取值类型应为 {columns[field]}",
            ) from None
    granted = [f for f in spec.fields if f in set(app["fields_granted"])]
    missing = [f for f in granted + spec.sort if f not in columns]
    if missing:
        raise CallRefused(503, f"the table has no columns {missing}", f"数据表缺少列 {missing}")
    return typed, granted, limit, offset


def _serve(store, clickhouse, buckets: TokenBuckets, key, name, version, params, classify, signed, client_ip, info):
    scope, app, spec = admit(store, buckets, key, name, version, signed, client_ip, info=info)
    columns, engine, keys = table_info(clickhouse, spec.resource.table)
    typed, granted, limit, offset = selection(spec, app, params, columns)
    masking = field_masks(spec, scope, granted, classify)
    kept = answer_key(scope, name, version, typed, granted, limit, offset, masking) if spec.cache_ttl_s else None
    rows = ANSWERS.get(kept) if kept else None
    if info is not None and kept:
        info["cache"] = "miss" if rows is None else "hit"
    if rows is None:
        rows = read_rows(
            clickhouse,
            spec.resource.table,
            columns,
            select=granted,
            where=typed,
            order_by=spec.sort or granted[:1],
            limit=limit,
            offset=offset,
            timeout_s=spec.timeout_s,
            max_rows=spec.max_limit,
            engine=engine,
            keys=keys,
        )
        if masking:
            rows = mask_policy(masking).mask_rows(rows, "default")
        if kept:
            ANSWERS.put(kept, rows, spec.cache_ttl_s)
    return {
        "service": name,
        "version": version,
        "application": app["application"],
        "limit": limit,
        "offset": offset,
        "count": len(rows),
        "rows": rows,
    }

"""Access controls of an application beyond its key: signed requests, IP allowlist, quota, expiry.

    canonical(method, path, query_pairs, timestamp, nonce, body) -> the text an application signs
    sign(secret, method, path, query_pairs, timestamp, nonce, body=b"") -> hex HMAC-SHA256
    guard = Guard(redis_client)
    guard.verify_signed(app, secret, signed)   # window, signature, nonce once (401 reasons otherwise)
    guard.check_ip(app, client_ip)             # 403 outside the CIDRs
    guard.take_quota(app)                      # 429 + Retry-After until the period resets
    check_expiry(app)                          # 401 once expires_at has passed

Signed requests (the application's choice, `auth: "hmac"`): headers `X-App-Key-Id`, `X-Timestamp`
(Unix seconds), `X-Nonce` (8..64 of A-Z a-z 0-9 _ -), `X-Signature` (hex HMAC-SHA256 with the
secret issued at approval over the canonical text: method, path, the query pairs sorted and
percent-encoded, the timestamp, the nonce and the SHA-256 of the body, one per line). A timestamp
more than WINDOW_S away from the server's clock is refused, and a nonce is remembered in Redis for
twice the window, so a replay within the window is refused and one after it is stale.

Quotas count calls per application per day and per month in Redis (China Standard Time, UTC+8:
the departments' working day); a call over either answers 429 with Retry-After = seconds to the
reset and is not counted.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

WINDOW_S = 300
NONCE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
CST = timezone(timedelta(hours=8))


def canonical(method: str, path: str, query: list[tuple[str, str]], timestamp: str, nonce: str, body: bytes) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query)
    return "\n".join(
        [
            method.upper(),
            path,
            "&".join(f"{k}={v}" for k, v in pairs),
            str(timestamp),
            nonce,
            hashlib.sha256(body or b"").hexdigest(),
        ]
    )


def sign(secret: str, method: str, path: str, query, timestamp, nonce: str, body: bytes = b"") -> str:
    text = canonical(method, path, list(query), str(timestamp), nonce, body)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signed_headers(key_id: str, secret: str, method: str, path: str, query, body: bytes = b"") -> dict[str, str]:
    """The headers of a signed request now (for clients, the benchmark and the tests)."""
    import secrets

    ts, nonce = str(int(time.time())), secrets.token_urlsafe(12)
    return {
        "X-App-Key-Id": key_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign(secret, method, path, query, ts, nonce, body),
    }


def parse_cidrs(values: list[str] | None) -> list[str]:
    """Normalised CIDRs; ValueError naming the first that is not one."""
    out = []
    for v in values or []:
        try:
            out.append(str(ipaddress.ip_network(str(v).strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR: {v!r}") from None
    return out


def period_reset(now: float, monthly: bool) -> float:
    """Seconds from `now` to the start of the next day (or month) in China Standard Time."""
    t = datetime.fromtimestamp(now, CST)
    if monthly:
        nxt = (t.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + timedelta(days=32)).replace(day=1)
    else:
        nxt = t.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return nxt.timestamp() - now


def period_ids(now: float) -> tuple[str, str]:
    t = datetime.fromtimestamp(now, CST)
    return t.strftime("%Y%m%d"), t.strftime("%Y%m")


# Count one call in both periods, or neither when either is over its quota: {0|1|2, day, month}.
_QUOTA = """
local d = redis.call('INCR', KEYS[1])
local m = redis.call('INCR', KEYS[2])
if d == 1 then redis.call('EXPIRE', KEYS[1], 172800) end
if m == 1 then redis.call('EXPIRE', KEYS[2], 2764800) end
local qd = tonumber(ARGV[1])
local qm = tonumber(ARGV[2])
local over = 0
if qd > 0 and d > qd then over = 1 elseif qm > 0 and m > qm then over = 2 end
if over > 0 then
  d = redis.call('DECR', KEYS[1])
  m = redis.call('DECR', KEYS[2])
end
return {over, d, m}
"""


class Denied(Exception):
    """A refusal of the access controls; serving turns it into CallRefused."""

    def __init__(self, status: int, message: str, message_zh: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message, self.message_zh, self.retry_after = status, message, message_zh, retry_after


class Guard:
    """The checks that need Redis (nonces, quota counters), shared by every API process."""

    def __init__(self, client, prefix: str = "huiliu:ds:"):
        self.client, self.prefix = client, prefix
        self._quota = client.register_script(_QUOTA)

    def verify_signed(self, key_id: str, secret: str | None, signed: dict[str, Any], now: float | None = None) -> None:
        now = time.time() if now is None else now
        if not secret:
            raise Denied(401, "this application does not sign its requests", "该应用未启用签名认证")
        try:
            ts = int(signed["timestamp"])
        except (TypeError, ValueError):
            raise Denied(401, "X-Timestamp must be Unix seconds", "X-Timestamp 须为 Unix 秒数") from None
        if abs(now - ts) > WINDOW_S:
            raise Denied(
                401,
                f"the request's timestamp is more than {WINDOW_S} s from the server's clock",
                f"请求时间戳与服务器时间相差超过 {WINDOW_S} 秒",
            )
        nonce = signed.get("nonce") or ""
        if not NONCE.match(nonce):
            raise Denied(401, "X-Nonce must be 8..64 of A-Z a-z 0-9 _ -", "X-Nonce 须为 8..64 位字母、数字、_ 或 -")
        expected = sign(
            secret, signed["method"], signed["path"], signed["query"], signed["timestamp"], nonce, signed["body"]
        )
        if not hmac.compare_digest(expected, (signed.get("signature") or "").lower()):
            raise Denied(401, "the signature does not match the request", "签名与请求不符")
        if not self.client.set(f"{self.prefix}nonce:{key_id}:{nonce}", b"1", nx=True, ex=2 * WINDOW_S):
            raise Denied(401, "this nonce was used already (a replayed request)", "该 nonce 已使用过（重放请求）")

    def take_quota(self, app: dict[str, Any], now: float | None = None) -> dict[str, int]:
        daily, monthly = app.get("quota_daily") or 0, app.get("quota_monthly") or 0
        if not (daily or monthly):
            return {}
        now = time.time() if now is None else now
        over, day, month = self._quota(keys=self.quota_keys(app["key_id"], now), args=[daily, monthly])
        if over:
            raise quota_denied(int(over), now)
        return {"day": int(day), "month": int(month)}

    def quota_keys(self, key_id: str, now: float) -> list[str]:
        day, month = period_ids(now)
        return [f"{self.prefix}quota:{key_id}:d:{day}", f"{self.prefix}quota:{key_id}:m:{month}"]

    def quota_used(self, key_id: str, now: float | None = None) -> dict[str, int]:
        values = self.client.mget(self.quota_keys(key_id, time.time() if now is None else now))
        return {"day": int(values[0] or 0), "month": int(values[1] or 0)}


def quota_denied(over: int, now: float) -> Denied:
    """The refusal of a call over its daily (`over` 1) or monthly (2) quota."""
    what = "monthly" if over == 2 else "daily"
    return Denied(
        429,
        f"the application's {what} quota is used up; it resets at the start of the next "
        f"{'month' if over == 2 else 'day'} (UTC+8)",
        f"应用的{'月' if over == 2 else '日'}调用配额已用完，将于下一{'月' if over == 2 else '日'}（北京时间）重置",
        retry_after=period_reset(now, over == 2),
    )


def check_ip(app: dict[str, Any], client_ip: str | None) -> None:
    allowed = app.get("ip_allowlist") or []
    if not allowed:
        return
    try:
        ip = ipaddress.ip_address(client_ip or "")
    except ValueError:
        ip = None
    if ip is None or not any(ip in ipaddress.ip_network(c, strict=False) for c in allowed):
        raise Denied(
            403,
            f"calls from {client_ip} are not in the application's IP allowlist",
            f"来源地址 {client_ip} 不在应用的 IP 白名单内",
        )


def check_expiry(app: dict[str, Any], now: float | None = None) -> None:
    expires = app.get("expires_at")
    if expires is not None and (time.time() if now is None else now) >= expires:
        when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise Denied(401, f"the application's credential expired at {when}", f"应用凭证已于 {when} 过期")

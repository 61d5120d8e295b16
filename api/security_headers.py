"""Security headers on every response (pure ASGI, so also on errors and the audit's 503).

- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`;
- `Cache-Control: no-store` unless the route set its own (tokens, user lists, audit entries: nothing
  the API answers belongs in a shared or browser cache);
- `Content-Security-Policy`: `default-src 'none'` with no framing for everything; the interactive
  docs (/docs, /redoc: HTML loading Swagger UI / ReDoc from their CDN) get a policy allowing just that.
"""

from __future__ import annotations

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "connect-src 'self'; worker-src blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
DOCS = {"/docs", "/docs/oauth2-redirect", "/redoc"}
_FIXED = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_FIXED_NAMES = {name for name, _ in _FIXED}
_STRICT, _DOCS = STRICT_CSP.encode(), DOCS_CSP.encode()


class SecurityHeadersMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = _DOCS if scope["path"] in DOCS else _STRICT

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _FIXED_NAMES]
                names = {k.lower() for k, _ in headers}
                headers += _FIXED
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", csp))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)

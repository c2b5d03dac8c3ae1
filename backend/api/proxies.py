"""Whose word counts for the client's address: `X-Forwarded-For` / `-Proto` / `-Host` are believed only
from the proxies in `STUDIO_TRUSTED_PROXIES` (none by default), so a caller cannot put another address
into the access log or into the rate limiter's per-address budget.

uvicorn's own `ProxyHeadersMiddleware` does the parsing; uvicorn is run with `proxy_headers=False`
(`SERVER_OPTIONS`, used by `studio up|api`), since by default it believes any client on 127.0.0.1 — on a
laptop that is every client, a rebound web page included.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from backend.api.guards import FORWARDED_BY_PROXY

SERVER_OPTIONS = {"proxy_headers": False, "server_header": False}  # for uvicorn.run / uvicorn.Config


class TrustedProxies(ProxyHeadersMiddleware):
    """uvicorn's proxy headers, from `trusted` peers only (addresses, networks, or literal names); marks
    such requests in `scope["state"]` so `X-Forwarded-Host` may count for the same-origin check."""

    def __init__(self, app: ASGIApp, trusted: list[str]):
        super().__init__(app, trusted_hosts=trusted)
        self.enabled = bool(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        if peer and peer[0] in self.trusted_hosts:
            scope.setdefault("state", {})[FORWARDED_BY_PROXY] = True
        await super().__call__(scope, receive, send)

"""`RateLimit`: requests per API key (per client address with auth off, or without a key), from
`STUDIO_RATE_LIMIT` (`limits` syntax, `600/minute` by default, `off` disables). Past it: 429 in OpenAI's
envelope (`rate_limit_exceeded`) with `Retry-After` (seconds) and OpenAI's `x-ratelimit-*` headers.

`/healthz` (probes) and a job's event stream (one long request; the dashboard reconnects it) are never
counted. The `limits` library keeps a moving window per caller in memory: budgets are per API process.
The client address is the peer's, or `X-Forwarded-For` from a trusted proxy only (`proxies.py`).
"""

from __future__ import annotations

import math
import re
import time

from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.deps import PRINCIPAL_STATE
from backend.api.errors import error_response
from backend.api.guards import QUERY_KEY_PATHS

EVENT_STREAM = QUERY_KEY_PATHS[0]
EXEMPT = (re.compile(r"/healthz"), EVENT_STREAM)


class RateLimit:
    """429 once a caller has used up any of `limits` (an empty list: no limit)."""

    def __init__(self, app: ASGIApp, limits: list[RateLimitItem]):
        self.app, self.limits = app, limits
        self.limiter = MovingWindowRateLimiter(MemoryStorage()) if limits else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.limits or scope["type"] != "http" or any(p.fullmatch(scope["path"]) for p in EXEMPT):
            await self.app(scope, receive, send)
            return
        principal = scope.get("state", {}).get(PRINCIPAL_STATE)  # set by `keyfirst.KeyFirst` (auth on, /v1)
        key_id = principal.key_id if principal is not None else None
        caller = f"key:{key_id}" if key_id else f"addr:{(scope.get('client') or ('unknown',))[0]}"
        for item in self.limits:
            if not self.limiter.hit(item, caller):
                await self._refuse(item, caller, "API key" if key_id else "client address")(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refuse(self, item: RateLimitItem, caller: str, who: str):
        reset_at, _remaining = self.limiter.get_window_stats(item, caller)
        wait = max(1, math.ceil(reset_at - time.time()))
        message = (f"Rate limit reached: {item} for this {who} (STUDIO_RATE_LIMIT). Retry after {wait} s, "
                   "or ask the studio's admin for a higher limit.")
        return error_response(429, message, code="rate_limit_exceeded", headers={
            "Retry-After": str(wait), "x-ratelimit-limit-requests": str(item.amount),
            "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": f"{wait}s"})

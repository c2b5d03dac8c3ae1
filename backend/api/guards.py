"""ASGI middleware that hardens every request before it reaches a route.

- `QueryKey`: the two GET endpoints a browser opens without `fetch` — a job's event stream (EventSource
  cannot set headers) and an adapter download (a plain link) — may carry the API key as `?api_key=`. It
  is moved into an `Authorization: Bearer` header there. On every path it is removed from the query
  string before anything (routes, the access log) sees the URL, elsewhere it is ignored, and a request that
  carried one is never answered with a redirect (404 instead), so it cannot reach a `Location` header.
- `SameOriginWrites`: a browser's cross-site POST/PUT/PATCH/DELETE (its `Origin` names another scheme,
  host or port) is refused with 403 unless that origin is in `STUDIO_CORS_ORIGINS`. A page on another site cannot then
  make a logged-in dashboard, or a studio on 127.0.0.1 with auth off, upload or cancel anything.
  Requests without `Origin` (curl, SDKs) are not affected.

- `BodyLimit`: a request body over `STUDIO_MAX_REQUEST_BYTES` is refused with 413 — at once when its
  `Content-Length` says so, else as soon as the bytes read pass the limit. Uploads (`POST /v1/files`) are
  exempt: `uploads.py` streams them to disk under their own cap, `STUDIO_MAX_UPLOAD_BYTES`.

CORS itself is Starlette's `CORSMiddleware`, installed only when `STUDIO_CORS_ORIGINS` names origins:
by default no CORS header is sent, so browsers keep other sites from reading any answer.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import error_response

QUERY_KEY_PATHS = (re.compile(r"/v1/fine_tuning/jobs/[^/]+/events/stream"),
                   re.compile(r"/v1/adapters/[^/]+/versions/[^/]+/download"))
QUERY_KEY_PARAM = "api_key"
QUERY_KEY_DOC = {"parameters": [{
    "name": QUERY_KEY_PARAM, "in": "query", "required": False, "schema": {"type": "string"},
    "description": "The API key, for clients that cannot set `Authorization` (EventSource, a link). Removed from "
                   "the URL before it is logged."}]}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
FORWARDED_BY_PROXY = "forwarded_by_trusted_proxy"  # scope["state"] flag set by proxies.TrustedProxies


class QueryKey:
    """`?api_key=` → `Authorization: Bearer` on `QUERY_KEY_PATHS`; scrubbed from every URL; never redirected."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        # parsed, not searched: `api%5Fkey=` is the same parameter to the router and to the person reading logs
        pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        keys = [v for k, v in pairs if k == QUERY_KEY_PARAM]
        if not keys:
            await self.app(scope, receive, send)
            return
        # In place, on every path: uvicorn's access log reads this same scope dict after the response.
        scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != QUERY_KEY_PARAM]).encode("ascii")
        if scope["method"] in ("GET", "HEAD") and any(p.fullmatch(scope["path"]) for p in QUERY_KEY_PATHS):
            headers = list(scope["headers"])
            if not any(k == b"authorization" for k, _ in headers) and keys[-1]:
                # keys are ASCII; anything else still travels (as UTF-8) and is refused as an invalid key
                headers.append((b"authorization", f"Bearer {keys[-1]}".encode()))
            scope["headers"] = headers
        await self.app(scope, receive, _no_redirect(scope, receive, send))


def _no_redirect(scope: Scope, receive: Receive, send: Send) -> Send:
    """A `send` that turns a redirect (Starlette's trailing-slash one) into a 404: a URL that carried a key
    is never echoed into a `Location`, whose host comes from the request."""
    replaced = False

    async def guarded(message: Message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
            replaced = True
            response = error_response(404, f"Invalid URL ({scope['method']} {scope['path']}): a URL that carries "
                                           f"{QUERY_KEY_PARAM} is never redirected; use the exact path (no trailing "
                                           "slash), or send the key as `Authorization: Bearer`.", code="unknown_url")
            await response(scope, receive, send)
        elif not replaced:
            await send(message)

    return guarded


DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, authority: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin, the default port filled in; None when malformed."""
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, (parts.hostname or "").lower(), port) if parts.hostname else None


def _origin_of_url(url: str) -> tuple[str, str, int] | None:
    scheme, _, rest = url.partition("://")
    return _origin(scheme.lower(), rest.split("/", 1)[0]) if rest else None


class SameOriginWrites:
    """403 for a browser write whose `Origin` (scheme, host and port) is neither this studio's own nor an
    allowed CORS origin. Its own: the request's scheme and `Host`, plus `X-Forwarded-Host` when a trusted
    proxy sent it (`proxies.TrustedProxies`, which also sets the scheme from `X-Forwarded-Proto`)."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]):
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}

    def _allowed(self, origin: str, scope: Scope) -> bool:
        if origin.rstrip("/") in self.allowed or "*" in self.allowed:
            return True
        headers = Headers(scope=scope)
        names = [headers.get("host", "")]
        if scope.get("state", {}).get(FORWARDED_BY_PROXY):
            names.append(headers.get("x-forwarded-host", "").split(",")[0])
        own = {_origin(scope.get("scheme", "http"), name.strip()) for name in names} - {None}
        return _origin_of_url(origin.strip()) in own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            origin = Headers(scope=scope).get("origin")
            if origin is not None and not self._allowed(origin, scope):
                response = error_response(403, f"Cross-origin request from {origin} refused: only this studio's own "
                                               "pages (or origins in STUDIO_CORS_ORIGINS) may change it.",
                                          code="cross_origin_refused")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised while a route reads its body (an HTTPException, so FastAPI's body parsing passes it on to the
    envelope handler in `errors.py` instead of turning it into a 400)."""

    def __init__(self) -> None:
        super().__init__(413, "request body too large")


class BodyLimit:
    """413 for a request body over `max_bytes` (except `exempt` (method, path) pairs)."""

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: tuple[tuple[str, str], ...] = (("POST", "/v1/files"),)):
        self.app, self.max_bytes, self.exempt = app, max_bytes, exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"].rstrip("/")) in self.exempt:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await too_large_response(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


def too_large_message(max_bytes: int) -> str:
    return (f"The request body is too large: the limit is {max_bytes} bytes; set STUDIO_MAX_REQUEST_BYTES to "
            "change it (file uploads have their own, STUDIO_MAX_UPLOAD_BYTES).")


def too_large_response(max_bytes: int):
    return error_response(413, too_large_message(max_bytes), code="request_too_large")

"""ASGI middleware that hardens every request before it reaches a route.

- `QueryKey`: the two GET endpoints a browser opens without `fetch` — a job's event stream (EventSource
  cannot set headers) and an adapter download (a plain link) — may carry the API key as `?api_key=`. It
  is moved into an `Authorization: Bearer` header and removed from the query string before anything
  (routes, the access log) sees the URL. Everywhere else a query `api_key` is ignored.
- `SameOriginWrites`: a browser's cross-site POST/PUT/PATCH/DELETE (its `Origin` names another host) is
  refused with 403 unless that origin is in `STUDIO_CORS_ORIGINS`. A page on another site cannot then
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


class QueryKey:
    """`?api_key=` → `Authorization: Bearer`, on `QUERY_KEY_PATHS` only (and always scrubbed there)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope.get("query_string") \
                and any(p.fullmatch(scope["path"]) for p in QUERY_KEY_PATHS):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            keys = [v for k, v in pairs if k == QUERY_KEY_PARAM]
            if keys:
                # In place: uvicorn's access log reads this same scope dict after the response.
                scope["query_string"] = urlencode([(k, v) for k, v in pairs if k != QUERY_KEY_PARAM]).encode("ascii")
                headers = [(k, v) for k, v in scope["headers"]]
                if not any(k == b"authorization" for k, _ in headers) and keys[-1]:
                    # keys are ASCII; anything else still travels (as UTF-8) and is refused as an invalid key
                    headers.append((b"authorization", f"Bearer {keys[-1]}".encode("utf-8")))
                scope["headers"] = headers
        await self.app(scope, receive, send)


def _authority(url: str) -> str:
    """`host[:port]` of a URL or of `//host:port`, lower-case, without the default ports 80 and 443."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = (parts.hostname or "").lower()
    return host if port in (None, 80, 443) else f"{host}:{port}"


class SameOriginWrites:
    """403 for a browser write whose `Origin` is neither this host nor an allowed CORS origin."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]):
        self.app = app
        self.allowed = {o.rstrip("/") for o in allowed_origins}

    def _allowed(self, origin: str, headers: Headers) -> bool:
        if origin.rstrip("/") in self.allowed or "*" in self.allowed:
            return True
        own = {_authority(f"//{headers.get(name, '').strip()}") for name in ("host", "x-forwarded-host")}
        return _authority(origin) in own - {""}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._allowed(origin, headers):
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

"""`KeyFirst`: with auth on, a `/v1` request's API key is checked before anything reads its body, so an
anonymous caller learns nothing about what the API would have made of it (401, never a 422 or a 400) and
costs no body parsing. The caller is left in `scope["state"]` for `deps.get_principal` (one lookup per
request) and for the rate limiter's per-key budget (by its key id).
"""

from __future__ import annotations

from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.api.deps import PRINCIPAL_STATE, principal_of
from backend.api.errors import APIError, api_error_response
from backend.db.session import Database
from backend.services.auth import Principal


def bearer_credentials(authorization: str | None) -> HTTPAuthorizationCredentials | None:
    """`Authorization: Bearer <key>` as FastAPI's `HTTPBearer(auto_error=False)` reads it."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


class KeyFirst:
    """401 in the envelope for a `/v1` request without a live key (auth on only), before the route runs."""

    def __init__(self, app: ASGIApp, db: Database, enabled: bool):
        self.app, self.db, self.enabled = app, db, enabled

    def _check(self, credentials: HTTPAuthorizationCredentials | None) -> Principal:
        with self.db.session() as session:  # closed at once: no pool connection is held for the request
            return principal_of(session=session, credentials=credentials)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if not self.enabled or scope["type"] != "http" or not (path == "/v1" or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        credentials = bearer_credentials(Headers(scope=scope).get("authorization"))
        try:
            principal = await run_in_threadpool(self._check, credentials)
        except APIError as exc:
            await api_error_response(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal
        await self.app(scope, receive, send)

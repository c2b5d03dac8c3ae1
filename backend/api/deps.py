"""Dependencies as `Annotated` aliases: `SessionDep`, `SettingsDep`, `CurrentPrincipal`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.session import Database
from backend.services.auth import LOCAL, Principal, authenticate
from backend.settings import Settings

bearer = HTTPBearer(auto_error=False, description="An API key from `studio keys create` (team mode only).")


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (not re-read from the environment)."""
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    """One session per request; services commit. It is closed as soon as the route function has returned
    (`scope="function"` below), before a streamed body is sent: an open event stream or a slow download
    must not hold one of the pool's few connections (pool 5 + overflow 10) for its whole life."""
    with get_db(request).session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def unauthorized(message: str, code: str) -> APIError:
    return APIError(401, message, code=code, headers={"WWW-Authenticate": "Bearer"})


PRINCIPAL_STATE = "principal"  # scope["state"]: the caller, once `keyfirst.KeyFirst` has checked the key


def get_principal(request: Request, settings: SettingsDep, session: SessionDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """Who is calling: with auth off everyone is `LOCAL` (an admin); with auth on, the owner of the
    `Authorization: Bearer` key, else 401. Every `/v1` router depends on this (see `create_app`); the
    `KeyFirst` middleware has usually checked the key already, before the body was read."""
    if not settings.auth_enabled:
        return LOCAL
    checked = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if checked is not None:
        return checked
    return principal_of(session=session, credentials=credentials)


def principal_of(*, session: Session, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The owner of a bearer key, or a 401 `APIError` (missing, unknown or revoked key)."""
    if credentials is None:
        raise unauthorized("Missing API key: send it as `Authorization: Bearer <key>` (`studio keys create` "
                           "makes one).", "missing_api_key")
    principal = authenticate(session=session, key=credentials.credentials)
    if principal is None:
        raise unauthorized("Invalid API key: it is unknown or was revoked.", "invalid_api_key")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]

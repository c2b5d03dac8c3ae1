"""Dependencies as `Annotated` aliases: `SessionDep`, `SettingsDep`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.db.session import Database
from backend.settings import Settings


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (not re-read from the environment)."""
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, closed afterwards; services commit."""
    with get_db(request).session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]

"""Cursor pagination shared by every list endpoint: newest first, `after` = the last id already seen."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

Row = TypeVar("Row")


def newest_first(session: Session, model: type[Row], *, after: str | None, limit: int,
                 where: tuple[Any, ...] = ()) -> tuple[list[Row], bool]:
    """One page and whether more follow. Ids sort by creation time, so a deleted cursor still works."""
    query = select(model).where(*where).order_by(model.id.desc()).limit(limit + 1)
    if after:
        query = query.where(model.id < after)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit

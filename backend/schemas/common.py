"""Shapes every resource shares: OpenAI's error envelope and cursor-paginated lists."""

from __future__ import annotations

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error envelope: every 4xx/5xx body has this shape."""

    error: ErrorDetail


class ListPage(BaseModel, Generic[T]):
    """`{"object": "list", "data": [...], "has_more"}`; pass the last id as `after` for the next page."""

    object: Literal["list"] = "list"
    data: list[T]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    @classmethod
    def of(cls, items: list[T], *, has_more: bool, id_of=lambda item: item.id) -> "ListPage[T]":
        return cls(data=items, has_more=has_more, first_id=id_of(items[0]) if items else None,
                   last_id=id_of(items[-1]) if items else None)

"""File (dataset) objects as OpenAI's files API returns them, plus the studio's dataset fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from backend.schemas.common import ListPage

FILE_PURPOSES = ("fine-tune",)


class FileObject(BaseModel):
    """An uploaded, validated dataset."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str
    format: str  # chat | prompt_completion | alpaca | text | preference
    num_examples: int
    sha256: str
    token_stats: dict[str, Any] | None = None  # {"char_stats": {count, mean, p50, p95, max, histogram, …}}
    owner: str | None = None  # the user who uploaded it (team mode; `local` with auth off)
    team: str | None = None  # who may see it (team mode)


class FileList(ListPage[FileObject]):
    """A page of files, newest first."""


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True

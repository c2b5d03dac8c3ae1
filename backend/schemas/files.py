"""File (dataset) objects as OpenAI's files API returns them, plus the studio's dataset fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    file_format: str | None = None  # the container: jsonl | json | csv | parquet | txt
    num_examples: int
    sha256: str
    # tokens per example with the default base's tokenizer: {model, count, mean, p50, p95, max, min, total,
    # histogram: {edges, counts}, sampled (counted on the first 10,000 examples only), char_stats: {the same
    # in characters, over every example}}
    token_stats: dict[str, Any] | None = None
    column_mapping: dict[str, str] | None = Field(
        default=None, description="How the file's columns were read: studio field -> the file's column (given at "
                                  "upload or detected, e.g. {\"messages\": \"conversations\"} for ShareGPT); "
                                  "null when the columns already had the studio's names.")
    owner: str | None = None  # the user who uploaded it (team mode; `local` with auth off)
    team: str | None = None  # who may see it (team mode)


class FileList(ListPage[FileObject]):
    """A page of files, newest first."""


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class FileTokenStats(BaseModel):
    """Tokens per example of a file with one base model's tokenizer, and what `max_seq_length` would cut."""

    object: Literal["file.token_stats"] = "file.token_stats"
    file_id: str
    model: str
    count: int
    total: int
    mean: float
    p50: int
    p95: int
    max: int
    min: int
    histogram: dict[str, list[int]]
    sampled: bool = False  # counted on up to 20,000 examples spread evenly over a bigger file
    max_seq_length: int | None = None
    truncated: int | None = None  # examples longer than max_seq_length tokens
    truncated_share: float | None = None  # truncated / count

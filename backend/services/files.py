"""Datasets: validate an upload with the training core's reader, store it under its id, list, delete.

A file is kept only after `read_dataset` accepts it; the stored name is `files/<id>.<container>`, the
client's filename is display metadata only.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.ids import new_id
from backend.db.models import File
from backend.schemas.files import FILE_PURPOSES
from backend.services.auth import Principal, can_see, visible
from backend.services.pagination import newest_first
from backend.settings import Settings
from worker.finetune.data import DataValidationError, char_stats, read_dataset

SHOWN_ISSUES = 3
MAX_FILENAME = 255
# Extensions that tell read_dataset the container format; anything else is sniffed from the bytes.
DETECTABLE_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")
MEDIA_TYPES = {"jsonl": "application/jsonl", "json": "application/json", "csv": "text/csv; charset=utf-8",
               "parquet": "application/vnd.apache.parquet"}


def display_filename(raw: str | None) -> str:
    """The client's filename reduced to a printable basename (`../../etc/passwd.jsonl` → `passwd.jsonl`)."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in ("", ".", ".."):
        return "upload"
    if len(name) > MAX_FILENAME:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: MAX_FILENAME - len(ext)] + ext
    return name


def describe_issues(exc: DataValidationError) -> str:
    """A message naming the line and field of the first problems."""
    shown = "; ".join(str(issue) for issue in exc.issues[:SHOWN_ISSUES])
    more = exc.total - min(len(exc.issues), SHOWN_ISSUES)
    suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
    return f"Invalid training file: {shown}{suffix}."


def storage_path(settings: Settings, row: File) -> Path:
    """Absolute path of a file's bytes (`storage_path` is relative to the data dir)."""
    return settings.data_dir / row.storage_path


def media_type(row: File) -> str:
    return MEDIA_TYPES.get(row.file_format, "application/octet-stream")


def create_file(*, session: Session, settings: Settings, upload_path: Path, filename: str | None,
                purpose: str | None, principal: Principal | None = None) -> File:
    """Validate the uploaded temp file and keep it (owned by `principal` and their team); on any refusal
    nothing is stored.

    The temp file is consumed: moved into `files/` on success, deleted otherwise.
    """
    checked = upload_path
    try:
        if purpose not in FILE_PURPOSES:
            raise APIError(400, f"Invalid purpose {purpose!r}: expected one of {', '.join(FILE_PURPOSES)}.",
                           param="purpose", code="invalid_purpose")
        name = display_filename(filename)
        ext = os.path.splitext(name)[1].lower()
        file_id = new_id("file")
        checked = upload_path.with_name(file_id + (ext if ext in DETECTABLE_EXTENSIONS else ""))
        upload_path.rename(checked)
        try:
            dataset = read_dataset(checked)
        except DataValidationError as exc:
            raise APIError(400, describe_issues(exc), param="file", code="invalid_training_file") from exc
        row = File(id=file_id, filename=name, purpose=purpose, bytes=dataset.num_bytes, sha256=dataset.sha256,
                   file_format=dataset.file_format, format=dataset.format.value,
                   num_examples=dataset.num_examples, status="processed",
                   token_stats={"char_stats": char_stats(dataset)},
                   storage_path=f"files/{file_id}.{dataset.file_format}",
                   owner=principal.user if principal else None, team=principal.team if principal else None)
        final = storage_path(settings, row)
        final.parent.mkdir(parents=True, exist_ok=True)
        checked.rename(final)
        checked = final
        session.add(row)
        session.commit()
        checked = None  # kept
        return row
    finally:
        if checked is not None:
            checked.unlink(missing_ok=True)
            upload_path.unlink(missing_ok=True)


def get_file(*, session: Session, file_id: str, principal: Principal | None = None) -> File | None:
    """The file, or None when there is none or `principal` may not see it."""
    row = session.get(File, file_id)
    return row if row is not None and can_see(principal, row.team) else None


def list_files(*, session: Session, after: str | None = None, limit: int = 20, purpose: str | None = None,
               principal: Principal | None = None) -> tuple[list[File], bool]:
    """Newest first; `after` is the last id of the previous page. Only what `principal` may see."""
    where = [clause for clause in (File.purpose == purpose if purpose else None, visible(principal, File.team))
             if clause is not None]
    return newest_first(session, File, after=after, limit=limit, where=tuple(where))


def delete_file(*, session: Session, settings: Settings, row: File) -> None:
    """Remove the row, then the bytes."""
    path = storage_path(settings, row)
    session.delete(row)
    session.commit()
    path.unlink(missing_ok=True)

"""Datasets: validate an upload with the training core's reader, store it under its id, list, delete.

A file is kept only after `scan_dataset` accepts it (a stream: memory bounded by the dataset caps in
the settings, whatever the file's size; run in a worker process, `dataset_scan`); the stored name is `files/<id>.<container>`, the client's
filename is display metadata only. A column mapping (given or detected) is stored on the row and beside
the file (`<stored>.columns.json`), where the worker's `read_dataset` picks it up.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.ids import new_id
from backend.db.models import File, Job
from backend.schemas.files import FILE_PURPOSES
from backend.schemas.jobs import ACTIVE_STATUSES
from backend.services import dataset_scan, tokens
from backend.services.auth import Principal, can_see, visible
from backend.services.cursors import check_cursor
from backend.services.pagination import newest_first
from backend.settings import Settings
from worker.finetune.data import (
    FILE_EXTENSIONS,
    DataLimitError,
    DataLimits,
    DataValidationError,
    char_stats,
    mapping_sidecar,
    write_mapping_sidecar,
)

SHOWN_ISSUES = 3
MAX_FILENAME = 255
MEDIA_TYPES = {"jsonl": "application/jsonl", "json": "application/json", "csv": "text/csv; charset=utf-8",
               "parquet": "application/vnd.apache.parquet", "txt": "text/plain; charset=utf-8"}
LIMIT_SETTINGS = {"max_dataset_rows": "STUDIO_MAX_DATASET_ROWS",
                  "max_dataset_chars": "STUDIO_MAX_DATASET_CHARS (and STUDIO_MAX_DATASET_EXPANSION for Parquet)"}


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
    """A message naming the line and field of the first problems (and the setting of a cap passed)."""
    shown = "; ".join(str(issue) for issue in exc.issues[:SHOWN_ISSUES])
    more = exc.total - min(len(exc.issues), SHOWN_ISSUES)
    suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
    if isinstance(exc, DataLimitError):
        suffix += f"; {LIMIT_SETTINGS.get(exc.limit, 'a setting')} changes the limit"
    elif any("bytes per example" in issue.message for issue in exc.issues[:SHOWN_ISSUES]):
        suffix += "; STUDIO_MAX_ROW_BYTES changes the limit"
    return f"Invalid training file: {shown}{suffix}."


def data_limits(settings: Settings) -> DataLimits:
    return DataLimits(max_rows=settings.max_dataset_rows, max_dataset_chars=settings.max_dataset_chars,
                      max_row_bytes=settings.max_row_bytes, max_expansion=settings.max_dataset_expansion)


def storage_path(settings: Settings, row: File) -> Path:
    """Absolute path of a file's bytes (`storage_path` is relative to the data dir)."""
    return settings.data_dir / row.storage_path


def media_type(row: File) -> str:
    return MEDIA_TYPES.get(row.file_format, "application/octet-stream")


def create_file(*, session: Session, settings: Settings, upload_path: Path, filename: str | None,
                purpose: str | None, column_mapping: dict[str, str] | None = None,
                principal: Principal | None = None) -> File:
    """Validate the uploaded temp file and keep it (owned by `principal` and their team); on any refusal
    nothing is stored. Token counts use the default base model's tokenizer.

    The temp file is consumed: moved into `files/` on success, deleted otherwise.
    """
    checked = upload_path
    try:
        if purpose is None:
            raise APIError(400, "Missing purpose: send the form field purpose=fine-tune with the file.",
                           param="purpose", code="invalid_purpose")
        if purpose not in FILE_PURPOSES:
            raise APIError(400, f"Invalid purpose {purpose!r}: expected one of {', '.join(FILE_PURPOSES)}.",
                           param="purpose", code="invalid_purpose")
        name = display_filename(filename)
        ext = os.path.splitext(name)[1].lower()
        file_id = new_id("file")
        # the extension tells the reader the container (anything else is sniffed from the bytes)
        checked = upload_path.with_name(file_id + (ext if ext in FILE_EXTENSIONS else ""))
        upload_path.rename(checked)
        try:
            summary, lengths = dataset_scan.scan_file(
                checked, column_mapping=column_mapping, limits=data_limits(settings),
                tokenizer_path=tokens.tokenizer_file(settings=settings, model=tokens.DEFAULT_MODEL),
                limit=tokens.UPLOAD_SAMPLE)
        except DataValidationError as exc:
            raise APIError(400, describe_issues(exc), param="file", code="invalid_training_file") from exc
        stats = {**tokens.summary(lengths, tokens.DEFAULT_MODEL, summary.num_examples),
                 "char_stats": char_stats(summary)}
        row = File(id=file_id, filename=name, purpose=purpose, bytes=summary.num_bytes, sha256=summary.sha256,
                   file_format=summary.file_format, format=summary.format.value,
                   num_examples=summary.num_examples, status="processed", token_stats=stats,
                   column_mapping=summary.column_mapping,
                   storage_path=f"files/{file_id}.{summary.file_format}",
                   owner=principal.user if principal else None, team=principal.team if principal else None)
        final = storage_path(settings, row)
        final.parent.mkdir(parents=True, exist_ok=True)
        write_mapping_sidecar(final, summary.column_mapping)
        checked.rename(final)
        checked = final
        session.add(row)
        session.commit()
        checked = None  # kept
        return row
    finally:
        if checked is not None:
            mapping_sidecar(checked).unlink(missing_ok=True)
            checked.unlink(missing_ok=True)
            upload_path.unlink(missing_ok=True)


def file_token_stats(*, settings: Settings, row: File, model: str, max_seq_length: int | None) -> dict:
    """Token length stats of a stored file with `model`'s tokenizer (cached per file, mapping and tokenizer),
    and how many examples `max_seq_length` would truncate."""
    tokenizer_path = tokens.tokenizer_file(settings=settings, model=model)
    tokens.tokenizer_from_file(tokenizer_path, model)  # a file it cannot read is a 400 here, not in the pool
    key = (row.sha256, str(row.column_mapping), str(tokenizer_path))
    lengths = tokens.cached_lengths(key, lambda: dataset_scan.scan_file(
        storage_path(settings, row), column_mapping=row.column_mapping, limits=data_limits(settings),
        tokenizer_path=tokenizer_path, every=-(-row.num_examples // tokens.STATS_SAMPLE),
        limit=tokens.STATS_SAMPLE)[1])
    out = {"file_id": row.id, **tokens.summary(lengths, model, row.num_examples), "max_seq_length": max_seq_length,
           "truncated": None, "truncated_share": None}
    if max_seq_length is not None:
        cut = tokens.truncated(lengths, max_seq_length)
        out.update(truncated=cut, truncated_share=cut / len(lengths) if lengths else 0.0)
    return out


def get_file(*, session: Session, file_id: str, principal: Principal | None = None) -> File | None:
    """The file, or None when there is none or `principal` may not see it."""
    row = session.get(File, file_id)
    return row if row is not None and can_see(principal, row.team) else None


def list_files(*, session: Session, after: str | None = None, limit: int = 20, purpose: str | None = None,
               principal: Principal | None = None) -> tuple[list[File], bool]:
    """Newest first; `after` is the last id of the previous page. Only what `principal` may see."""
    where = [clause for clause in (File.purpose == purpose if purpose else None, visible(principal, File.team))
             if clause is not None]
    check_cursor(after, "file", "file")
    return newest_first(session, File, after=after, limit=limit, where=tuple(where))


def delete_file(*, session: Session, settings: Settings, row: File) -> None:
    """Remove the row, then the bytes; refused (409) while a job that has not ended reads the file, which
    would otherwise fail later on a missing file (a paused job reads it again when it resumes)."""
    user = session.scalars(select(Job).where(Job.status.in_(ACTIVE_STATUSES),
                                              or_(Job.training_file == row.id, Job.validation_file == row.id))
                           .order_by(Job.created_at).limit(1)).first()
    if user is not None:
        role = "training" if user.training_file == row.id else "validation"
        raise APIError(409, f"File '{row.id}' is the {role} file of job '{user.id}', which is {user.status}: "
                            "cancel the job or wait until it ends, then delete the file.",
                       param="file_id", code="file_in_use")
    path = storage_path(settings, row)
    session.delete(row)
    session.commit()
    path.unlink(missing_ok=True)
    mapping_sidecar(path).unlink(missing_ok=True)

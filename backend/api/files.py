"""`/v1/files`: upload, list, get, download and delete datasets (OpenAI's files API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.api.errors import APIError, not_found
from backend.api.uploads import receive_form
from backend.schemas.files import FileDeleted, FileList, FileObject, FileTokenStats
from backend.services import audit
from backend.services import files as service
from backend.services.auth import Principal
from backend.services.tokens import DEFAULT_MODEL, TokenizerUnavailable
from worker.finetune.data import parse_column_mapping

router = APIRouter(prefix="/v1/files", tags=["files"])

FileId = Annotated[str, Path(description="The file's id, e.g. `file-01J…`.", max_length=128)]

UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "purpose"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "JSONL, JSON, CSV or Parquet dataset."},
                   "purpose": {"type": "string", "enum": ["fine-tune"]},
                   "column_mapping": {"type": "string", "description": (
                       'JSON object: studio field -> your column, e.g. {"prompt": "question", "completion": '
                       '"answer"}. Optional: common column names and ShareGPT are detected.')}}}}}}}


def _get(session, file_id: str, principal: Principal):
    row = service.get_file(session=session, file_id=file_id, principal=principal)
    if row is None:
        raise not_found("file", file_id, "file_id")
    return row


@router.post("", response_model=FileObject, openapi_extra=UPLOAD_BODY)  # not under STUDIO_MAX_REQUEST_BYTES
async def create_file(request: Request, session: SessionDep, settings: SettingsDep,
                      principal: CurrentPrincipal) -> FileObject:
    """Upload a dataset; it is validated before it is kept (400 naming line and field if not)."""
    form = await receive_form(request, tmp_dir=settings.tmp_dir, max_bytes=settings.max_upload_bytes)
    try:
        if form.file_path is None:
            raise APIError(400, "Missing required parameter: 'file'.", param="file", code="missing_file")
        try:
            mapping = parse_column_mapping(form.fields.get("column_mapping"))
        except ValueError as exc:
            raise APIError(400, f"Invalid column_mapping: {exc}.", param="column_mapping",
                           code="invalid_column_mapping") from None
        row = await run_in_threadpool(service.create_file, session=session, settings=settings,
                                      upload_path=form.file_path, filename=form.filename,
                                      purpose=form.fields.get("purpose"), column_mapping=mapping,
                                      principal=principal)
    finally:
        form.discard()
    await run_in_threadpool(audit.record_for, principal, session=session, action="file.create",
                            resource_type="file", resource_id=row.id, team=row.team,
                            detail={"filename": row.filename, "bytes": row.bytes})
    return FileObject.model_validate(row)


@router.get("", response_model=FileList)
def list_files(session: SessionDep, principal: CurrentPrincipal,
               after: Annotated[str | None, Query(max_length=128)] = None,
               limit: Annotated[int, Query(ge=1, le=100)] = 20,
               purpose: Annotated[str | None, Query(max_length=32)] = None) -> FileList:
    """List files, newest first."""
    rows, has_more = service.list_files(session=session, after=after, limit=limit, purpose=purpose,
                                        principal=principal)
    return FileList.of([FileObject.model_validate(r) for r in rows], has_more=has_more)


@router.get("/{file_id}", response_model=FileObject)
def get_file(file_id: FileId, session: SessionDep, principal: CurrentPrincipal) -> FileObject:
    """Get a file's metadata."""
    return FileObject.model_validate(_get(session, file_id, principal))


@router.get("/{file_id}/token_stats", response_model=FileTokenStats)
def get_file_token_stats(file_id: FileId, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                         model: Annotated[str, Query(max_length=256)] = DEFAULT_MODEL,
                         max_seq_length: Annotated[int | None, Query(ge=1, le=1_048_576)] = None) -> FileTokenStats:
    """Tokens per example with a base model's tokenizer, and the share `max_seq_length` would truncate."""
    row = _get(session, file_id, principal)
    try:
        stats = service.file_token_stats(settings=settings, row=row, model=model, max_seq_length=max_seq_length)
    except TokenizerUnavailable as exc:
        raise APIError(400, str(exc), param="model", code="tokenizer_unavailable") from None
    return FileTokenStats(**stats)


@router.get("/{file_id}/content", response_class=FileResponse,
            responses={200: {"content": {t: {} for t in service.MEDIA_TYPES.values()},
                             "description": "The file's bytes."}})
def get_file_content(file_id: FileId, session: SessionDep, settings: SettingsDep,
                     principal: CurrentPrincipal) -> FileResponse:
    """Download a file's bytes as uploaded."""
    row = _get(session, file_id, principal)
    path = service.storage_path(settings, row)
    if not path.is_file():
        raise APIError(404, f"The content of file '{file_id}' is missing from storage.", param="file_id",
                       code="file_content_missing")
    return FileResponse(path, media_type=service.media_type(row), filename=row.filename)


@router.delete("/{file_id}", response_model=FileDeleted)
def delete_file(file_id: FileId, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> FileDeleted:
    """Delete a file and its bytes."""
    row = _get(session, file_id, principal)
    team, filename = row.team, row.filename
    service.delete_file(session=session, settings=settings, row=row)
    audit.record_for(principal, session=session, action="file.delete", resource_type="file", resource_id=file_id,
                     team=team, detail={"filename": filename})
    return FileDeleted(id=file_id)

"""Registry rows → wire objects, and the merge lifecycle (queue it, fold in what the worker reported)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.models import Adapter, AdapterAlias, AdapterVersion
from backend.schemas.registry import AdapterObject, AdapterVersionObject, MergeState
from backend.services import queue as queue_calls
from backend.services.lineage_view import public_lineage
from backend.services.queue import JobQueue
from backend.services.registry import LINEAGE_FILE, absolute, version_ref
from backend.settings import Settings

MERGE_ACTIVE = ("queued", "running")


def version_public(row: AdapterVersion, aliases: list[str] | None = None) -> AdapterVersionObject:
    merge = None
    if row.merge_status:
        download = (f"/v1/adapters/{row.adapter_name}/versions/{row.version}/download?artifact=merged"
                    if row.merge_status == "succeeded" else None)
        merge = MergeState(status=row.merge_status, error=row.merge_error, download=download)
    reason = merge_unavailable_reason(row)
    lineage = public_lineage(row.lineage, job=None, model=version_ref(row)) if row.lineage else None
    return AdapterVersionObject(
        id=row.id, name=row.adapter_name, version=row.version, model=version_ref(row), status=row.status,
        job_id=row.job_id, base_model=row.base_model, method=row.method, artifact=row.artifact,
        aliases=aliases or [], flags=row.flags, lineage=lineage, error=row.error, merge=merge,
        warnings=[w for w in (row.lineage or {}).get("warnings") or []
                  if isinstance(w, dict) and isinstance(w.get("code"), str) and isinstance(w.get("message"), str)],
        mergeable=row.status == "ready" and reason is None, merge_unavailable_reason=reason,
        created_at=row.created_at)


def aliases_by_version(session: Session, name: str) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for row in session.scalars(select(AdapterAlias).where(AdapterAlias.adapter_name == name)
                               .order_by(AdapterAlias.alias)):
        out.setdefault(row.version, []).append(row.alias)
    return out


def adapter_public(session: Session, adapter: Adapter, *, with_lineage: bool = True) -> AdapterObject:
    by_version = aliases_by_version(session, adapter.name)
    versions = [version_public(v, by_version.get(v.version)) for v in adapter.versions]
    if not with_lineage:
        for version in versions:
            version.lineage = None
    ready = [v for v in adapter.versions if v.status == "ready"]
    latest = (ready or adapter.versions or [None])[-1]
    return AdapterObject(
        id=adapter.name, name=adapter.name, created_at=adapter.created_at,
        latest_version=latest.version if latest else None, base_model=latest.base_model if latest else None,
        aliases={alias: version for version, names in by_version.items() for alias in names}, versions=versions,
        owner=adapter.owner, team=adapter.team)


def download_lineage(row: AdapterVersion, folder: Path, *, merged: bool) -> bytes:
    """The `studio.json` a download carries: the registry's view (job id, `name:version`, file ids, no
    server paths). It is not among the files it hashes, so every other file still matches its sha256."""
    lineage = public_lineage(row.lineage or {}, job=None, model=version_ref(row))
    if merged:
        try:
            record = json.loads((folder / LINEAGE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {}
        lineage = public_lineage(record, job=None, model=version_ref(row))
        lineage["job_id"] = row.job_id
        lineage["merged_from"] = {"model": version_ref(row), "lineage": public_lineage(
            row.lineage or {}, job=None, model=version_ref(row))}
    return json.dumps(lineage, indent=2, default=str).encode()


# ---------------------------------------------------------------------------------------------------
# Merges


def merged_dir(settings: Settings, row: AdapterVersion) -> Path:
    return settings.data_dir / "merged" / f"{row.adapter_name}-v{row.version}"


def merge_unavailable_reason(row: AdapterVersion) -> str | None:
    """Why this version's method cannot be merged into its base, or None when it can."""
    if row.status != "ready":  # a pending or failed version is refused for that reason, not its method
        return None
    method = (row.lineage or {}).get("method") or {}
    if row.artifact == "full":
        return (f"'{version_ref(row)}' was trained with {row.method}: it is already a full model "
                "(download it as is).")
    if row.artifact != "peft" or not method.get("mergeable"):
        return (f"'{version_ref(row)}' ({row.method}) cannot be merged into its base: prompt-based "
                "methods and bottleneck adapters add modules instead of changing weights.")
    return None


def start_merge(*, session: Session, settings: Settings, queue: JobQueue, row: AdapterVersion) -> AdapterVersion:
    """Queue a merge of a ready, mergeable PEFT version (a second request while one runs changes nothing)."""
    if row.status != "ready":
        raise APIError(400, f"Version {row.version} of '{row.adapter_name}' is {row.status}; only ready versions "
                            "can be merged.", param="version", code="adapter_version_not_ready")
    if (reason := merge_unavailable_reason(row)) is not None:
        raise APIError(400, reason, param="version", code="not_mergeable")
    if sync_merge(session=session, queue=queue, row=row).merge_status in MERGE_ACTIVE:
        return row
    output = merged_dir(settings, row)
    queue_calls.set_merge_state(queue, row.id, {"status": "queued", "error": None, "path": str(output)})
    queue_calls.send_merge(queue, version_id=row.id, base=row.base_model,
                           adapter_dir=str(absolute(settings, row.path)), output_dir=str(output))
    row.merge_status, row.merge_error, row.merge_path = "queued", None, str(output)
    session.commit()
    return row


def sync_merge(*, session: Session, queue: JobQueue, row: AdapterVersion) -> AdapterVersion:
    """Fold the merge task's last report into the row (workers never write the database).

    The API records every merge in Redis before sending it, so an active merge with no record was lost
    (Redis restarted empty, or the record expired): it ends `failed` with `merge_lost`, and a new request
    is accepted. With Redis unreachable nothing is concluded."""
    if row.merge_status not in MERGE_ACTIVE:
        return row
    try:
        state = queue_calls.merge_state(queue, row.id)
    except queue_calls.QueueUnavailable:
        return row
    if state is None:
        row.merge_status = "failed"
        row.merge_error = {"code": "merge_lost", "message": "The merge's progress was lost (its queue restarted "
                           "empty or its record expired); request the merge again."}
        session.commit()
    elif state.get("status") in ("running", "succeeded", "failed") and state["status"] != row.merge_status:
        row.merge_status = state["status"]
        row.merge_error = state.get("error")
        session.commit()
    return row

"""`/v1/adapters`: the registry — list, get, versions, download, aliases, merge, delete."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.api.errors import APIError
from backend.api.guards import QUERY_KEY_DOC
from backend.schemas.registry import (
    AdapterList,
    AdapterObject,
    AdapterVersionObject,
    AliasEventObject,
    AliasHistory,
    AliasObject,
    AliasUpdate,
    Deleted,
)
from backend.services import audit
from backend.services import registry as service
from backend.services.archive import MEDIA_TYPES, stream_folder
from backend.services.auth import Principal
from backend.services.registry_views import (
    adapter_public,
    aliases_by_version,
    download_lineage,
    start_merge,
    sync_merge,
    version_public,
)

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])

Name = Annotated[str, Path(description="The adapter's name (a job's `suffix`, or `<model>-<method>`; "
                                       "`<team>.<…>` for a team's adapters).", max_length=128)]
Version = Annotated[int, Path(ge=1, le=2**31 - 1, description="The version number (1, 2, …).")]
Alias = Annotated[str, Path(description="An alias such as `production`.", max_length=64)]


def _version(request: Request, session, name: str, version: int, principal: Principal) -> AdapterVersionObject:
    row = sync_merge(session=session, queue=request.app.state.queue,
                     row=service.get_version(session=session, name=name, version=version, principal=principal))
    return version_public(row, aliases_by_version(session, name).get(version))


def _audit(session: Session, principal: Principal, action: str, resource_type: str, resource_id: str,
           team: str | None, **detail) -> None:
    audit.record_for(principal, session=session, action=action, resource_type=resource_type,
                     resource_id=resource_id, team=team, detail=detail or None)


@router.get("", response_model=AdapterList)
def list_adapters(session: SessionDep, principal: CurrentPrincipal,
                  after: Annotated[str | None, Query(max_length=128)] = None,
                  limit: Annotated[int, Query(ge=1, le=100)] = 20) -> AdapterList:
    """List adapters by name, each with its versions (without their lineage)."""
    rows, has_more = service.list_adapters(session=session, after=after, limit=limit, principal=principal)
    return AdapterList.of([adapter_public(session, r, with_lineage=False) for r in rows], has_more=has_more)


@router.get("/{name}", response_model=AdapterObject)
def get_adapter(name: Name, session: SessionDep, principal: CurrentPrincipal) -> AdapterObject:
    """An adapter with all its versions, aliases and lineage."""
    return adapter_public(session, service.get_adapter(session=session, name=name, principal=principal))


@router.delete("/{name}", response_model=Deleted)
def delete_adapter(name: Name, session: SessionDep, principal: CurrentPrincipal) -> Deleted:
    """Remove an adapter and all its versions from the registry (the jobs' files stay)."""
    team = service.get_adapter(session=session, name=name, principal=principal).team
    service.delete_adapter(session=session, name=name, actor=principal.user, principal=principal)
    _audit(session, principal, "adapter.delete", "adapter", name, team)
    return Deleted(id=name, object="adapter")


@router.get("/{name}/versions/{version}", response_model=AdapterVersionObject)
def get_adapter_version(name: Name, version: Version, request: Request, session: SessionDep,
                        principal: CurrentPrincipal) -> AdapterVersionObject:
    """One version: status, lineage, serving flags, aliases and merge state."""
    return _version(request, session, name, version, principal)


@router.delete("/{name}/versions/{version}", response_model=Deleted)
def delete_adapter_version(name: Name, version: Version, session: SessionDep,
                           principal: CurrentPrincipal) -> Deleted:
    """Remove one version (aliases pointing at it are removed too)."""
    team = service.get_adapter(session=session, name=name, principal=principal).team
    service.delete_version(session=session, name=name, version=version, actor=principal.user, principal=principal)
    _audit(session, principal, "adapter.version.delete", "adapter.version", f"{name}:{version}", team)
    return Deleted(id=f"{name}:{version}", object="adapter.version")


@router.get("/{name}/versions/{version}/download", response_class=StreamingResponse,
            responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}, "description": "The archive."}},
            openapi_extra=QUERY_KEY_DOC)
def download_adapter_version(name: Name, version: Version, request: Request, session: SessionDep,
                             settings: SettingsDep, principal: CurrentPrincipal,
                             format: Annotated[Literal["tar.gz", "zip"], Query()] = "tar.gz",
                             artifact: Annotated[Literal["adapter", "merged"], Query()] = "adapter") -> StreamingResponse:
    """Download the artifact folder (or its merged full model) as a streamed .tar.gz or .zip."""
    row = service.settle(session=session, settings=settings, version=service.get_version(
        session=session, name=name, version=version, principal=principal))
    if row.status != "ready":
        raise APIError(400, f"Version {version} of '{name}' is {row.status}; only ready versions download.",
                       param="version", code="adapter_version_not_ready")
    folder, root = service.absolute(settings, row.path), f"{name}-v{version}"
    if artifact == "merged":
        sync_merge(session=session, queue=request.app.state.queue, row=row)
        if row.merge_status != "succeeded" or not row.merge_path:
            raise APIError(400, f"Version {version} of '{name}' has no merged model yet (merge: "
                                f"{row.merge_status or 'never requested'}); POST …/merge first.",
                           param="artifact", code="merge_not_ready")
        folder, root = service.absolute(settings, row.merge_path), f"{name}-v{version}-merged"
    if not folder.is_dir():
        raise APIError(404, f"The files of '{name}:{version}' are missing from storage.", param="version",
                       code="artifact_missing")
    lineage = download_lineage(row, folder, merged=artifact == "merged")
    return StreamingResponse(stream_folder(folder, root=root, fmt=format, replace={service.LINEAGE_FILE: lineage}),
                             media_type=MEDIA_TYPES[format],
                             headers={"Content-Disposition": f'attachment; filename="{root}.{format}"'})


@router.post("/{name}/versions/{version}/merge", response_model=AdapterVersionObject, status_code=202)
def merge_adapter_version(name: Name, version: Version, request: Request, session: SessionDep,
                          settings: SettingsDep, principal: CurrentPrincipal) -> AdapterVersionObject:
    """Merge the version into its base as a new full model, on a worker; poll the version for `merge`."""
    row = service.settle(session=session, settings=settings, version=service.get_version(
        session=session, name=name, version=version, principal=principal))
    was = row.merge_status
    start_merge(session=session, settings=settings, queue=request.app.state.queue, row=row)
    if row.merge_status != was:
        _audit(session, principal, "adapter.version.merge", "adapter.version", f"{name}:{version}", row.adapter.team)
    return _version(request, session, name, version, principal)


@router.put("/{name}/aliases/{alias}", response_model=AliasObject)
def set_adapter_alias(name: Name, alias: Alias, body: AliasUpdate, session: SessionDep, settings: SettingsDep,
                      principal: CurrentPrincipal) -> AliasObject:
    """Point `name@alias` at a version (the move is recorded in the alias history)."""
    row = service.set_alias(session=session, name=name, alias=alias, version=body.version, actor=principal.user,
                            principal=principal, settings=settings)
    _audit(session, principal, "adapter.alias.set", "adapter.alias", f"{name}@{row.alias}",
           service.get_adapter(session=session, name=name).team, version=row.version)
    return AliasObject(name=name, alias=row.alias, version=row.version, model=f"{name}@{row.alias}")


@router.delete("/{name}/aliases/{alias}", response_model=Deleted)
def delete_adapter_alias(name: Name, alias: Alias, session: SessionDep, principal: CurrentPrincipal) -> Deleted:
    """Remove an alias (recorded in the alias history)."""
    team = service.get_adapter(session=session, name=name, principal=principal).team
    service.remove_alias(session=session, name=name, alias=alias, actor=principal.user, principal=principal)
    _audit(session, principal, "adapter.alias.remove", "adapter.alias", f"{name}@{alias}", team)
    return Deleted(id=f"{name}@{alias}", object="adapter.alias")


@router.get("/{name}/aliases/history", response_model=AliasHistory)
def get_alias_history(name: Name, session: SessionDep, principal: CurrentPrincipal) -> AliasHistory:
    """Every alias move of this adapter, oldest first (append-only)."""
    service.get_adapter(session=session, name=name, principal=principal)
    return AliasHistory(data=[AliasEventObject(id=e.id, alias=e.alias, version=e.version,
                                               previous_version=e.previous_version, actor=e.actor,
                                               created_at=e.created_at)
                              for e in service.alias_history(session=session, name=name)])

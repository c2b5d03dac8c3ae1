"""What `GET /v1/models` lists: base models, then adapters (`name` = latest ready, `name:N`, `name@alias`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.models import Adapter, AdapterAlias, AdapterVersion
from backend.schemas.registry import ModelObject
from backend.services.auth import Principal, visible
from backend.services.models import BaseModelInfo, list_base_models, lookup_base_model
from backend.services.registry import (
    find_checkpoint_row,
    find_version,
    ready_versions,
    version_ref,
)
from backend.settings import Settings
from worker.finetune.model_refs import ModelRefError
from worker.finetune.spec import parse_spec


def base_object(info: BaseModelInfo) -> ModelObject:
    return ModelObject(id=info.id, created=info.created, owned_by=info.owned_by, kind="base",
                       model_type=info.model_type, modules=info.modules or None)


def adapter_object(model_id: str, version: AdapterVersion) -> ModelObject:
    return ModelObject(id=model_id, created=version.created_at, owned_by="studio", parent=version.base_model,
                       kind="adapter", adapter={"name": version.adapter_name, "version": version.version,
                                                "method": version.method, "model": version_ref(version)})


def list_models(*, session: Session, settings: Settings, principal: Principal | None = None) -> list[ModelObject]:
    """Every base model, then the adapters `principal` may see."""
    out = [base_object(info) for info in list_base_models(settings=settings)]
    versions = ready_versions(session, principal)
    latest: dict[str, AdapterVersion] = {}
    for version in versions:  # ordered by (name, version): the last one seen is the newest
        latest[version.adapter_name] = version
    by_key = {(v.adapter_name, v.version): v for v in versions}
    for name, version in latest.items():
        out.append(adapter_object(name, version))
    out.extend(adapter_object(version_ref(v), v) for v in versions)
    aliases = select(AdapterAlias).order_by(AdapterAlias.adapter_name, AdapterAlias.alias)
    if (clause := visible(principal, Adapter.team)) is not None:
        aliases = aliases.join(Adapter, Adapter.name == AdapterAlias.adapter_name).where(clause)
    for alias in session.scalars(aliases):
        if (target := by_key.get((alias.adapter_name, alias.version))) is not None:
            out.append(adapter_object(f"{alias.adapter_name}@{alias.alias}", target))
    return out


def get_model(*, session: Session, settings: Settings, model: str, principal: Principal | None = None) -> ModelObject:
    found = find_checkpoint_row(session=session, settings=settings, model=model, principal=principal)
    if found is not None:  # chat takes a job's checkpoint names, so retrieving one answers too
        job, row = found
        return ModelObject(id=model, created=row.created_at, owned_by="studio", parent=job.model, kind="adapter",
                           adapter={"job_id": job.id, "step": row.step_number, "method": parse_spec(job.spec).tuning.type})
    version = find_version(session=session, settings=settings, model=model, principal=principal)
    if version is not None:
        return adapter_object(model, version)
    try:  # a hub id answers when it is in the HF cache (or, online, on the hub): the form checks typed ids
        return base_object(lookup_base_model(settings=settings, ref=model))
    except ModelRefError as exc:
        raise APIError(404, str(exc), param="model", code="model_not_found") from None

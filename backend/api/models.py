"""`/v1/models`: base models and ready adapters, in OpenAI's list shape (`parent` names an adapter's base)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.schemas.registry import ModelList, ModelObject
from backend.services.model_catalog import get_model, list_models

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList)
def list_all_models(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal) -> ModelList:
    """Base models (the demo, local model folders), then every ready adapter version and its name."""
    return ModelList(data=list_models(session=session, settings=settings, principal=principal))


@router.get("/{model:path}", response_model=ModelObject)
def retrieve_model(model: Annotated[str, Path(max_length=512)], session: SessionDep, settings: SettingsDep,
                   principal: CurrentPrincipal) -> ModelObject:
    """One model: a base (with its LoRA-targetable modules) or an adapter reference."""
    return get_model(session=session, settings=settings, model=model, principal=principal)

"""The adapter registry, models and estimates on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.schemas.common import ListPage


class MergeState(BaseModel):
    status: str  # queued | running | succeeded | failed
    error: dict[str, Any] | None = None
    download: str | None = None  # where the merged model downloads from once succeeded


class VersionWarning(BaseModel):
    """Something the run flagged about itself (the core writes these into `studio.json`)."""

    code: str  # e.g. loss_diverged
    message: str


class AdapterVersionObject(BaseModel):
    """One trained artifact: `pending` → `ready` | `failed`; `model` is what chat and jobs call it."""

    object: Literal["adapter.version"] = "adapter.version"
    id: str
    name: str
    version: int
    model: str  # `name:version`
    status: str
    job_id: str | None = None
    base_model: str
    method: str
    artifact: str | None = None  # peft | bottleneck | full
    aliases: list[str] = []
    flags: dict[str, Any] | None = None  # serving compatibility (vLLM / LoRAX)
    lineage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    merge: MergeState | None = None
    warnings: list[VersionWarning] = Field(default=[], description=(
        "What the run flagged, e.g. `{code: loss_diverged, message}`: the version is served and may take "
        "aliases, but look before you promote it."))
    mergeable: bool = Field(default=False, description="Whether `POST …/merge` can merge it into its base now.")
    merge_unavailable_reason: str | None = Field(default=None, description=(
        "Why its method cannot be merged (full and freeze versions already are full models; prompt-based "
        "methods and bottleneck adapters add modules)."))
    created_at: int


class AdapterObject(BaseModel):
    """A named line of fine-tunes; `versions` oldest first."""

    object: Literal["adapter"] = "adapter"
    id: str  # the name
    name: str
    created_at: int
    latest_version: int | None = None
    base_model: str | None = None
    aliases: dict[str, int] = {}
    versions: list[AdapterVersionObject] = []
    owner: str | None = None  # who trained its first version (team mode)
    team: str | None = None  # who may see it (team mode)


class AdapterList(ListPage[AdapterObject]):
    """Adapters by name; pass the last name as `after` for the next page."""


class AliasUpdate(BaseModel):
    version: int = Field(ge=1, description="The version the alias should point at.")


class AliasObject(BaseModel):
    object: Literal["adapter.alias"] = "adapter.alias"
    name: str
    alias: str
    version: int
    model: str  # `name@alias`


class AliasEventObject(BaseModel):
    """One move of an alias; `version` null means it was removed."""

    object: Literal["adapter.alias_event"] = "adapter.alias_event"
    id: int
    alias: str
    version: int | None
    previous_version: int | None
    actor: str
    created_at: int


class AliasHistory(BaseModel):
    object: Literal["list"] = "list"
    data: list[AliasEventObject]


class Deleted(BaseModel):
    id: str
    object: str
    deleted: bool = True


class ModelObject(BaseModel):
    """OpenAI's model object plus what the studio knows: base or adapter, and LoRA-targetable modules."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    parent: str | None = None  # the base model of an adapter
    kind: Literal["base", "adapter"] = "base"
    model_type: str | None = None
    modules: list[str] | None = None  # linear module names (`target_modules`); `all-linear` covers them all
    adapter: dict[str, Any] | None = None  # {name, version, method} for adapters


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class MemoryObject(BaseModel):
    weights: int
    adapter: int
    gradients: int
    optimizer: int
    activations: int
    total: int


class EstimateObject(BaseModel):
    """Bytes by part for one training device, from the model's config alone."""

    object: Literal["estimate"] = "estimate"
    total_params: int
    trainable_params: int
    memory: MemoryObject
    assumptions: dict[str, Any] = {}

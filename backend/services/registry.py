"""The adapter registry: every successful job becomes a version of a named adapter, with its lineage.

A version is registered `pending` when the relay stores the job's `succeeded` status, then checked
(`finalize_version`): its `studio.json` read, every file it lists present with the same sha256, and its
serving-compatibility flags computed. Then it is `ready` (servable, downloadable) or `failed` (with why).
Model references (`name`, `name:3`, `name@prod`, a base model) resolve here for inference and merges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.api.errors import APIError, not_found
from backend.db.ids import new_id
from backend.db.models import (
    Adapter,
    AdapterAlias,
    AdapterVersion,
    AliasEvent,
    Checkpoint,
    Job,
    now,
)
from backend.services.auth import Principal, can_see, visible
from backend.services.lineage_view import public_lineage
from backend.services.models import find_base_model
from backend.settings import Settings
from worker.finetune.hashing import file_sha256
from worker.finetune.spec import parse_spec

LINEAGE_FILE = "studio.json"
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")
LORA_TYPES = {"LORA"}  # what vLLM and LoRAX serve as adapters; other PEFT types need a merge first


# ---------------------------------------------------------------------------------------------------
# Names and paths


def adapter_name_for(job: Job, method: str) -> str:
    """The job's `suffix`, else `<base model's last path part>-<method>`, in registry spelling; a team's
    job gets `<team>.<that>` (team names have no dots), so teams never compete for a name."""
    raw = job.suffix or f"{Path(job.model.rstrip('/')).name or 'model'}-{method}"
    name = re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-._") or "adapter"
    if job.team:
        return f"{job.team}.{name}"[:128]
    return name[:128]


def _name_for_team(session: Session, name: str, team: str | None) -> str:
    """`name`, unless an adapter of another team (or of none) already holds it: then `name-2`, `name-3`, ….

    Only a team-less admin can make such a clash (team names are prefixes), so a member never meets it."""
    candidate, n = name, 1
    while (held := session.get(Adapter, candidate)) is not None and held.team != team:
        n += 1
        candidate = f"{name[:120]}-{n}"
    return candidate


def absolute(settings: Settings, path: str) -> Path:
    """Stored paths are relative to the data dir when they lie inside it."""
    return Path(path) if Path(path).is_absolute() else settings.data_dir / path


def relative(settings: Settings, path: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(settings.data_dir.resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------------
# Registering and checking versions


def register_job_version(*, session: Session, job: Job, method: str,
                         store_path: Callable[[str], str] = str) -> AdapterVersion:
    """Add a `pending` version for a succeeded job (idempotent: one version per job)."""
    existing = session.scalars(select(AdapterVersion).where(AdapterVersion.job_id == job.id)).first()
    if existing is not None:
        return existing
    name = _name_for_team(session, adapter_name_for(job, method), job.team)
    if session.get(Adapter, name) is None:
        session.add(Adapter(name=name, created_at=now(), owner=job.owner, team=job.team))
        session.flush()
    latest = session.scalar(select(func.max(AdapterVersion.version)).where(AdapterVersion.adapter_name == name))
    version = AdapterVersion(id=new_id("adv"), adapter_name=name, version=(latest or 0) + 1, status="pending",
                             job_id=job.id, base_model=job.model, method=method,
                             path=store_path(str(job.output_dir or "")), created_at=now())
    session.add(version)
    session.flush()
    job.fine_tuned_model = version_ref(version)
    return version


def version_ref(version: AdapterVersion) -> str:
    return f"{version.adapter_name}:{version.version}"


def finalize_version(*, session: Session, settings: Settings, version: AdapterVersion) -> None:
    """pending → ready (files match the lineage's hashes) or failed (the reason in `error`)."""
    apply_check(session=session, version=version, check=check_artifact(settings, version.path))


def settle(*, session: Session, settings: Settings, version: AdapterVersion) -> AdapterVersion:
    """Check a still-pending version on the spot (the verifier thread had not reached it yet), for requests
    that need it ready: chat, merge, download, alias."""
    if version.status == "pending":
        finalize_version(session=session, settings=settings, version=version)
        session.commit()
    return version


@dataclass
class ArtifactCheck:
    """What reading an artifact folder found; computed with no database session (hashing may take minutes)."""

    lineage: dict[str, Any] | None = None
    flags: dict[str, Any] | None = None
    error: dict[str, str] | None = None


def check_artifact(settings: Settings, path: str) -> ArtifactCheck:
    """Read the folder's `studio.json` and hash every file it lists (slow for a big full model: callers run
    this off the relay and outside any session)."""
    folder = absolute(settings, path)
    try:
        lineage = json.loads((folder / LINEAGE_FILE).read_text(encoding="utf-8"))
        mismatched = [rel for rel, digest in (lineage.get("files") or {}).items()
                      if not _same_file(folder / rel, digest)]
    except (OSError, ValueError, AttributeError) as exc:
        return ArtifactCheck(error={"code": "artifact_missing",
                                    "message": f"The artifact's {LINEAGE_FILE} is unreadable: {exc}"})
    if mismatched:
        return ArtifactCheck(error={"code": "artifact_corrupt",
                                    "message": f"Files differ from their recorded sha256: {', '.join(mismatched[:5])}"})
    return ArtifactCheck(lineage=lineage, flags=serving_flags(folder, lineage, settings.max_lora_rank))


def apply_check(*, session: Session, version: AdapterVersion, check: ArtifactCheck) -> None:
    """Settle a pending version with a check's outcome (the caller commits)."""
    if check.error is not None:
        version.status, version.error = "failed", check.error
        return
    job = session.get(Job, version.job_id) if version.job_id else None
    version.lineage = public_lineage(check.lineage or {}, job=job, model=version_ref(version))
    version.artifact = (version.lineage.get("method") or {}).get("artifact")
    version.flags = check.flags
    version.status, version.error = "ready", None


def _same_file(path: Path, digest: str) -> bool:
    return path.is_file() and file_sha256(path) == digest


def serving_flags(folder: Path, lineage: dict[str, Any], max_lora_rank: int) -> dict[str, Any]:
    """What adapter servers (vLLM, LoRAX) will say: they refuse non-LoRA adapters, adapters that carry
    full modules (`modules_to_save`), a resized vocabulary, and ranks above their `max_lora_rank`."""
    try:
        config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    peft_type = config.get("peft_type")
    ranks = [config.get("r")] + list((config.get("rank_pattern") or {}).values())
    rank = max((r for r in ranks if isinstance(r, int)), default=None)
    modules_to_save = bool(config.get("modules_to_save"))
    resized = _vocabulary_resized(folder, lineage)
    flags = {
        "peft_type": peft_type,
        "rank": rank,
        "modules_to_save": modules_to_save,
        "resized_vocabulary": resized,
        "rank_above_max": bool(rank and rank > max_lora_rank),
        "max_lora_rank": max_lora_rank,
    }
    reasons = []
    if peft_type not in LORA_TYPES:
        reasons.append(f"{peft_type or (lineage.get('method') or {}).get('artifact')} is not a LoRA adapter")
    if config.get("use_dora"):
        reasons.append("DoRA adapters are not served by vLLM")
    if modules_to_save:
        reasons.append("it carries full modules (modules_to_save)")
    if resized:
        reasons.append("the vocabulary was resized")
    if flags["rank_above_max"]:
        reasons.append(f"rank {rank} is above max_lora_rank {max_lora_rank}")
    flags["adapter_servable"] = not reasons
    flags["reasons"] = reasons
    return flags


def _vocabulary_resized(folder: Path, lineage: dict[str, Any]) -> bool:
    """The artifact's tokenizer or embedding differs in size from its base's configured vocabulary."""
    base_path = (lineage.get("base_model") or {}).get("path")
    try:
        base_vocab = json.loads((Path(base_path) / "config.json").read_text(encoding="utf-8")).get("vocab_size")
    except (OSError, ValueError, TypeError):
        return False
    try:
        own = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("vocab_size")
    except (OSError, ValueError):
        own = None
    return isinstance(base_vocab, int) and isinstance(own, int) and own != base_vocab


# ---------------------------------------------------------------------------------------------------
# Reading


def get_adapter(*, session: Session, name: str, principal: Principal | None = None) -> Adapter:
    """The adapter, or 404 (also when it belongs to a team `principal` is not in)."""
    adapter = session.get(Adapter, name)
    if adapter is None or not can_see(principal, adapter.team):
        raise not_found("adapter", name, "name")
    return adapter


def get_version(*, session: Session, name: str, version: int, principal: Principal | None = None) -> AdapterVersion:
    adapter = get_adapter(session=session, name=name, principal=principal)
    row = session.scalars(select(AdapterVersion).where(AdapterVersion.adapter_name == adapter.name,
                                                       AdapterVersion.version == version)).first()
    if row is None:
        raise APIError(404, f"Adapter '{name}' has no version {version}.", param="version",
                       code="adapter_version_not_found")
    return row


def list_adapters(*, session: Session, after: str | None, limit: int,
                  principal: Principal | None = None) -> tuple[list[Adapter], bool]:
    """Alphabetical; `after` is the last name of the previous page. Only what `principal` may see."""
    query = select(Adapter).order_by(Adapter.name)
    if after:
        query = query.where(Adapter.name > after)
    if (clause := visible(principal, Adapter.team)) is not None:
        query = query.where(clause)
    rows = list(session.scalars(query.limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def ready_versions(session: Session, principal: Principal | None = None) -> list[AdapterVersion]:
    query = (select(AdapterVersion).join(Adapter).where(AdapterVersion.status == "ready")
             .order_by(AdapterVersion.adapter_name, AdapterVersion.version))
    if (clause := visible(principal, Adapter.team)) is not None:
        query = query.where(clause)
    return list(session.scalars(query))


def adapter_refs(*, session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """`{job_id: {name, version, status, model}}` for the jobs that produced a version."""
    if not job_ids:
        return {}
    rows = session.scalars(select(AdapterVersion).where(AdapterVersion.job_id.in_(job_ids)))
    return {row.job_id: {"name": row.adapter_name, "version": row.version, "status": row.status,
                         "model": version_ref(row)} for row in rows}


# ---------------------------------------------------------------------------------------------------
# Aliases and deletion


def set_alias(*, session: Session, name: str, alias: str, version: int, actor: str = "anonymous",
              principal: Principal | None = None, settings: Settings | None = None) -> AdapterAlias:
    """Point `name@alias` at `version` and append the move to the alias history (with `settings`, a version
    still pending is checked first)."""
    if not ALIAS.fullmatch(alias) or alias.isdigit():
        raise APIError(400, "An alias starts with a letter and has at most 64 letters, digits, '.', '_' or '-'.",
                       param="alias", code="invalid_alias")
    target = get_version(session=session, name=name, version=version, principal=principal)
    if settings is not None:
        settle(session=session, settings=settings, version=target)
    if target.status != "ready":
        raise APIError(400, f"Version {version} of '{name}' is {target.status}; only ready versions take aliases.",
                       param="version", code="adapter_version_not_ready")
    row = session.get(AdapterAlias, (name, alias))
    previous = row.version if row else None
    if row is None:
        row = AdapterAlias(adapter_name=name, alias=alias, version=version, updated_at=now())
        session.add(row)
    else:
        row.version, row.updated_at = version, now()
    session.add(AliasEvent(adapter_name=name, alias=alias, version=version, previous_version=previous,
                           actor=actor, created_at=now()))
    session.commit()
    return row


def remove_alias(*, session: Session, name: str, alias: str, actor: str = "anonymous",
                 principal: Principal | None = None) -> None:
    get_adapter(session=session, name=name, principal=principal)
    row = session.get(AdapterAlias, (name, alias))
    if row is None:
        raise APIError(404, f"Adapter '{name}' has no alias '{alias}'.", param="alias", code="alias_not_found")
    session.add(AliasEvent(adapter_name=name, alias=alias, version=None, previous_version=row.version, actor=actor,
                           created_at=now()))
    session.delete(row)
    session.commit()


def alias_history(*, session: Session, name: str) -> list[AliasEvent]:
    return list(session.scalars(select(AliasEvent).where(AliasEvent.adapter_name == name).order_by(AliasEvent.id)))


def delete_version(*, session: Session, name: str, version: int, actor: str = "anonymous",
                   principal: Principal | None = None) -> None:
    """Remove a version from the registry; aliases pointing at it go too (recorded in the history).

    The files stay in the job's folder: the job and its lineage still refer to them."""
    row = get_version(session=session, name=name, version=version, principal=principal)
    for alias in list(session.scalars(select(AdapterAlias).where(AdapterAlias.adapter_name == name,
                                                                 AdapterAlias.version == version))):
        session.add(AliasEvent(adapter_name=name, alias=alias.alias, version=None, previous_version=version,
                               actor=actor, created_at=now()))
        session.delete(alias)
    session.delete(row)
    session.commit()


def delete_adapter(*, session: Session, name: str, actor: str = "anonymous",
                   principal: Principal | None = None) -> None:
    adapter = get_adapter(session=session, name=name, principal=principal)
    for alias in adapter.aliases:
        session.add(AliasEvent(adapter_name=name, alias=alias.alias, version=None, previous_version=alias.version,
                               actor=actor, created_at=now()))
    session.delete(adapter)
    session.commit()


# ---------------------------------------------------------------------------------------------------
# Resolving model references (inference, merges)


@dataclass(frozen=True)
class ServedModel:
    """What an inference worker loads: `base` (a model ref the worker resolves, or a full model folder)
    plus, for adapters, the artifact folder and a stable key for peft's multi-adapter cache."""

    id: str
    base: str
    adapter_path: str | None = None
    adapter_key: str | None = None
    artifact: str = "base"  # base | peft | bottleneck | full

    def to_task(self) -> dict[str, Any]:
        return asdict(self)


MAX_VERSION = 2**31 - 1  # `adapter_versions.version` is an INTEGER column (32 bits on PostgreSQL)


def find_version(*, session: Session, settings: Settings, model: str,
                 principal: Principal | None = None) -> AdapterVersion | None:
    """The version `model` names (`name`, `name:N`, `name@alias`), or None when it names no adapter that
    `principal` may see (another team's adapter is then looked for among the base models, like any name)."""
    name, version, alias = model, None, None
    if "@" in model:
        name, _, alias = model.partition("@")
    elif re.fullmatch(r".+:\d+", model):
        name, _, number = model.rpartition(":")
        version = int(number)
    if not NAME.fullmatch(name) or (adapter := session.get(Adapter, name)) is None \
            or not can_see(principal, adapter.team):
        return None
    if alias is not None:
        row = session.get(AdapterAlias, (name, alias))
        if row is None:
            raise APIError(404, f"Adapter '{name}' has no alias '{alias}'.", param="model", code="model_not_found")
        version = row.version
    query = select(AdapterVersion).where(AdapterVersion.adapter_name == name)
    if version is not None and version > MAX_VERSION:  # past the INTEGER column: no such version, not a 500
        found = None
    elif version is not None:
        found = session.scalars(query.where(AdapterVersion.version == version)).first()
    else:  # the newest version that is (or may become) ready
        found = session.scalars(query.where(AdapterVersion.status.in_(("ready", "pending")))
                                .order_by(AdapterVersion.version.desc())).first()
    if found is None:
        what = "ready version" if version is None else f"version {version}"
        raise APIError(404, f"Adapter '{name}' has no {what}.", param="model", code="model_not_found")
    settle(session=session, settings=settings, version=found)
    if found.status != "ready":
        raise APIError(400, f"Version {found.version} of '{name}' is {found.status} and cannot be used.",
                       param="model", code="model_not_ready")
    return found


def served_version(settings: Settings, version: AdapterVersion, requested: str) -> ServedModel:
    path = str(absolute(settings, version.path))
    if version.artifact == "full":
        return ServedModel(id=requested, base=path, artifact="full")
    return ServedModel(id=requested, base=version.base_model, adapter_path=path,
                       adapter_key=version_ref(version), artifact=version.artifact or "peft")


CHECKPOINT_NAME = re.compile(r"(?P<owner>.+):ckpt-step-(?P<step>\d{1,12})")


def find_checkpoint_row(*, session: Session, settings: Settings, model: str,
                        principal: Principal | None = None) -> tuple[Job, Checkpoint] | None:
    """The job and checkpoint row a `fine_tuned_model_checkpoint` name (`name:3:ckpt-step-15`, or
    `ft:…:ckpt-step-15` while the job runs) names; None when `model` is no such name, 404 when it names none."""
    match = CHECKPOINT_NAME.fullmatch(model)
    if match is None:
        return None
    owner, step = match["owner"], int(match["step"])
    job = None
    if owner.startswith("ft:"):
        job = session.get(Job, "ftjob-" + owner.rsplit(":", 1)[-1])
    elif (version := find_version(session=session, settings=settings, model=owner, principal=principal)):
        job = session.get(Job, version.job_id) if version.job_id else None
    if job is None or not can_see(principal, job.team):
        raise APIError(404, f"The checkpoint '{model}' does not exist: GET /v1/fine_tuning/jobs/{{id}}/checkpoints "
                            "lists a job's checkpoint names.", param="model", code="model_not_found")
    row = session.scalars(select(Checkpoint).where(Checkpoint.job_id == job.id,
                                                   Checkpoint.step_number == step)).first()
    if row is None:
        raise APIError(404, f"Job {job.id} has no checkpoint at step {step}: GET /v1/fine_tuning/jobs/{job.id}/"
                            "checkpoints lists them.", param="model", code="model_not_found")
    return job, row


def find_checkpoint(*, session: Session, settings: Settings, model: str,
                    principal: Principal | None = None) -> ServedModel | None:
    """A checkpoint name (see `find_checkpoint_row`) → that checkpoint's adapter (or full model) on the job's
    base; None when `model` is no such name."""
    found = find_checkpoint_row(session=session, settings=settings, model=model, principal=principal)
    if found is None:
        return None
    job, row = found
    step = row.step_number
    folder = absolute(settings, row.path)
    if parse_spec(job.spec).tuning.type == "adapter":  # its Trainer checkpoint is not a loadable bottleneck folder
        raise APIError(400, f"Checkpoints of bottleneck adapters cannot be served; chat with the job's final "
                            f"model ({job.fine_tuned_model or 'once it succeeds'}).", param="model",
                       code="model_not_servable")
    if (folder / "adapter_config.json").is_file():
        return ServedModel(id=model, base=job.model, adapter_path=str(folder),
                           adapter_key=f"{job.id}:ckpt-step-{step}", artifact="peft")
    if (folder / "config.json").is_file():
        return ServedModel(id=model, base=str(folder), artifact="full")
    raise APIError(404, f"The checkpoint at step {step} of job {job.id} is no longer stored (a run keeps its last "
                        "3 checkpoints).", param="model", code="model_not_found")


def resolve_served_model(*, session: Session, settings: Settings, model: str,
                         principal: Principal | None = None) -> ServedModel:
    """`model` as a client wrote it → what to load; 404 `model_not_found` when it names nothing (that
    `principal` may use)."""
    model = (model or "").strip()
    if not model:
        raise APIError(400, "`model` is required.", param="model", code="missing_model")
    if (checkpoint := find_checkpoint(session=session, settings=settings, model=model, principal=principal)):
        return checkpoint
    version = find_version(session=session, settings=settings, model=model, principal=principal)
    if version is not None:
        return served_version(settings, version, model)
    base = find_base_model(settings=settings, ref=model)
    if base is not None:
        return ServedModel(id=model, base=base.ref)
    raise APIError(404, f"The model '{model}' does not exist: use a base model or an adapter from GET /v1/models "
                        "(`name`, `name:version` or `name@alias`).", param="model", code="model_not_found")

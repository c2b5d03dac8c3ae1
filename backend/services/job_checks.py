"""Everything `POST /v1/fine_tuning/jobs` checks before a job is stored (DESIGN §5: a clear 4xx before
any GPU time is spent): the body against the JobSpec contract, the files and their formats against the
stage, the base model (without torch: its `config.json` is read as JSON) and the target modules.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.db.models import File
from backend.services.auth import Principal, can_see
from backend.services.models import LINEAR_MODULES, lookup_base_model
from backend.settings import Settings
from worker.finetune.data import STAGE_FORMATS
from worker.finetune.model_refs import ModelRefError, shown
from worker.finetune.spec import (
    TUNING_TYPES,
    FitError,
    JobSpec,
    SpecError,
    check_fits_model,
    parse_spec,
)

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# How the registry names what it serves (`name:version`, `name@alias`, `…:ckpt-step-N`, `ft:…`); no local
# folder name holds ':' and no hub id lacks '/', so a base reference never matches this.
ADAPTER_REF = re.compile(r"ft:[^/]+|[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]+(:ckpt-step-[0-9]+)?|@[A-Za-z0-9._-]+)")


def invalid(message: str, param: str | None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def parse_job_body(body: Any) -> JobSpec:
    """`parse_spec`, with its first error's field path as the envelope's `param`."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object (a job spec), sent with Content-Type: application/json.",
                      None)
    try:
        return parse_spec(body)
    except SpecError as exc:
        raise invalid(f"Invalid job: {exc}", _first_error_param(body)) from None


def _first_error_param(body: dict[str, Any]) -> str | None:
    """`tuning.r`, `method.supervised.hyperparameters.n_epochs`, …: the first error's field path, without
    pydantic's union tags (`lora`, `constrained-int`, `literal['auto']`)."""
    try:
        JobSpec.model_validate(body)
    except ValidationError as exc:
        errors = exc.errors()
        if errors:
            parts = [p for p in errors[0]["loc"] if not _is_tag(p)]
            out = ""
            for part in parts:
                out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
            return out or None
    return None


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in TUNING_TYPES or not _FIELD_NAME.fullmatch(part))


def check_file(*, session: Session, file_id: str, param: str, stage: str, principal: Principal | None = None) -> File:
    """The stored file behind `file_id` (one `principal` may see), whose format the stage can train on."""
    row = session.get(File, file_id)
    if row is None or not can_see(principal, row.team):
        raise APIError(404, f"No such file: '{file_id}' (given as {param}).",
                       param=param, code="file_not_found")
    allowed = sorted(f.value for f in STAGE_FORMATS[stage])
    if row.format not in allowed:
        kind = param.replace("_", " ")
        raise APIError(400, f"The {kind} '{file_id}' has format '{row.format}', but a {stage} job needs "
                            f"{', '.join(allowed)} rows.", param=param, code="invalid_training_file")
    return row


def check_model(*, settings: Settings, spec: JobSpec, weights: bool = True) -> str | None:
    """The base model must exist where the worker will load it from (for a hub id: the HF cache, offline
    at once when the hub is) and the tuning must fit its shape; returns its `model_type`. `weights=False`
    (estimates) accepts a folder that holds config.json alone."""
    try:
        info = lookup_base_model(settings=settings, ref=spec.model, weights=weights)
    except ModelRefError as exc:
        if ADAPTER_REF.fullmatch(spec.model.strip()):
            raise invalid(f"Model '{shown(spec.model)}' names a registry adapter (name:version, name@alias or a "
                          "checkpoint), which cannot be the base of a job or an estimate: use its base model, "
                          "the `parent` that GET /v1/models/{model} shows.", "model", "invalid_model") from None
        raise invalid(str(exc), "model", exc.code) from None
    try:
        check_fits_model(spec, info.config)
    except FitError as exc:
        raise invalid(str(exc), exc.param, "invalid_tuning") from None
    return info.model_type


def check_target_modules(*, spec: JobSpec, model_type: str | None) -> None:
    """For families whose linear modules we know, every named target must be one of them."""
    targets = getattr(spec.tuning, "target_modules", None)
    valid = LINEAR_MODULES.get(model_type or "")
    if not isinstance(targets, list) or valid is None:
        return
    unknown = [t for t in targets if t.rsplit(".", 1)[-1] not in valid]
    if unknown:
        raise invalid(f"Unknown target module(s) {', '.join(unknown)} for a '{model_type}' model; its linear "
                      f"modules are: {', '.join(valid)} (or use 'all-linear').", "tuning.target_modules",
                      "invalid_target_modules")


def check_job(*, session: Session, settings: Settings, spec: JobSpec, principal: Principal | None = None) -> None:
    """Every check after the body parsed: files (the caller's team's), formats, model, target modules."""
    check_file(session=session, file_id=spec.training_file, param="training_file", stage=spec.stage,
               principal=principal)
    if spec.validation_file:
        check_file(session=session, file_id=spec.validation_file, param="validation_file", stage=spec.stage,
                   principal=principal)
    model_type = check_model(settings=settings, spec=spec)
    check_target_modules(spec=spec, model_type=model_type)


def inline_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its `$defs` inlined (for an OpenAPI request body that has no components)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            out = {k: walk(v) for k, v in node.items() if k != "$defs"}
            if isinstance(out.get("discriminator"), dict):  # its mapping names $defs that no longer exist
                out["discriminator"] = {k: v for k, v in out["discriminator"].items() if k != "mapping"}
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def job_body_schema() -> dict[str, Any]:
    return inline_schema(JobSpec.model_json_schema())


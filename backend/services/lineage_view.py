"""A version's lineage as members see it: file ids and hashes, never the server's paths.

The core writes `studio.json` with the paths it trained from (the stored dataset under the data dir, the
base model's folder). Those name the server's disks, so the registry replaces them with what a member can
use — dataset file ids and sha256, the model reference the job was given — and adds the job id and the
registry's `name:version`. The same view is what the API shows and what a download's `studio.json` holds.
"""

from __future__ import annotations

import copy
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from backend.db.models import Job


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and (PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute()
                                       or value.startswith(("./", "../", "~")))


def public_lineage(lineage: dict[str, Any], *, job: Job | None, model: str) -> dict[str, Any]:
    """`lineage` with paths replaced by ids (idempotent: an already public lineage comes back the same)."""
    out = copy.deepcopy(lineage)
    if job is not None:
        out["job_id"] = job.id
    out["model"] = model
    files = {"training": job.training_file, "validation": job.validation_file} if job is not None else {}
    for dataset in out.get("datasets") or []:
        if not isinstance(dataset, dict):
            continue
        if files.get(dataset.get("role")):
            dataset["file_id"] = files[dataset.get("role")]
        dataset.pop("file", None)
    spec = out.get("spec")
    if isinstance(spec, dict):
        if job is not None:
            spec["model"] = job.model
            spec["training_file"], spec["validation_file"] = job.training_file, job.validation_file
        for key in ("model", "training_file", "validation_file"):
            if _is_path(spec.get(key)):
                spec[key] = None
    base = out.get("base_model")
    if isinstance(base, dict):
        if job is not None:
            base["name"] = job.model
        for key in ("name", "path"):
            if _is_path(base.get(key)):
                base.pop(key)
    merged = out.get("merged_from")
    if isinstance(merged, dict) and _is_path(merged.get("adapter")):
        merged.pop("adapter")
    return out

"""Base models the studio offers: the bundled demo and the model folders under the configured dirs.

Read from `config.json` only (the API never imports torch or loads weights). Hub ids are accepted for
inference and jobs but not listed: the studio cannot know which ones a worker can reach.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from backend.services.job_checks import DEMO_MODEL, DEMO_MODEL_TYPE, HUB_ID, LINEAR_MODULES, LOCAL_NAME
from backend.settings import Settings

DEMO_FOLDER = re.compile(re.escape(DEMO_MODEL) + r"-v\d+")  # where the worker builds the demo


@dataclass(frozen=True)
class BaseModelInfo:
    id: str
    ref: str  # what a job's `model` / the worker's resolve_model receives
    owned_by: str
    created: int = 0
    model_type: str | None = None
    modules: list[str] = field(default_factory=list)  # linear module names LoRA can target


def _allowed_dirs(settings: Settings) -> list[Path]:
    return [*settings.model_dir_list, settings.data_dir / "models"]


def _local(folder: Path) -> BaseModelInfo | None:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not any(folder.glob("*.safetensors")):
        return None
    model_type = str(config.get("model_type") or "").lower() or None
    return BaseModelInfo(id=folder.name, ref=folder.name, owned_by="local", created=int(folder.stat().st_mtime),
                         model_type=model_type, modules=list(LINEAR_MODULES.get(model_type or "", ())))


def demo_model() -> BaseModelInfo:
    return BaseModelInfo(id=DEMO_MODEL, ref=DEMO_MODEL, owned_by="studio", model_type=DEMO_MODEL_TYPE,
                         modules=list(LINEAR_MODULES[DEMO_MODEL_TYPE]))


def list_base_models(*, settings: Settings) -> list[BaseModelInfo]:
    """The demo first, then local model folders by name (first dir wins on a name clash)."""
    found: dict[str, BaseModelInfo] = {}
    for base in _allowed_dirs(settings):
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            if folder.name in found or DEMO_FOLDER.fullmatch(folder.name) or not LOCAL_NAME.fullmatch(folder.name):
                continue
            if (info := _local(folder)) is not None:
                found[folder.name] = info
    return [demo_model(), *found.values()]


def find_base_model(*, settings: Settings, ref: str) -> BaseModelInfo | None:
    """A listed base by id, or a hub id (`org/name`, optionally `@revision`); None otherwise."""
    if ref == DEMO_MODEL:
        return demo_model()
    if LOCAL_NAME.fullmatch(ref):
        for base in _allowed_dirs(settings):
            if (base / ref / "config.json").is_file() and not DEMO_FOLDER.fullmatch(ref):
                return _local(base / ref)
        return None
    if HUB_ID.fullmatch(ref.partition("@")[0]):
        return BaseModelInfo(id=ref, ref=ref, owned_by="hub")
    return None

"""Base models the studio offers and the one lookup every route uses: the bundled demo, the model folders
under the configured dirs, and hub ids found in (or fetched into) the Hugging Face cache.

What a reference names is decided by `worker.finetune.model_refs` (torch-free, shared with the worker);
configs are read as JSON (the API never imports torch or loads weights).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.settings import Settings
from worker.finetune.model_refs import (
    DEMO_CONFIG_JSON,
    DEMO_MODEL,
    LOCAL_NAME,
    ModelRefError,
    cached_snapshot,
    has_weights,
    hub_offline,
    hub_snapshot,
    local_folder,
    not_cached,
    parse_model_ref,
    read_config,
    require_weights,
    shown,
)

DEMO_MODEL_TYPE = "llama"
DEMO_FOLDER = re.compile(re.escape(DEMO_MODEL) + r"-v\d+")  # where the worker builds the demo
LLAMA_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Model families whose linear layers we know by name; other families are checked by the worker.
LINEAR_MODULES: dict[str, tuple[str, ...]] = {family: LLAMA_LINEAR for family in (
    "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2")}


@dataclass(frozen=True)
class BaseModelInfo:
    id: str
    ref: str  # what a job's `model` / the worker's resolve_model receives
    owned_by: str
    created: int = 0
    model_type: str | None = None
    modules: list[str] = field(default_factory=list)  # linear module names LoRA can target
    config: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # its config.json


def allowed_dirs(settings: Settings) -> list[Path]:
    return [*settings.model_dir_list, settings.data_dir / "models"]


def _info(ref: str, owned_by: str, config: dict[str, Any], created: int = 0) -> BaseModelInfo:
    model_type = str(config.get("model_type") or "").lower() or None
    return BaseModelInfo(id=ref, ref=ref, owned_by=owned_by, created=created, model_type=model_type,
                         modules=list(LINEAR_MODULES.get(model_type or "", ())), config=config)


def demo_model() -> BaseModelInfo:
    return _info(DEMO_MODEL, "studio", DEMO_CONFIG_JSON)


def lookup_base_model(*, settings: Settings, ref: str, weights: bool = True,
                      fetch: bool = True) -> BaseModelInfo:
    """The base model `ref` names, with its config.json, or `ModelRefError` saying why not (never naming a
    server path). `weights=False` accepts a folder with config.json alone (estimates). A hub id must be in
    the HF cache; when it is not and the hub is online, `fetch` downloads its config.json to check it."""
    parsed = parse_model_ref(ref)
    if parsed.kind == "demo":
        return demo_model()
    if parsed.kind == "local":
        folder = local_folder(parsed, allowed_dirs(settings))
        if weights:
            require_weights(folder, parsed.text)
        return _info(parsed.text, "local", read_config(folder, parsed.text), int(folder.stat().st_mtime))
    folder = cached_snapshot(parsed)
    has_config = folder is not None and (folder / "config.json").is_file()
    if not has_config or (weights and not has_weights(folder)):
        if hub_offline():  # the worker could not download it either: say so now, not after a queue wait
            raise not_cached(parsed, weights=has_config)
        if not fetch:
            raise ModelRefError(f"Hub model '{shown(parsed.text)}' is not in the Hugging Face cache.")
        folder = hub_snapshot(parsed, weights=False)  # its config only: the worker downloads the weights
    return _info(parsed.text, "hub", read_config(folder, parsed.text))


def list_base_models(*, settings: Settings) -> list[BaseModelInfo]:
    """The demo first, then local model folders by name (first dir wins on a name clash)."""
    found: dict[str, BaseModelInfo] = {}
    for base in allowed_dirs(settings):
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir()):
            name = folder.name
            if name in found or DEMO_FOLDER.fullmatch(name) or not LOCAL_NAME.fullmatch(name):
                continue
            try:
                found[name] = lookup_base_model(settings=settings, ref=name)
            except ModelRefError:
                continue
    return [demo_model(), *found.values()]


def find_base_model(*, settings: Settings, ref: str) -> BaseModelInfo | None:
    """A base model chat may use: the demo, a local model folder, or a hub id — cached, or left to the worker
    to download when the hub is online (offline, an uncached one is None at once); None otherwise."""
    try:
        parsed = parse_model_ref(ref)
        if parsed.kind == "hub":
            if hub_offline():
                return lookup_base_model(settings=settings, ref=ref, fetch=False)
            return BaseModelInfo(id=parsed.text, ref=parsed.text, owned_by="hub")
        if parsed.kind == "local" and DEMO_FOLDER.fullmatch(parsed.name):
            return None
        return lookup_base_model(settings=settings, ref=ref)
    except ModelRefError:
        return None

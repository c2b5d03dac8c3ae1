"""What a job's `model` names and where it may load from, decided from its text alone — never from whether a
path happens to exist — so `examples/some-model@main` is a hub id (looked up in the Hugging Face cache) and
never the relative folder `examples/some-model`. Torch-free: the API checks jobs with it, the worker loads
with it; both read the same rules from here.

A reference is one of:
- the bundled demo, `studio-tiny-llama`;
- a local model folder: its name under one of the allowed dirs (`my-llama`), or an absolute path inside
  one of them; a relative path is never loaded;
- a hub id `org/name` (huggingface_hub's repo-id grammar), optionally `@revision`; it loads from the
  snapshot folder in the HF cache (an absolute path), downloaded first unless the hub is offline.

Messages never name server paths, and a missing folder and a forbidden one get the same answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

DEMO_MODEL = "studio-tiny-llama"
# The demo's shape, as its config.json would say (the folder is built by the worker on first use).
DEMO_CONFIG_JSON = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4, "intermediate_size": 704}
LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")  # one folder name, never "." or ".."
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")  # a branch, tag or commit (`refs/pr/1` too)
MAX_PATH = 1024
NAME_MAX = 255  # one path component (Linux' NAME_MAX)
# What the worker downloads for a hub model: configs, safetensors weights, tokenizer files; never
# pickled weights (`*.bin`) nor code (`*.py`): DESIGN §5 loads safetensors only and no remote code.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja"]
HINT = ("use a model from GET /v1/models, the name of a model folder in the model directories, an absolute "
        "path inside them, or a Hugging Face hub id like 'org/name'")


class ModelRefError(ValueError):
    """The reference cannot be used; `code` is the API's error code (`model_not_found`, `invalid_model`)."""

    def __init__(self, message: str, code: str = "model_not_found"):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ModelRef:
    kind: Literal["demo", "local", "hub"]
    text: str  # as the caller wrote it
    name: str  # the demo's name, a folder name or absolute path, or a hub repo id
    revision: str | None = None


def shown(ref: str, limit: int = 80) -> str:
    """The reference as a message may echo it: shortened, so a 300-character name stays readable."""
    ref = ref.strip()
    return ref if len(ref) <= limit else ref[:limit] + "…"


def parse_model_ref(ref: str) -> ModelRef:
    """Classify `ref` by its syntax; raises `ModelRefError` for relative paths and malformed names."""
    text = ref.strip()
    if not text:
        raise ModelRefError("`model` is empty: " + HINT + ".", "invalid_model")
    if text == DEMO_MODEL:
        return ModelRef("demo", text, text)
    if text.startswith(("/", "~")):
        return _absolute(text)
    if "@" in text or "/" in text:
        return _hub(text)
    if LOCAL_NAME.fullmatch(text) and ".." not in text:
        return ModelRef("local", text, text)
    raise ModelRefError(f"Unknown model '{shown(text)}': {HINT}.", "invalid_model")


def _absolute(text: str) -> ModelRef:
    path = os.path.normpath(os.path.expanduser(text))
    if len(path) > MAX_PATH or "\x00" in path or any(len(part) > NAME_MAX for part in path.split(os.sep)):
        raise ModelRefError(f"Model '{shown(text)}' was not found or is not allowed: {HINT}.")
    return ModelRef("local", text, path)


def _hub(text: str) -> ModelRef:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo_id, at, revision = text.partition("@")
    problem = None
    if repo_id.count("/") != 1 or repo_id.startswith("."):
        problem = "a hub id is 'org/name'; a relative path is never loaded"
    elif at and not (REVISION.fullmatch(revision) and ".." not in revision):
        problem = "the revision after '@' must be a branch, tag or commit"
    else:
        try:
            validate_repo_id(repo_id)
        except HFValidationError as exc:
            problem = str(exc).split(":")[0].rstrip(".").lower()
    if problem:
        raise ModelRefError(f"Model '{shown(text)}' is not a valid reference ({problem}): {HINT}.", "invalid_model")
    return ModelRef("hub", text, repo_id, revision or None)


# ---------------------------------------------------------------------------------------------------
# Local folders


def not_found(ref: str) -> ModelRefError:
    """The one answer for a folder that is missing, outside the allowed dirs, or not a model folder."""
    return ModelRefError(f"Model '{shown(ref)}' was not found or is not allowed: {HINT}.")


def local_folder(ref: ModelRef, allowed: Sequence[Path]) -> Path:
    """The resolved folder of a local reference, inside one of `allowed` and holding a config.json."""
    for base in allowed:
        base = Path(os.path.abspath(base))
        candidate = base / ref.name if not os.path.isabs(ref.name) else Path(ref.name)
        if not _inside(candidate, base):  # checked on the text first: nothing outside is ever touched
            continue
        try:
            real = candidate.resolve()
            if _inside(real, base.resolve()) and (real / "config.json").is_file():
                return real
        except OSError:  # a name too long, a loop of links: not found, like any other miss
            continue
    raise not_found(ref.text)


def _inside(path: Path, base: Path) -> bool:
    return path == base or base in path.parents


def has_weights(folder: Path) -> bool:
    return any(folder.glob("*.safetensors"))


def require_weights(folder: Path, ref: str) -> None:
    if not has_weights(folder):
        raise ModelRefError(f"Model '{shown(ref)}' has no .safetensors weights; only safetensors are loaded "
                            "(a folder with config.json alone is enough for estimates, not for training).",
                            "invalid_model")


def read_config(folder: Path, ref: str) -> dict[str, Any]:
    """A model folder's config.json as a dict (read as JSON: no transformers, no torch)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict):
        raise ModelRefError(f"Model '{shown(ref)}' has an unreadable config.json.", "invalid_model")
    return config


# ---------------------------------------------------------------------------------------------------
# Hub ids: always through the HF cache's snapshot folder (an absolute path)


def hub_offline() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`): as huggingface_hub read it at import, or set since."""
    from huggingface_hub import constants

    now = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or now.strip().upper() in {"1", "ON", "YES", "TRUE"}


def cached_snapshot(ref: ModelRef) -> Path | None:
    """The cached snapshot folder of a hub reference (no network); None when this revision is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(ref.name, revision=ref.revision, local_files_only=True)).resolve()
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def hub_snapshot(ref: ModelRef, *, weights: bool) -> Path:
    """The absolute snapshot folder to load a hub model from: the cached one when it holds what is needed
    (config.json, plus safetensors when `weights`), else downloaded (config only when not `weights`),
    unless the hub is offline."""
    folder = cached_snapshot(ref)
    if folder is not None and (folder / "config.json").is_file() and (not weights or has_weights(folder)):
        return folder
    if hub_offline():
        raise not_cached(ref, weights=weights)
    from huggingface_hub import snapshot_download

    patterns = HUB_PATTERNS if weights else ["config.json"]
    try:
        folder = Path(snapshot_download(ref.name, revision=ref.revision, allow_patterns=patterns)).resolve()
    except (OSError, ValueError) as exc:  # huggingface_hub's: missing repo/revision, gated, network (OSErrors)
        raise hub_error(ref, exc) from None
    if not (folder / "config.json").is_file():
        raise ModelRefError(f"Hub model '{shown(ref.text)}' has no config.json; is it a transformers model?",
                            "invalid_model")
    return folder


def not_cached(ref: ModelRef, *, weights: bool) -> ModelRefError:
    what = "its weights are" if weights else "it is"
    return ModelRefError(
        f"Hub model '{shown(ref.text)}': {what} not in this machine's Hugging Face cache and the hub is offline "
        f"(HF_HUB_OFFLINE). Download it first (`hf download {ref.name}`), or use a local model folder.")


def hub_error(ref: ModelRef, exc: BaseException) -> ModelRefError:
    """A huggingface_hub failure as one actionable line (no URLs, no paths)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, GatedRepoError):
        why = "it is gated: accept its licence on the hub and set HF_TOKEN"
    elif isinstance(exc, RepositoryNotFoundError):
        why = "no such model on the Hugging Face hub (or it is private: set HF_TOKEN)"
    elif isinstance(exc, RevisionNotFoundError):
        why = f"the hub has no revision '{shown(ref.revision or '', 40)}'"
    else:
        why = "the Hugging Face hub could not be reached and it is not in the cache"
    return ModelRefError(f"Hub model '{shown(ref.text)}' cannot be used: {why}.")


def text_config(config: dict[str, Any]) -> dict[str, Any]:
    """The decoder's part of a config.json (multimodal configs nest it under `text_config`)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, dict) else config

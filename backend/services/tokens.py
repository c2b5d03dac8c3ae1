"""Token counts of datasets with a base model's tokenizer, through `tokenizers` alone (no torch, no
transformers, nothing from the network).

Where a tokenizer comes from: the demo's is the one the worker saves with the demo model, or else the
same byte-level BPE trained on the bundled corpus (same corpus, same settings: the same ids) and cached
under the data dir; a local model folder's `tokenizer.json`; a hub id's `tokenizer.json` in the local
Hugging Face cache. Counts frame chats as ChatML (`worker.finetune.data.example_text`), so for other
chat templates they are off by a few tokens per message.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

from backend.settings import Settings
from worker.finetune.data import example_text, token_stats
from worker.finetune.models import DEMO_MODEL, DEMO_VERSION, train_demo_bpe

DEFAULT_MODEL = DEMO_MODEL
BATCH = 512
UPLOAD_SAMPLE = 10_000  # an upload counts the tokens of its first examples (~1.5 s per 10k chats of 400 chars)
STATS_SAMPLE = 20_000  # token_stats counts this many examples spread evenly over the file
LOCAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a branch, tag or commit; never a path
_tokenizers: dict[str, object] = {}
_stats_cache: OrderedDict[tuple, list[int]] = OrderedDict()
_lock = threading.Lock()
STATS_CACHE_SIZE = 32


class TokenizerUnavailable(LookupError):
    """No tokenizer for this model can be found offline; the message says what was looked for."""


def _demo_tokenizer_file(settings: Settings) -> Path:
    built = settings.data_dir / "models" / f"{DEMO_MODEL}-v{DEMO_VERSION}" / "tokenizer.json"
    if built.is_file():
        return built
    cached = settings.data_dir / "cache" / "tokenizers" / f"{DEMO_MODEL}-v{DEMO_VERSION}.json"
    if not cached.is_file():
        bpe = train_demo_bpe()  # the worker's tokenizer, minus the transformers wrapper
        cached.parent.mkdir(parents=True, exist_ok=True)
        # A temp name of its own per writer: concurrent first uploads each train, the last rename wins.
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}-{threading.get_ident()}.tmp")
        bpe.save(str(tmp))
        tmp.replace(cached)
    return cached


def tokenizer_file(*, settings: Settings, model: str) -> Path:
    """The `tokenizer.json` that `model` (a job's base model reference) uses."""
    if model == DEMO_MODEL:
        return _demo_tokenizer_file(settings)
    if model.startswith(("/", "~")):  # an absolute folder, allowed where a job's model is (model_refs' rules)
        from worker.finetune.model_refs import (
            ModelRefError,
            local_folder,
            parse_model_ref,
        )

        try:
            folder = local_folder(parse_model_ref(model), [*settings.model_dir_list, settings.data_dir / "models"])
        except ModelRefError as exc:
            raise TokenizerUnavailable(str(exc)) from None
        if (folder / "tokenizer.json").is_file():
            return folder / "tokenizer.json"
        raise TokenizerUnavailable(f"The model folder '{model[:128]}' has no tokenizer.json.")
    if LOCAL_NAME.fullmatch(model):
        for base in [*settings.model_dir_list, settings.data_dir / "models"]:
            if (base / model / "tokenizer.json").is_file():
                return base / model / "tokenizer.json"
        raise TokenizerUnavailable(f"No local model '{model}' with a tokenizer.json is available.")
    name, _, revision = model.partition("@")
    if HUB_ID.fullmatch(name) and (not revision or REVISION.fullmatch(revision)):
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "tokenizer.json", revision=revision or None)
        if isinstance(found, str):
            return Path(found)
        raise TokenizerUnavailable(f"The tokenizer of '{model}' is not in the local Hugging Face cache; "
                                   "the studio does not download it.")
    raise TokenizerUnavailable(f"Unknown model '{model[:128]}': use '{DEMO_MODEL}', a local model folder's "
                               "name or a cached hub id.")


def tokenizer_from_file(path: Path | str, model: str = "the model"):
    """A `tokenizers.Tokenizer` read from `path`, once per file version in this process."""
    from tokenizers import Tokenizer

    path = Path(path)
    key = f"{path}:{path.stat().st_mtime_ns}"
    with _lock:
        if key not in _tokenizers:
            try:
                _tokenizers[key] = Tokenizer.from_file(str(path))
            except Exception as exc:  # noqa: BLE001 - the Rust side raises bare Exceptions for bad files
                raise TokenizerUnavailable(f"The tokenizer of '{model}' cannot be read ({exc}).") from None
        return _tokenizers[key]


def load_tokenizer(*, settings: Settings, model: str):
    """A `tokenizers.Tokenizer` for `model`."""
    return tokenizer_from_file(tokenizer_file(settings=settings, model=model), model)


class TokenCounter:
    """Feed normalised examples one by one (`add`); every `every`-th is counted, at most `limit` of them.
    Texts are encoded in batches and only their lengths are kept: tokenizing is the slow part of an upload
    (~10x the validation), so big files are sampled."""

    def __init__(self, tokenizer, *, every: int = 1, limit: int | None = None):
        self.tokenizer, self.pending, self.lengths = tokenizer, [], []
        self.every, self.limit, self.seen = max(1, every), limit, 0

    def add(self, data: dict) -> None:
        self.seen += 1
        if (self.seen - 1) % self.every or (self.limit is not None and
                                            len(self.lengths) + len(self.pending) >= self.limit):
            return
        self.pending.append(example_text(data))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> list[int]:
        if self.pending:
            encoded = self.tokenizer.encode_batch(self.pending, add_special_tokens=False)
            self.lengths.extend(len(e.ids) for e in encoded)
            self.pending = []
        return self.lengths


def cached_lengths(key: tuple, compute: Callable[[], list[int]]) -> list[int]:
    """Sorted token lengths for `key` (file hash, mapping, tokenizer file), computed once while cached."""
    with _lock:
        if key in _stats_cache:
            _stats_cache.move_to_end(key)
            return _stats_cache[key]
    lengths = sorted(compute())
    with _lock:
        _stats_cache[key] = lengths
        while len(_stats_cache) > STATS_CACHE_SIZE:
            _stats_cache.popitem(last=False)
    return lengths


def truncated(lengths: Iterable[int], max_seq_length: int) -> int:
    """How many examples are longer than `max_seq_length` tokens."""
    return sum(1 for n in lengths if n > max_seq_length)


def summary(lengths: list[int], model: str, num_examples: int) -> dict:
    """token_stats of the counted examples; `sampled` says when they are fewer than the file's."""
    return {"model": model, **token_stats(lengths), "sampled": len(lengths) < num_examples}

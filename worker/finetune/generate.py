"""Serve base models and trained artifacts: a small LRU of loaded bases (`ModelCache`) and
`stream_generate`, which yields text deltas and ends with a `Finished` (finish_reason + usage).

Why `model.generate` in a thread rather than a hand-written token loop: its temperature/top-p warpers
and KV cache are the reference ones. Prompt-learning adapters (prefix/prompt/P-tuning) are the exception to
"call `PeftModel.generate`": `generation_inputs` explains why and feeds their prefix or virtual tokens to
the base's `generate` itself. Its streamer hands us token *ids* (not
`TextIteratorStreamer`'s word-buffered text), so we decode incrementally here: one delta per token, a
stop string held back until it can no longer match, and never emitted. A stopping criterion lets the
consumer end the run early (stop string hit, client gone).

Why peft's multi-adapter API: adapters of one base share its weights, so the second adapter of a base
costs an adapter load (megabytes), not a base load (gigabytes). peft allows one tuner type per
`PeftModel`, so the cache keys a base by (base ref, tuner type); base-only requests reuse any of them
with adapters disabled.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from queue import Queue
from typing import Any

from .models import ResolvedModel, load_model, load_tokenizer, resolve_model

ARTIFACTS = ("base", "peft", "bottleneck", "full")
CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|endoftext|>")  # ChatML, Llama 3, GPT-style ends


class GenerationError(ValueError):
    """The request cannot be served as asked (the caller's mistake); `code` names it for the API."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Served:
    """What to load: the registry's `ServedModel` as a plain dict (`id, base, adapter_path, adapter_key,
    artifact`). For `full`, the model folder is `adapter_path` or else `base`."""

    base: str
    artifact: str = "base"
    adapter_path: str | None = None
    adapter_key: str | None = None
    id: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Served:
        served = cls(**{f.name: data[f.name] for f in fields(cls) if data.get(f.name) is not None})
        if served.artifact not in ARTIFACTS:
            raise GenerationError("invalid_model", f"unknown artifact kind {served.artifact!r}")
        if served.artifact in ("peft", "bottleneck") and not served.adapter_path:
            raise GenerationError("invalid_model", f"a {served.artifact} artifact needs adapter_path")
        return served


@dataclass(frozen=True)
class SamplingParams:
    """OpenAI's sampling knobs. temperature 0 = greedy; `seed` makes sampling repeatable."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingParams:
        values = {k: v for k, v in data.items() if k in {f.name for f in fields(cls)} and v is not None}
        stop = values.get("stop", ())
        values["stop"] = tuple(s for s in ([stop] if isinstance(stop, str) else stop) if s)
        return cls(**values)


@dataclass(frozen=True)
class Finished:
    """The last item `stream_generate` yields."""

    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int

    @property
    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


# ---------------------------------------------------------------------------------------------------
# The cache


@dataclass
class Entry:
    model: Any
    tokenizer: Any
    base: str
    kind: str  # base (a plain base or a PeftModel on it) | bottleneck | full
    peft_type: str | None = None  # the tuner type of the adapters on it (peft allows one per model)
    adapters: dict[str, str] = field(default_factory=dict)  # adapter key -> peft adapter name


class ModelCache:
    """Loaded models, least recently used evicted past `size` (`STUDIO_INFERENCE_CACHE_SIZE`, default 2).

    Not for concurrent use by design: one lock is held for a whole generation, because `set_adapter` is
    model-wide state. An inference worker serves one request at a time anyway (solo pool)."""

    def __init__(self, size: int | None = None, *, device: str | None = None, dtype: Any = None):
        self.size = max(1, size or int(os.environ.get("STUDIO_INFERENCE_CACHE_SIZE") or 2))
        self.device, self.dtype = device, dtype
        self.entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.base_loads = 0
        self.adapter_loads = 0
        self.lock = threading.RLock()

    @contextmanager
    def use(self, served: Served) -> Iterator[tuple[Any, Any]]:
        """(model, tokenizer) with `served`'s adapter active (or adapters disabled for a base)."""
        with self.lock:
            entry, adapter = self._entry(served)
            with _activated(entry.model, adapter) as model:
                yield model, entry.tokenizer

    def _entry(self, served: Served) -> tuple[Entry, str | None]:
        if served.artifact == "base":
            key = next((k for k, e in reversed(self.entries.items()) if e.kind == "base" and e.base == served.base),
                       ("base", served.base, None))
            return self._get(key, lambda: self._load_base(served.base)), None
        if served.artifact == "peft":
            return self._peft(served)
        if served.artifact == "bottleneck":
            key = ("bottleneck", served.base, served.adapter_path)
            return self._get(key, lambda: self._load_bottleneck(served)), None
        path = served.adapter_path or served.base
        return self._get(("full", path), lambda: self._load_full(path)), None

    def _get(self, key: tuple, load) -> Entry:
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        entry = load()
        self.entries[key] = entry
        self._evict()
        return entry

    def _peft(self, served: Served) -> tuple[Entry, str]:
        peft_type = _peft_type(served.adapter_path)
        key, plain = ("base", served.base, peft_type), ("base", served.base, None)
        if key not in self.entries and plain in self.entries:  # a base already loaded: adapters join it
            self.entries[key] = self.entries.pop(plain)
        entry = self._get(key, lambda: self._load_base(served.base))
        entry.peft_type = peft_type
        akey = served.adapter_key or served.adapter_path
        if akey not in entry.adapters:
            name = adapter_name(akey)
            if entry.adapters:
                entry.model.load_adapter(served.adapter_path, adapter_name=name)
            else:
                from peft import PeftModel

                entry.model = PeftModel.from_pretrained(entry.model, served.adapter_path, adapter_name=name)
                entry.model.eval()
            entry.adapters[akey] = name
            self.adapter_loads += 1
        return entry, entry.adapters[akey]

    def _load(self, resolved: ResolvedModel) -> tuple[Any, Any]:
        device, dtype = self.device or default_device(), self.dtype or default_dtype()
        model = load_model(resolved, dtype=dtype, device=device)
        model.eval()
        self.base_loads += 1
        return model, load_tokenizer(resolved)

    def _load_base(self, ref: str) -> Entry:
        model, tokenizer = self._load(resolve_model(ref))
        return Entry(model, tokenizer, base=ref, kind="base")

    def _load_bottleneck(self, served: Served) -> Entry:
        from .bottleneck import load_bottleneck_adapters

        model, tokenizer = self._load(resolve_model(served.base))
        model = load_bottleneck_adapters(model, served.adapter_path).eval()
        self.adapter_loads += 1
        return Entry(model, tokenizer, base=served.base, kind="bottleneck")

    def _load_full(self, path: str) -> Entry:
        """A registry folder: trusted, so loaded as is (not confined to STUDIO_MODEL_DIRS)."""
        model, tokenizer = self._load(ResolvedModel(name=Path(path).name, path=path, source="local"))
        return Entry(model, tokenizer, base=path, kind="full")

    def _evict(self) -> None:
        if len(self.entries) <= self.size:
            return
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def adapter_name(key: str) -> str:
    """A peft adapter name for a registry key (`name:3`): module-name safe and unique."""
    return re.sub(r"\W", "_", key)[:40] + "_" + hashlib.sha1(key.encode()).hexdigest()[:8]


def _peft_type(path: str) -> str:
    try:
        return json.loads((Path(path) / "adapter_config.json").read_text())["peft_type"]
    except (OSError, ValueError, KeyError):
        raise GenerationError("invalid_model", f"{path} is not a PEFT adapter folder (adapter_config.json)") from None


@contextmanager
def _activated(model: Any, adapter: str | None) -> Iterator[Any]:
    """The model to generate with: `adapter` active, or the base alone. Prompt-learning adapters leave the
    base's modules untouched, so "the base alone" is simply the wrapped model."""
    peft = sys.modules.get("peft")  # never imported (3 s) just to learn that a plain base is no PeftModel
    if adapter is not None:
        model.set_adapter(adapter)
        yield model
    elif _prompt_learning_config(model) is not None:
        yield model.get_base_model()
    elif peft is not None and isinstance(model, peft.PeftModel):
        with model.disable_adapter():
            yield model
    else:
        yield model


def default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def default_dtype() -> Any:
    import torch

    if not torch.cuda.is_available():
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


# ---------------------------------------------------------------------------------------------------
# Generation


def stream_generate(cache: ModelCache, served: Served, *, messages: list[dict[str, str]] | None = None,
                    prompt: str | None = None, params: SamplingParams = SamplingParams()) -> Iterator[str | Finished]:
    """Text deltas, then one `Finished`. Chat (`messages`) goes through the chat template with the
    generation prompt; a completion (`prompt`) is the raw text."""
    with cache.use(served) as (model, tokenizer):
        ids = encode(tokenizer, messages=messages, prompt=prompt)
        limit = context_limit(model, tokenizer)
        if len(ids) >= limit:
            raise GenerationError("context_length_exceeded",
                                  f"The prompt has {len(ids)} tokens; this model's context is {limit} tokens.")
        yield from _generate(model, tokenizer, ids, params, min(params.max_tokens, limit - len(ids)))


def encode(tokenizer: Any, *, messages: list[dict[str, str]] | None = None, prompt: str | None = None) -> list[int]:
    if messages is not None:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]  # the template places BOS itself
    else:
        ids = tokenizer(prompt or "", add_special_tokens=True)["input_ids"]
    if not ids:
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise GenerationError("invalid_prompt", "The prompt is empty.")
        ids = [start]
    return list(ids)


def context_limit(model: Any, tokenizer: Any) -> int:
    """The tokens a prompt and its answer may take: the model's context less a prompt adapter's virtual tokens."""
    limit = getattr(model.config, "max_position_embeddings", None)
    limit = int(limit or min(getattr(tokenizer, "model_max_length", 2048), 1 << 20))
    peft_config = _prompt_learning_config(model)
    return limit - (peft_config.num_virtual_tokens if peft_config is not None else 0)


def end_ids(model: Any, tokenizer: Any) -> set[int]:
    """eos of the model and tokenizer, plus chat end markers the vocabulary has (im_end, eot)."""
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        ids |= set(value) if isinstance(value, (list, tuple)) else ({value} if value is not None else set())
    vocab = tokenizer.get_vocab()
    ids |= {vocab[t] for t in CHAT_END_TOKENS if t in vocab}
    return ids


def sampling_config(params: SamplingParams, max_new: int, ends: set[int], pad: int) -> Any:
    """OpenAI's knobs as a `GenerationConfig`: greedy at temperature 0, else temperature + top-p with
    top-k off (0; left unset, transformers would apply its default of 50, which OpenAI does not have)."""
    from transformers import GenerationConfig

    sample = params.temperature > 0
    return GenerationConfig(max_new_tokens=max_new, do_sample=sample, temperature=params.temperature if sample else None,
                            top_p=params.top_p if sample else None, top_k=0, eos_token_id=sorted(ends),
                            pad_token_id=pad)


def _generate(model: Any, tokenizer: Any, ids: list[int], params: SamplingParams,
              max_new: int) -> Iterator[str | Finished]:
    import torch
    from transformers import StoppingCriteriaList

    ends = end_ids(model, tokenizer)
    config = sampling_config(params, max_new, ends,
                             tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ends))
    tokens, halt = _TokenQueue(), _Halt()
    input_ids = torch.tensor([ids], device=model.device)

    def run() -> None:
        try:
            with torch.inference_mode(), _seeded(params.seed):
                generator, inputs = generation_inputs(model, input_ids)
                generator.generate(**inputs, generation_config=config, streamer=tokens,
                                   stopping_criteria=StoppingCriteriaList([halt]))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            tokens.fail(exc)

    thread = threading.Thread(target=run, name="studio-generate", daemon=True)
    thread.start()
    try:
        yield from _decode(tokens, tokenizer, ends, params.stop, len(ids))
    finally:
        halt.set()  # a stop string, or a consumer that stopped reading: end the run at the next token
        thread.join()


def generation_inputs(model: Any, input_ids: Any) -> tuple[Any, dict[str, Any]]:
    """The model to call `generate` on, and its inputs (one prompt, no padding).

    Why not `PeftModel.generate` for prompt-learning adapters: peft 0.21's generation glue reads and writes
    the cache under `past_key_values`, which transformers 5 renamed `cache`, so it drops a prefix (prefix
    tuning and P-tuning v2 answered exactly as the base) and re-inserts the virtual tokens at every decoding
    step (prompt tuning, P-tuning). So we hand the base model what the adapter produces, as training's
    forward does: a prefix KV cache (`cache`, its positions counted in the attention mask), or the
    virtual-token embeddings in front of the prompt's. peft still computes them (`get_prompt`); transformers
    still decodes. tests/unit/test_methods_matrix.py checks every method against a greedy loop over its forward.
    """
    import torch

    peft_config = _prompt_learning_config(model)
    if peft_config is None:
        return model, {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    base = model.get_base_model()
    mask = torch.ones((1, peft_config.num_virtual_tokens + input_ids.shape[1]), dtype=torch.long,
                      device=input_ids.device)
    kind = str(getattr(peft_config.peft_type, "value", peft_config.peft_type))
    if kind == "PREFIX_TUNING":
        import inspect

        # transformers 5.0-5.2x named the forward's cache `past_key_values`; later versions `cache`
        name = "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        return base, {"input_ids": input_ids, "attention_mask": mask, name: model.get_prompt(batch_size=1)}
    if kind in ("PROMPT_TUNING", "P_TUNING"):
        prompts = model.get_prompt(batch_size=1).to(model.word_embeddings.weight.dtype)
        return base, {"inputs_embeds": torch.cat([prompts, model.word_embeddings(input_ids)], dim=1),
                      "attention_mask": mask}
    raise GenerationError("unsupported_model", f"{kind.lower()} adapters cannot be served yet")


def _prompt_learning_config(model: Any) -> Any:
    peft = sys.modules.get("peft")
    if peft is None or not isinstance(model, peft.PeftModel):
        return None
    config = model.active_peft_config
    return config if config.is_prompt_learning else None


def _decode(tokens: _TokenQueue, tokenizer: Any, ends: set[int], stops: tuple[str, ...],
            prompt_tokens: int) -> Iterator[str | Finished]:
    generated: list[int] = []
    sent, count, text = "", 0, ""
    for token in tokens:
        count += 1
        if token in ends:
            yield from _rest(text, sent)
            yield Finished("stop", prompt_tokens, count)
            return
        generated.append(token)
        text = tokenizer.decode(generated, skip_special_tokens=True)
        cut = _find_stop(text, stops)
        if cut is not None:
            yield from _rest(text[:cut], sent)
            yield Finished("stop", prompt_tokens, count)
            return
        safe = _safe_end(text, stops)
        if safe > len(sent):
            yield text[len(sent):safe]
            sent = text[:safe]
    yield from _rest(text, sent)
    yield Finished("length", prompt_tokens, count)


def _rest(text: str, sent: str) -> Iterator[str]:
    if len(text) > len(sent):
        yield text[len(sent):]


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _safe_end(text: str, stops: tuple[str, ...]) -> int:
    """How much of `text` can go out: not a half-decoded character, not what may become a stop string."""
    end = len(text)
    while end and text[end - 1] == "\ufffd":  # an incomplete UTF-8 sequence; the next token completes it
        end -= 1
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, end), hold, -1):
            if text.endswith(stop[:k], 0, end):
                hold = k
                break
    return end - hold


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Seed torch's RNG for this run only (the global state is restored afterwards)."""
    if seed is None:
        yield
        return
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class _TokenQueue:
    """A `generate` streamer that passes token ids through a queue (the first `put` is the prompt)."""

    _END = object()

    def __init__(self):
        self.queue: Queue = Queue()
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.queue.put(token)

    def end(self) -> None:
        self.queue.put(self._END)

    def fail(self, exc: BaseException) -> None:
        self.queue.put(exc)
        self.queue.put(self._END)

    def __iter__(self) -> Iterator[int]:
        while (item := self.queue.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item


class _Halt:
    """A stopping criterion another thread can trip."""

    def __init__(self):
        self.event = threading.Event()

    def set(self) -> None:
        self.event.set()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)

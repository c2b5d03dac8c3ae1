"""Resolve and load base models: the bundled demo, local directories, or hub ids.

Safety rules from DESIGN §5: `trust_remote_code=False` and safetensors only. Local directories load only
from under `STUDIO_MODEL_DIRS` or the data dir, so a job body cannot read arbitrary paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hashing import file_sha256
from .model_refs import (
    DEMO_MODEL,
    ModelRefError,
    hub_snapshot,
    local_folder,
    parse_model_ref,
    require_weights,
)

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

ASSETS = Path(__file__).parent / "assets"
DEMO_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
# Small enough for a CPU minute, shaped for bitsandbytes' CPU 4-bit kernels (out_features % 32 == 0).
DEMO_CONFIG = {
    "vocab_size": 8000, "hidden_size": 256, "intermediate_size": 704, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
}
DEMO_VERSION = "1"

# ChatML, with {% generation %} markers so "assistant tokens only" masks can be derived from it.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{ '\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelError(ValueError):
    """The model reference cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a base model comes from: `path` (an absolute folder) is what `from_pretrained` receives;
    a hub model's `revision` is its snapshot's commit, a local one's a hash of its weights."""

    name: str
    path: str
    source: str  # "demo" | "local" | "hub"
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.source != "hub"


def data_dir() -> Path:
    return Path(os.environ.get("STUDIO_DATA_DIR") or Path.home() / ".studio").expanduser()


def model_dirs() -> list[Path]:
    """Directories local base models may be loaded from: `STUDIO_MODEL_DIRS` plus the data dir."""
    raw = os.environ.get("STUDIO_MODEL_DIRS", "")
    dirs = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [*dirs, data_dir() / "models"]


def resolve_model(ref: str, *, weights: bool = True) -> ResolvedModel:
    """Turn a job's `model` into an absolute folder to load (model_refs decides what `ref` names from its
    text; a hub id loads from its HF cache snapshot). `weights=False` (estimates) needs config.json only."""
    try:
        parsed = parse_model_ref(ref)
        if parsed.kind == "demo":
            return ResolvedModel(name=parsed.text, path=str(ensure_demo_model()), source="demo",
                                 revision=DEMO_VERSION)
        if parsed.kind == "hub":
            folder = hub_snapshot(parsed, weights=weights)
            return ResolvedModel(name=parsed.text, path=str(folder), source="hub", revision=folder.name)
        folder = local_folder(parsed, model_dirs())
        if weights:
            require_weights(folder, parsed.text)
        return ResolvedModel(name=parsed.text, path=str(folder), source="local",
                             revision=weights_sha256(folder)[:16] if weights else None)
    except ModelRefError as exc:
        raise ModelError(str(exc)) from None


def weights_sha256(folder: Path) -> str:
    """A content hash of a local model's weights: its revision when there is no git commit."""
    digest = hashlib.sha256()
    for file in sorted(Path(folder).glob("*.safetensors")):
        digest.update(file.name.encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------
# The demo model


def demo_model_dir() -> Path:
    return data_dir() / "models" / f"{DEMO_MODEL}-v{DEMO_VERSION}"


def ensure_demo_model() -> Path:
    """Build the demo model once (deterministically) into the data dir and return its folder."""
    target = demo_model_dir()
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        build_demo_model(staging)
        try:
            staging.rename(target)  # atomic: a concurrent builder either wins or finds it done
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def train_demo_bpe(corpus: Path = ASSETS / "tokenizer_corpus.txt") -> Any:
    """The demo's byte-level BPE trained on the bundled corpus (same corpus, same vocab, every time); the
    `tokenizers` object alone, so the API can count tokens without transformers."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus.read_text(encoding="utf-8").splitlines(), vocab_size=DEMO_CONFIG["vocab_size"], min_frequency=2,
        special_tokens=DEMO_SPECIAL_TOKENS, show_progress=False,
    )
    return bpe


def build_demo_tokenizer(corpus: Path = ASSETS / "tokenizer_corpus.txt") -> PreTrainedTokenizerBase:
    """The demo's BPE (`train_demo_bpe`) as a transformers tokenizer with the ChatML template."""
    from transformers import PreTrainedTokenizerFast

    bpe = train_demo_bpe(corpus)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=None, eos_token="<|im_end|>", unk_token=None,
        pad_token="<pad>", model_max_length=DEMO_CONFIG["max_position_embeddings"],
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def build_demo_model(folder: Path, seed: int = 0, **overrides: Any) -> Path:
    """Write a randomly initialised tiny Llama with the demo tokenizer into `folder`."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_demo_tokenizer()
    config = LlamaConfig(
        **{**DEMO_CONFIG, **overrides},
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")],
        pad_token_id=tokenizer.pad_token_id, bos_token_id=config.bos_token_id,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "studio_model.json").write_text(json.dumps({"name": DEMO_MODEL, "version": DEMO_VERSION, "seed": seed}))
    return folder


# ---------------------------------------------------------------------------------------------------
# Loading


def load_model_config(ref: str | ResolvedModel) -> PretrainedConfig:
    """The model's config only (no weights): enough for estimates and target-module checks."""
    from transformers import AutoConfig

    resolved = ref if isinstance(ref, ResolvedModel) else resolve_model(ref, weights=False)
    try:  # `path` is always an absolute folder (a hub id's is its cache snapshot, already at its revision)
        return AutoConfig.from_pretrained(resolved.path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise _load_error("the config of model", resolved, exc) from None


def load_tokenizer(resolved: ResolvedModel) -> PreTrainedTokenizerBase:
    """The model's tokenizer with a pad token and a chat template (ChatML when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise _load_error("the tokenizer of model", resolved, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def quantization_config(quantization: str, compute_dtype: torch.dtype, double_quant: bool = True):
    """NF4/FP4 4-bit (QLoRA) or LLM.int8() 8-bit through `BitsAndBytesConfig`; None for "none"."""
    from transformers import BitsAndBytesConfig

    if quantization in ("nf4", "fp4"):
        return BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type=quantization, bnb_4bit_use_double_quant=double_quant,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if quantization == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def load_model(
    resolved: ResolvedModel, *, dtype: torch.dtype, quantization: str = "none", double_quant: bool = True,
    device: str | None = None,
) -> PreTrainedModel:
    """Load the base weights (safetensors only, no remote code), quantized when asked."""
    from transformers import AutoModelForCausalLM

    # transformers 5.25 kernelizes by default (`use_kernels=None` -> True): layers swapped for kernels fetched
    # from the Hugging Face hub at load time, i.e. remote code and network at run time, and without the
    # `kernels` package (the GPU image has none) every load fails. The studio runs no remote code: off.
    kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True, "trust_remote_code": False,
                              "use_kernels": False}
    qconfig = quantization_config(quantization, dtype, double_quant)
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
        kwargs["device_map"] = {"": device or _default_device()}
    from safetensors import SafetensorError

    try:
        model = AutoModelForCausalLM.from_pretrained(resolved.path, **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:
        raise _load_error("model", resolved, exc) from None
    if qconfig is None and device:
        model.to(device)
    if resolved.source == "hub":  # what PEFT writes as base_model_name_or_path: the portable hub id, not
        model.name_or_path = model.config.name_or_path = resolved.name.partition("@")[0]  # this machine's cache
    return model


def _default_device() -> str:
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def _load_error(what: str, resolved: ResolvedModel, exc: BaseException) -> ModelError:
    """The library's reason, with the server's folders taken out: job errors are shown to members."""
    from huggingface_hub import constants

    text = _first_line(exc)
    folders = [resolved.path, *(str(d.resolve()) for d in model_dirs()), str(constants.HF_HUB_CACHE)]
    for folder in sorted(folders, key=len, reverse=True):
        text = text.replace(folder, "<model folder>" if folder == resolved.path else "<models>")
    return ModelError(f"cannot load {what} {resolved.name!r}: {text}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

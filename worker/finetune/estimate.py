"""How many parameters a job trains and how much accelerator memory it needs, before any weights load.

Parameters are counted, not guessed: the model is built on the meta device (shapes only, no memory, a 65B
config in well under a second) and the job's method is applied by the same `methods.apply_method` that
training uses. Memory is then priced part by part for one training device:

- weights: the frozen base at its storage precision (16-bit, fp32, 4-bit NF4/FP4 or LLM.int8());
- adapter: the trainable weights of a PEFT method (0 for full/freeze: theirs are already in `weights`);
- gradients: one per trainable parameter at the training precision;
- optimizer: AdamW's fp32 m and v, 8 bytes per trainable parameter (QLoRA uses 32-bit paged AdamW,
  as in the paper, so 8 bytes there too);
- activations: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models".

It is a planning figure: CUDA context, allocator fragmentation and framework buffers come on top.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig

from . import methods, models
from .spec import FULL_WEIGHT_TYPES, PROMPT_TYPES, FitError, JobSpec, check_fits_model
from .train import (
    DEFAULT_BATCH_SIZE,  # what `batch_size: "auto"` becomes: the trainer's own default
)

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
ADAM_STATE_BYTES = 8  # fp32 exp_avg + exp_avg_sq
QUANT_BLOCK = 64  # bitsandbytes 4-bit blocksize: one absmax per 64 weights
DOUBLE_QUANT_BLOCK = 256  # double quantization: 8-bit absmaxes, one fp32 constant per 256 blocks
GB = 1e9


@dataclass
class MemoryEstimate:
    """Bytes by part; `total` is their sum."""

    weights: int
    adapter: int
    gradients: int
    optimizer: int
    activations: int
    total: int


@dataclass
class Estimate:
    total_params: int  # the base model's parameters
    trainable_params: int  # what the method trains (adapter, prompt encoder, or base weights)
    memory: MemoryEstimate
    assumptions: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate(spec: JobSpec, *, device: str = "cuda") -> Estimate:
    """Estimate a job from its spec, loading only the model's config (never its weights); sizes above the
    model's width are refused as the API refuses them (`studio estimate` has no API in front)."""
    config = models.load_model_config(spec.model)
    try:
        check_fits_model(spec, config.to_dict())
    except FitError as exc:
        raise methods.MethodError(str(exc)) from None
    return estimate_from_config(config, spec, device=device)


def estimate_from_config(config: PretrainedConfig, spec: JobSpec, *, device: str = "cuda") -> Estimate:
    tuning = spec.tuning
    precision = resolve_precision(spec.training.precision, device)
    quant = getattr(tuning, "quantization", "none")
    double_quant = bool(getattr(tuning, "double_quant", False)) and quant in ("nf4", "fp4")
    total, trainable, weights = _count(config, tuning, BYTES[precision], quant, double_quant)

    full_weights = tuning.type in FULL_WEIGHT_TYPES
    adapter = 0 if full_weights else trainable * BYTES[precision]
    gradients = trainable * BYTES[precision]
    optimizer = trainable * ADAM_STATE_BYTES

    dpo = spec.stage == "dpo"
    if dpo and full_weights:
        weights += total * BYTES[precision]  # TRL keeps a frozen reference copy; PEFT just disables adapters
    batch = spec.method.hyperparameters.batch_size
    batch = DEFAULT_BATCH_SIZE if batch == "auto" else batch
    seq = spec.training.max_seq_length + (tuning.num_virtual_tokens if tuning.type in PROMPT_TYPES else 0)
    layers = _text_config(config).num_hidden_layers
    if tuning.type == "freeze" and not tuning.train_embeddings:
        layers = min(layers, tuning.trainable_layers)  # nothing below the first trainable block needs a grad
    activations = activation_bytes(
        _text_config(config), batch=batch * (2 if dpo else 1), seq=seq, bytes_per_value=BYTES[precision],
        checkpointing=spec.training.gradient_checkpointing, layers=layers,
    )
    memory = MemoryEstimate(weights, adapter, gradients, optimizer, activations,
                            weights + adapter + gradients + optimizer + activations)
    assumptions = {
        "device": device,
        "precision": precision,
        "quantization": quant,
        "double_quant": double_quant,
        "batch_size": batch,
        "batch_size_auto": spec.method.hyperparameters.batch_size == "auto",
        "seq_len": seq,
        "gradient_checkpointing": spec.training.gradient_checkpointing,
        "optimizer": "paged AdamW 32-bit" if quant in ("nf4", "fp4") else "AdamW (fp32 states)",
        "activation_layers": layers,
        "dpo_pairs": dpo,
    }
    return Estimate(total, trainable, memory, assumptions)


def resolve_precision(precision: str, device: str) -> str:
    """"auto" is bf16 on a GPU (every card QLoRA targets supports it) and fp32 on a CPU."""
    if precision != "auto":
        return precision
    return "bf16" if device.startswith("cuda") else "fp32"


def _text_config(config: PretrainedConfig) -> PretrainedConfig:
    """The decoder's config (multimodal configs nest it under `text_config`)."""
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _count(config: PretrainedConfig, tuning: Any, nbytes: int, quant: str, double_quant: bool) -> tuple[int, int, int]:
    """(base params, trainable params, base weight bytes), all from a weightless meta-device model."""
    if tuning.type == "prompt_tuning" and tuning.init_text:
        tuning = tuning.model_copy(update={"init_text": None})  # text init needs a tokenizer, not the count
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
        total = sum(p.numel() for p in model.parameters())  # parameters() yields tied weights once
        weights = _weight_bytes(model, nbytes, quant, double_quant)
        adapted = methods.apply_method(model, tuning, total_steps=1000)
    trainable = sum(p.numel() for p in adapted.parameters() if p.requires_grad)
    return total, trainable, weights


def _weight_bytes(model: torch.nn.Module, nbytes: int, quant: str, double_quant: bool) -> int:
    """Base weights at rest. bitsandbytes quantizes the decoder's Linear weights; embeddings, the output
    head, norms and biases stay at 16-bit."""
    params = {id(p): p for p in model.parameters()}
    if quant == "none":
        return sum(p.numel() for p in params.values()) * nbytes
    head = model.get_output_embeddings()
    quantized = {
        id(m.weight): m.weight for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not head
    }
    total = sum(p.numel() for key, p in params.items() if key not in quantized) * 2
    for weight in quantized.values():
        total += quantized_bytes(weight.numel(), weight.shape[0], quant, double_quant)
    return total


def quantized_bytes(numel: int, rows: int, quant: str, double_quant: bool = False) -> int:
    """One quantized Linear weight: 4-bit codes plus block constants, or int8 plus fp32 per-row scales."""
    if quant == "int8":
        return numel + 4 * rows
    blocks = math.ceil(numel / QUANT_BLOCK)
    constants = blocks + 4 * math.ceil(blocks / DOUBLE_QUANT_BLOCK) if double_quant else 4 * blocks
    return math.ceil(numel / 2) + constants


def activation_bytes(
    config: PretrainedConfig, *, batch: int, seq: int, bytes_per_value: int, checkpointing: bool, layers: int,
) -> int:
    """Korthikanti et al.: s·b·h·(34 + 5·a·s/h) bytes per decoder layer at 16-bit, without recomputation
    (the s² term assumes eager attention; fused attention stores less, so this errs high). With gradient
    checkpointing each layer keeps only its input (2·s·b·h) and one layer is live at a time. The fp32
    logits for the loss (b·s·vocab·4) come on top either way."""
    h, a = config.hidden_size, config.num_attention_heads
    s, b = seq, batch
    scale = bytes_per_value / 2  # the paper counts 16-bit values
    full_layer = int((34 * s * b * h + 5 * a * s * s * b) * scale)
    logits = b * s * config.vocab_size * 4
    if checkpointing:
        return int(layers * 2 * s * b * h * scale) + full_layer + logits
    return layers * full_layer + logits


def format_estimate(est: Estimate) -> str:
    """A small table for `studio estimate JOB.json`."""
    a, m = est.assumptions, est.memory
    share = est.trainable_params / est.total_params if est.total_params else 0.0
    quant = a["quantization"] + (" + double quant" if a["double_quant"] else "")
    lines = [
        f"parameters      {_count_str(est.total_params):>10}",
        f"trainable       {_count_str(est.trainable_params):>10}  ({share:.2%})",
        "",
        "memory             GB",
    ]
    for part in ("weights", "adapter", "gradients", "optimizer", "activations"):
        lines.append(f"  {part:<13}{getattr(m, part) / GB:>9.2f}")
    lines += [
        f"  {'total':<13}{m.total / GB:>9.2f}",
        "",
        (f"assumes {a['precision']}, quantization {quant}, batch {a['batch_size']}"
        f"{' (auto)' if a['batch_size_auto'] else ''} x seq {a['seq_len']}, gradient checkpointing "
        f"{'on' if a['gradient_checkpointing'] else 'off'}, {a['optimizer']}, one {a['device']} device"),
    ]
    return "\n".join(lines)


def _count_str(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)

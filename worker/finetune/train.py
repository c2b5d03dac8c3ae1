"""Run one job: spec -> data -> model + method -> train -> artifacts (torchtune's recipe shape).

`run()` is what `studio train` and the worker's training subprocess call. Training is transformers'
`Trainer` (supervised, pretraining) or trl's `DPOTrainer` (dpo); events leave through a `Reporter`;
`stop()` is polled after every step so a caller can cancel, or pause (checkpoint, then exit).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import methods as methods_
from .batching import TokenizedData, pack_examples, tokenize_dataset
from .data import LoadedDataset, read_dataset
from .models import load_model, load_tokenizer, resolve_model
from .reporting import (
    FanoutReporter,
    JsonlReporter,
    Reporter,
    make_event,
    metrics_message,
)
from .spec import PROMPT_TYPES, JobSpec

StopSignal = Callable[[], "str | None"]  # returns None, "cancel" or "pause"

DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 8
DEFAULT_DPO_BETA = 0.1
# Learning rates a practitioner starts from, per family (multiplied by learning_rate_multiplier).
DEFAULT_LEARNING_RATES = {
    **{t: 2e-4 for t in ("lora", "dora", "qlora", "adalora", "loha", "lokr")},
    "ia3": 3e-3, "adapter": 1e-3, "freeze": 2e-5, "full": 2e-5,
    **{t: 1e-2 for t in PROMPT_TYPES},
}


class TrainingError(RuntimeError):
    """A run that cannot go on, with a message for the person who submitted it."""


@dataclass
class Plan:
    """Every "auto" and default resolved: recorded in the lineage and shown by the API."""

    n_epochs: int
    batch_size: int
    learning_rate: float
    total_steps: int
    steps_per_epoch: int
    save_steps: int
    eval_steps: int | None
    seed: int
    device: str
    precision: str
    quantization: str
    optimizer: str
    beta: float | None = None

    def hyperparameters(self) -> dict[str, Any]:
        hp = {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
              "learning_rate_multiplier": None, "learning_rate": self.learning_rate}
        if self.beta is not None:
            hp["beta"] = self.beta
        return hp


@dataclass
class TrainResult:
    status: str  # "succeeded" | "cancelled" | "paused"
    output_dir: str
    plan: Plan
    total_params: int
    trainable_params: int
    trained_tokens: int
    global_step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    warnings: list[dict[str, str]] = field(default_factory=list)  # {code, message}, e.g. loss_diverged

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# Planning


def resolve_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def keep_freed_memory() -> bool:
    """Stop glibc from handing big freed blocks back to the kernel (Linux/glibc only; True if set).

    A CPU training step allocates and frees tensors of 4-130 MB; glibc serves blocks above its mmap
    threshold (32 MB at most) with fresh mmaps and trims the heap on free, so every step page-faults and the
    kernel zeroes the same memory again (+15% tokens/s on a packed CPU run, docs/benchmarks.md). Process-wide
    and irreversible: the process keeps its peak heap until it exits, which suits a process that trains
    one job (the worker's training subprocess, `studio train`)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it (musl's mallopt does nothing)
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))


def resolve_precision(requested: str, device: str) -> str:
    import torch

    if requested == "auto":
        if device == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if requested == "fp16" and device != "cuda":
        raise TrainingError("precision fp16 needs a GPU; use fp32 or bf16 on the CPU")
    return requested


def resolve_batch_size(spec: JobSpec) -> int:
    size = spec.method.hyperparameters.batch_size
    return DEFAULT_BATCH_SIZE if size == "auto" else size


def make_plan(spec: JobSpec, *, num_batches: int, device: str) -> Plan:
    hp = spec.method.hyperparameters
    training = spec.training
    n_epochs = DEFAULT_EPOCHS if hp.n_epochs == "auto" else hp.n_epochs
    batch_size = resolve_batch_size(spec)
    multiplier = 1.0 if hp.learning_rate_multiplier == "auto" else hp.learning_rate_multiplier
    lr = (training.learning_rate or DEFAULT_LEARNING_RATES[spec.tuning.type]) * multiplier
    steps_per_epoch = max(1, math.ceil(num_batches / training.gradient_accumulation_steps))
    total = training.max_steps or steps_per_epoch * n_epochs
    precision = resolve_precision(training.precision, device)
    quantization = getattr(spec.tuning, "quantization", "none")
    optimizer = "paged_adamw_32bit" if spec.tuning.type == "qlora" and device == "cuda" else "adamw_torch"
    beta = None
    if spec.stage == "dpo":
        beta = DEFAULT_DPO_BETA if hp.beta == "auto" else hp.beta
    return Plan(
        n_epochs=n_epochs, batch_size=batch_size, learning_rate=lr, total_steps=total,
        steps_per_epoch=steps_per_epoch, save_steps=training.save_steps or max(10, total // 10),
        eval_steps=training.eval_steps or (max(1, total // 10) if spec.validation_file else None),
        seed=spec.seed if spec.seed is not None else random.randrange(2**31 - 1), device=device,
        precision=precision, quantization=quantization, optimizer=optimizer, beta=beta,
    )


def torch_dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float32}[precision]


# ---------------------------------------------------------------------------------------------------
# Data


@dataclass
class PreparedData:
    train: LoadedDataset
    valid: LoadedDataset | None
    train_tokens: TokenizedData | None = None
    valid_tokens: TokenizedData | None = None


def prepare_data(spec: JobSpec, tokenizer: Any) -> PreparedData:
    """Read and validate the files for the stage, then tokenize (DPO data is tokenized by trl)."""
    train = read_dataset(spec.training_file, stage=spec.stage)
    valid = read_dataset(spec.validation_file, stage=spec.stage) if spec.validation_file else None
    prepared = PreparedData(train=train, valid=valid)
    if spec.stage == "dpo":
        return prepared
    options = {"max_seq_length": spec.training.max_seq_length, "completion_only": spec.training.completion_only_loss}
    prepared.train_tokens = tokenize_dataset(train, tokenizer, **options)
    if not prepared.train_tokens.examples:
        raise TrainingError("no training example has a trainable token left; raise training.max_seq_length")
    if valid is not None:
        prepared.valid_tokens = tokenize_dataset(valid, tokenizer, **options)
    return prepared


def _rows(tokens: TokenizedData, spec: JobSpec) -> list[dict[str, list[int]]]:
    if spec.training.packing:
        return pack_examples(tokens.examples, spec.training.max_seq_length)
    return tokens.examples


def dpo_rows(dataset: LoadedDataset) -> list[dict[str, Any]]:
    """Preference rows as conversations, so trl applies the model's chat template."""
    rows = []
    for record in dataset.records:
        prompt = record.data["prompt"]
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        rows.append({"prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
                     "chosen": [{"role": "assistant", "content": record.data["chosen"]}],
                     "rejected": [{"role": "assistant", "content": record.data["rejected"]}]})
    return rows


# ---------------------------------------------------------------------------------------------------
# The run


def run(
    spec: JobSpec, *, output_dir: str | Path, reporter: Reporter | None = None, stop: StopSignal | None = None,
    resume_from: str | Path | None = None, checkpoint_dir: str | Path | None = None,
) -> TrainResult:
    """Train `spec` and write its artifact folder to `output_dir` (unless paused or cancelled)."""
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir else output / "checkpoints"
    _trim_metrics(output / "metrics.jsonl", resume_from)
    metrics_log = JsonlReporter(metrics_path=output / "metrics.jsonl")
    try:
        return _run(spec, output, checkpoints, FanoutReporter(metrics_log, reporter), stop, resume_from)
    finally:
        metrics_log.close()


def _run(spec: JobSpec, output: Path, checkpoints: Path, reporter: Reporter, stop: StopSignal | None,
         resume_from: str | Path | None) -> TrainResult:
    from transformers import set_seed

    from .artifacts import save_artifacts

    emit = _emitter(reporter)
    started = time.time()

    resolved = resolve_model(spec.model)
    emit("message", f"Base model {resolved.name} ({resolved.source})")
    tokenizer = load_tokenizer(resolved)
    data = prepare_data(spec, tokenizer)
    emit("message", f"Training file: {data.train.num_examples} examples, format {data.train.format.value}",
         data=data.train_tokens.summary() if data.train_tokens else {"num_examples": data.train.num_examples})
    if data.train_tokens and data.train_tokens.truncated:
        emit("message", f"{data.train_tokens.truncated} examples were truncated to "
             f"{spec.training.max_seq_length} tokens ({data.train_tokens.truncated_tokens} tokens cut)", level="warn")

    device = resolve_device()
    if device == "cpu":
        keep_freed_memory()
    rows = _rows(data.train_tokens, spec) if data.train_tokens else None
    num_items = len(rows) if rows is not None else data.train.num_examples
    plan = make_plan(spec, num_batches=math.ceil(num_items / resolve_batch_size(spec)), device=device)
    set_seed(plan.seed)

    model = load_model(resolved, dtype=torch_dtype(plan.precision), quantization=plan.quantization,
                       double_quant=getattr(spec.tuning, "double_quant", True))
    model.config.use_cache = False  # packed rows stay apart only without the cache (transformers 5)
    method = methods_.get_method(spec.tuning.type)
    model = methods_.apply_method(model, spec.tuning, context=methods_.BuildContext(
        total_steps=plan.total_steps, base_model_path=resolved.path,
        gradient_checkpointing=spec.training.gradient_checkpointing))
    total_params, trainable = methods_.count_parameters(model)
    emit("message", f"Method {spec.tuning.type}: {trainable:,} trainable of {total_params:,} parameters "
         f"({100 * trainable / max(total_params, 1):.3f}%)", data={"trainable_params": trainable, "total_params": total_params})

    from .attention import segment_attention
    from .trainer import build_trainer

    trainer, state = build_trainer(spec, plan, model=model, tokenizer=tokenizer, rows=rows, data=data,
                                   dpo_rows=dpo_rows, checkpoints=checkpoints, emit=emit, stop=stop)
    # Packed rows on CPU: causal SDPA per example instead of a block-diagonal mask per row (same result).
    # Prompt methods change the sequence, so they keep the mask.
    packed_on_cpu = (rows is not None and spec.training.packing and device == "cpu"
                     and spec.tuning.type not in PROMPT_TYPES)
    with segment_attention(model, enabled=packed_on_cpu) as per_example:
        emit("message", f"Training for {plan.total_steps} steps ({plan.n_epochs} epochs, batch {plan.batch_size}, "
             f"lr {plan.learning_rate:g}, {plan.precision} on {device}"
             f"{', attention per packed example' if per_example else ''})", data={"plan": asdict(plan)})
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

    result = TrainResult(
        status=state.stopped or "succeeded", output_dir=str(output), plan=plan, total_params=total_params,
        trainable_params=trainable, trained_tokens=state.trained_tokens, global_step=trainer.state.global_step,
        metrics=state.summary(time.time() - started),
        data=data.train_tokens.summary() if data.train_tokens else {"num_examples": data.train.num_examples},
        warnings=list(state.warnings),
    )
    result.model = trainer.model  # not part of to_dict(): lets callers (tests, benchmarks) use the trained model
    if state.stopped == "pause":
        result.status = "paused"
        result.checkpoint = state.last_checkpoint
        emit("message", f"Paused at step {result.global_step}; checkpoint {state.last_checkpoint}")
        return result
    if state.stopped == "cancel":
        result.status = "cancelled"
        emit("message", f"Cancelled at step {result.global_step}")
        return result
    save_artifacts(model=trainer.model, tokenizer=tokenizer, method=method, spec=spec, resolved=resolved,
                   data=data, result=result, output_dir=output)
    emit("message", f"Saved {method.artifact} artifact to {output}", data={"output_dir": str(output)})
    return result


def _trim_metrics(path: Path, resume_from: str | Path | None) -> None:
    """A fresh run starts a fresh metrics.jsonl; a resumed one keeps the steps up to its checkpoint."""
    if not path.exists():
        return
    if resume_from is None:
        path.unlink()
        return
    step = int(Path(resume_from).name.rsplit("-", 1)[-1]) if "-" in Path(resume_from).name else None
    if step is None:
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


def _emitter(reporter: Reporter | None) -> Callable[..., None]:
    def emit(type_: str, message: str, data: dict[str, Any] | None = None, level: str = "info") -> None:
        if reporter is not None:
            if type_ == "metrics":
                message = metrics_message(data or {})
            reporter.report(make_event(type_, message, data, level))

    return emit


__all__ = ["DEFAULT_BATCH_SIZE", "Plan", "TrainResult", "TrainingError", "make_plan", "run"]

"""Wire a plan into transformers' `Trainer` (or trl's `DPOTrainer`) with the studio's callbacks.

The callbacks are the only custom part: they turn Trainer logs into metrics events, count real
(non-padding) tokens for tokens/s, poll the stop hook after every step, and drive AdaLoRA's budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from .batching import ListDataset, PaddingCollator
from .divergence import DivergenceWatch


@dataclass
class RunState:
    """What the callbacks learn during a run."""

    stopped: str | None = None  # None | "cancel" | "pause"
    trained_tokens: int = 0
    last_checkpoint: str | None = None
    last_train_loss: float | None = None
    last_valid_loss: float | None = None
    best_valid_loss: float | None = None
    first_train_loss: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    step_loss: float = 0.0  # this optimizer step's loss so far (the sum of its micro-batches', as Trainer logs it)
    divergence: DivergenceWatch = field(default_factory=DivergenceWatch)
    warnings: list[dict[str, str]] = field(default_factory=list)  # {code, message}: into studio.json

    def summary(self, runtime: float) -> dict[str, Any]:
        return {"train_loss": self.last_train_loss, "first_train_loss": self.first_train_loss,
                "valid_loss": self.last_valid_loss, "best_valid_loss": self.best_valid_loss,
                "trained_tokens": self.trained_tokens, "runtime_seconds": round(runtime, 3),
                "tokens_per_second": round(self.trained_tokens / runtime, 1) if runtime > 0 else None}


# Methods whose forward is the plain decoder + head (adapters live inside the layers). Prompt methods
# change the sequence and AdaLoRA adds its orthogonality term in PeftModel.forward, so they keep the
# default loss path.
LABEL_ONLY_TYPES = frozenset({"lora", "dora", "qlora", "ia3", "loha", "lokr", "adapter", "freeze", "full"})


def label_only_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
    """Causal-LM loss with the vocabulary projection applied only where a token is learned.

    Prompt and padding positions (label -100) never reach `lm_head` + cross-entropy: with completion-only
    labels that skips a large share of the most expensive matmul. Same loss and gradients as the model's
    own loss (tested), the family's head transform included (`head_logits`); normalised by
    `num_items_in_batch` like transformers' loss for gradient accumulation.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    causal_lm = _causal_lm(model)
    hidden = causal_lm.get_decoder()(**{k: v for k, v in inputs.items() if k != "labels"}).last_hidden_state
    targets = labels[:, 1:]
    keep = targets != -100
    logits = head_logits(causal_lm, hidden[:, :-1][keep])
    loss = F.cross_entropy(logits.float(), targets[keep], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else keep.sum().clamp(min=1)
    return loss / count


def head_logits(causal_lm: Any, hidden: Any) -> Any:
    """`lm_head` plus what the family's forward does to its output, read from the config: Cohere's
    `logit_scale` (x), Granite's `logits_scaling` (/), Gemma 2/3/4's `final_logit_softcapping` (tanh)."""
    import torch

    config = causal_lm.config
    logits = causal_lm.get_output_embeddings()(hidden)
    if getattr(config, "logit_scale", None) is not None:
        logits = logits * config.logit_scale
    if getattr(config, "logits_scaling", None) is not None:
        logits = logits / config.logits_scaling
    if getattr(config, "final_logit_softcapping", None) is not None:
        cap = config.final_logit_softcapping
        logits = torch.tanh(logits / cap) * cap
    return logits


def label_only_matches(model: Any) -> bool:
    """Whether `label_only_loss` computes this model's own loss: its logits on a probe sequence equal the
    forward's, and no auxiliary loss (an MoE router's) is added in the forward. Families with a head
    transform `head_logits` does not know (e.g. Falcon-H1's `lm_head_multiplier`) fall back to the model's
    own loss rather than train on different logits than they are evaluated and served with.

    The probe runs in training mode (dropout masks made equal by one seed for both calls) because
    bitsandbytes repacks 4-bit weights for inference when it sees an eval-mode forward on CPUs with
    avx512_bf16, and training on repacked weights drifts from what is saved."""
    import torch

    causal_lm = _causal_lm(model)
    if getattr(causal_lm.config, "output_router_logits", False):
        return False
    vocab = int(getattr(causal_lm.config.get_text_config(), "vocab_size", 0) or 2)
    ids = (torch.arange(1, 9, device=causal_lm.device) % vocab)[None]
    devices = [causal_lm.device] if causal_lm.device.type == "cuda" else []
    was_training = model.training
    model.train()  # a freshly loaded model is in eval mode
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            expected = model(input_ids=ids).logits
            torch.manual_seed(0)
            got = head_logits(causal_lm, causal_lm.get_decoder()(input_ids=ids).last_hidden_state)
    finally:
        model.train(was_training)
    tolerance = 1e-4 if expected.dtype == torch.float32 else 3e-2  # bf16/fp16 round differently per matmul shape
    expected, got = expected.float(), got.float()
    return got.shape == expected.shape and bool(
        (got - expected).abs().max() <= tolerance * max(1.0, float(expected.abs().max())))


def _causal_lm(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class WatchedLoss:
    """Trainer mixin: adds each micro-batch's loss to `run_state.step_loss` before transformers' logging
    filter can replace a NaN with an average (`DivergenceCallback` reads it after the optimizer step)."""

    run_state: RunState

    def training_step(self, *args, **kwargs):
        loss = super().training_step(*args, **kwargs)
        self.run_state.step_loss += float(loss)  # Trainer syncs on this loss every step anyway (its NaN check)
        return loss


class StudioTrainer(WatchedLoss, Trainer):
    """Trainer that counts real (non-padding) tokens for tokens/s and, where the method allows, computes
    logits only at learned positions."""

    run_state: RunState
    label_only_logits: bool = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.label_only_logits or return_outputs or "labels" not in inputs:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        return label_only_loss(model, inputs, num_items_in_batch)

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        real = inputs.pop("num_real_tokens", None)
        if real is not None and self.model.training:
            self.run_state.trained_tokens += int(real)
        return super()._prepare_inputs(inputs)


class EventsCallback(TrainerCallback):
    """Trainer logs -> metrics events; saves -> checkpoint events."""

    def __init__(self, state: RunState, emit: Callable[..., None]):
        self.state = state
        self.emit = emit
        self.last_time = time.time()
        self.last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.last_time = time.time()
        self.last_tokens = self.state.trained_tokens

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "train_runtime" in logs:
            return
        data: dict[str, Any] = {"step": state.global_step, "total_steps": state.max_steps,
                                "epoch": round(float(state.epoch or 0), 4)}
        if "loss" in logs:
            now = time.time()
            tokens = self.state.trained_tokens - self.last_tokens
            data.update(train_loss=float(logs["loss"]), learning_rate=float(logs.get("learning_rate", 0.0)),
                        grad_norm=_float(logs.get("grad_norm")),
                        tokens_per_second=round(tokens / max(now - self.last_time, 1e-9), 1))
            self.last_time, self.last_tokens = now, self.state.trained_tokens
            self.state.last_train_loss = data["train_loss"]
            if self.state.first_train_loss is None:
                self.state.first_train_loss = data["train_loss"]
        for key in ("eval_loss",):
            if key in logs:
                data["valid_loss"] = float(logs[key])
                self.state.last_valid_loss = data["valid_loss"]
                best = self.state.best_valid_loss
                self.state.best_valid_loss = data["valid_loss"] if best is None else min(best, data["valid_loss"])
        if "train_loss" not in data and "valid_loss" not in data:
            return
        gpu = _gpu_memory()
        if gpu is not None:
            data["gpu_memory_bytes"] = gpu
        self.state.history.append(data)
        self.emit("metrics", "", data=data)

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        self.state.last_checkpoint = str(path)
        metrics = {"step": state.global_step, "train_loss": self.state.last_train_loss,
                   "valid_loss": self.state.last_valid_loss}
        self.emit("checkpoint", f"Checkpoint at step {state.global_step}",
                  data={"step_number": state.global_step, "path": str(path), "metrics": metrics})


class StopCallback(TrainerCallback):
    """Polls the stop hook after every optimizer step; pause saves a checkpoint before exiting."""

    def __init__(self, state: RunState, stop: Callable[[], str | None]):
        self.state = state
        self.stop = stop

    def on_step_end(self, args, state, control, **kwargs):
        signal = self.stop()
        if signal in ("cancel", "pause"):
            self.state.stopped = signal
            control.should_training_stop = True
            if signal == "pause":
                control.should_save = True
        return control


class DivergenceCallback(TrainerCallback):
    """After each optimizer step: feed its loss to the divergence rule; the first time it trips, a warning
    event and an entry in `warnings` (docs/training-core.md, "Divergence")."""

    def __init__(self, state: RunState, emit: Callable[..., None]):
        self.state = state
        self.emit = emit

    def on_train_begin(self, args, state, control, **kwargs):
        self.state.divergence.learning_rate = args.learning_rate

    def on_step_end(self, args, state, control, **kwargs):
        loss, self.state.step_loss = self.state.step_loss, 0.0
        warning = self.state.divergence.observe(state.global_step, loss)
        if warning is not None:
            self.state.warnings.append(warning)
            self.emit("message", warning["message"], data={"code": warning["code"], "step": state.global_step},
                      level="warn")


class AdaloraCallback(TrainerCallback):
    """AdaLoRA reallocates its rank budget after every optimizer step, before gradients are zeroed."""

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        model.base_model.update_and_allocate(state.global_step)


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _gpu_memory() -> int | None:
    import torch

    return int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None


def training_arguments(spec: Any, plan: Any, checkpoints: Path, *, has_eval: bool, args_class: Any = TrainingArguments,
                       sampling: str | None = None, **extra: Any) -> Any:
    training = spec.training
    if sampling is None:
        sampling = "group_by_length" if training.group_by_length and not training.packing else "random"
    return args_class(
        output_dir=str(checkpoints), per_device_train_batch_size=plan.batch_size,
        per_device_eval_batch_size=plan.batch_size, gradient_accumulation_steps=training.gradient_accumulation_steps,
        learning_rate=plan.learning_rate, num_train_epochs=plan.n_epochs, max_steps=plan.total_steps,
        lr_scheduler_type=training.lr_scheduler, warmup_steps=training.warmup_ratio, weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm, optim=plan.optimizer,
        bf16=plan.precision == "bf16", fp16=plan.precision == "fp16",
        gradient_checkpointing=training.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if training.gradient_checkpointing else None,
        logging_strategy="steps", logging_steps=training.logging_steps, save_strategy="steps",
        save_steps=plan.save_steps, save_total_limit=3,
        eval_strategy="steps" if has_eval else "no", eval_steps=plan.eval_steps if has_eval else None,
        seed=plan.seed, data_seed=plan.seed, use_cpu=plan.device == "cpu", report_to="none", disable_tqdm=True,
        remove_unused_columns=False, dataloader_num_workers=0, use_cache=False,
        train_sampling_strategy=sampling,
        **extra,
    )


def build_trainer(spec: Any, plan: Any, *, model: Any, tokenizer: Any, rows: list | None, data: Any,
                  dpo_rows: Callable, checkpoints: Path, emit: Callable[..., None],
                  stop: Callable[[], str | None] | None) -> tuple[Trainer, RunState]:
    state = RunState()
    callbacks: list[TrainerCallback] = [EventsCallback(state, emit), DivergenceCallback(state, emit)]
    if stop is not None:
        callbacks.append(StopCallback(state, stop))
    if spec.tuning.type == "adalora":
        callbacks.append(AdaloraCallback())
    if spec.stage == "dpo":
        trainer: Trainer = _dpo_trainer(spec, plan, model, tokenizer, data, dpo_rows, checkpoints, callbacks)
    else:
        valid_rows = None
        if data.valid_tokens is not None:
            from .batching import pack_examples

            valid_rows = (pack_examples(data.valid_tokens.examples, spec.training.max_seq_length)
                          if spec.training.packing else data.valid_tokens.examples)
        args = training_arguments(spec, plan, checkpoints, has_eval=valid_rows is not None)
        trainer = StudioTrainer(
            model=model, args=args, train_dataset=ListDataset(rows),
            eval_dataset=ListDataset(valid_rows) if valid_rows else None,
            data_collator=PaddingCollator(pad_token_id=tokenizer.pad_token_id,
                                          attention_mask=spec.tuning.type not in LABEL_ONLY_TYPES),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        trainer.run_state = state
        trainer.label_only_logits = (spec.tuning.type in LABEL_ONLY_TYPES and hasattr(model, "get_output_embeddings")
                                     and label_only_matches(model))
    trainer.remove_callback(PrinterCallback)  # our reporter prints; Trainer's raw log dicts would duplicate it
    return trainer, state


def _dpo_trainer(spec, plan, model, tokenizer, data, dpo_rows, checkpoints, callbacks):
    """trl's DPOTrainer; with a peft model the frozen base (adapter disabled) is the reference."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    class CountingDPOTrainer(WatchedLoss, DPOTrainer):
        def _prepare_inputs(self, inputs):
            if self.model.training and "attention_mask" in inputs:
                counting.trained_tokens += int(inputs["attention_mask"].sum())
            return super()._prepare_inputs(inputs)

    counting = callbacks[0].state
    args = training_arguments(
        spec, plan, checkpoints, has_eval=data.valid is not None, args_class=DPOConfig, sampling="random",
        beta=plan.beta, max_length=spec.training.max_seq_length, disable_dropout=True,
    )
    trainer = CountingDPOTrainer(
        model=model, ref_model=None, args=args, train_dataset=Dataset.from_list(dpo_rows(data.train)),
        eval_dataset=Dataset.from_list(dpo_rows(data.valid)) if data.valid else None,
        processing_class=tokenizer, callbacks=callbacks,
    )
    trainer.run_state = counting
    return trainer

"""Training throughput: a bare transformers Trainer + peft script vs the studio core, same workload.

    .venv/bin/python bench/train_throughput.py [--steps 60] [--quick] [--variants a,b,c,d] [--json FILE]

One run measures one variable-length SFT workload four ways, each in its own subprocess (so that the peak
RSS is per variant) and prints one table plus the ratios to (a):

  (a) bare    a plain transformers `Trainer` + peft LoRA script (`bare_trainer` below, ~40 lines):
              chat template, the same completion-only labels, per-batch padding, RandomSampler;
  (b) padded  studio `run()` with `packing: false, group_by_length: false` (per-batch padding, like (a));
  (c) packed  studio `run()` with `packing: true` (best-fit-decreasing rows of <= max_seq_length tokens,
              per-example position_ids, so examples never attend to each other);
  (d) grouped studio `run()` with `group_by_length: true` and no packing (information only).

Workload: 2000 alpaca rows built deterministically from the bundled tokenizer corpus, tokenized lengths
spread uniformly over ~20-400 tokens (chat template included); base `studio-tiny-llama`; LoRA r=8,
alpha=16, dropout 0.05 on q/k/v/o_proj; batch 8; max_seq_length 512; fp32; lr 2e-4 cosine, warmup 3%;
seed 42; `torch.set_num_threads(2)`.

Timing is the training loop only: the wall time of `Trainer.train()` (the same call for every variant;
model build/load, tokenisation and artifact saving are outside it). Tokens are counted from the batches
that `Trainer.training_step` actually receives: "real" = non-padding tokens (prompt + completion, what
`TrainResult.trained_tokens` counts), "padded" = every position the model computes (input_ids.numel()).
The fair comparison is real tokens per second: 60 packed steps hold far more real tokens than 60 padded
steps.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 42
NUM_EXAMPLES = 2000
MIN_LEN, MAX_LEN = 20, 400
MAX_SEQ_LENGTH = 512
BATCH_SIZE = 8
LEARNING_RATE = 2e-4
LORA = dict(r=8, alpha=16, dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
THREADS = 2
VARIANTS = {
    "a": "bare Trainer+peft, padded",
    "b": "studio, padded",
    "c": "studio, packed 8x512",
    "d": "studio, group_by_length",
}
TARGETS = {"b": 1.0, "c": 2.2}


# ---------------------------------------------------------------------------------------------------
# Workload


def make_workload(path: Path, *, n: int = NUM_EXAMPLES, seed: int = 1234) -> dict:
    """Write `n` alpaca rows whose chat-templated lengths spread uniformly over MIN_LEN..MAX_LEN tokens.

    Text is cut from the bundled corpus by token slices of the demo tokenizer, so the lengths are hit
    closely; the same seed gives the same file byte for byte.
    """
    from worker.finetune.models import ASSETS, load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model("studio-tiny-llama"))
    lines = [line.strip() for line in (ASSETS / "tokenizer_corpus.txt").read_text(encoding="utf-8").splitlines()]
    text = " ".join(line for line in lines if line and "<|" not in line and "|>" not in line)
    stream = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    rng = random.Random(seed)

    def piece(size: int) -> str:
        if size <= 0:
            return ""
        start = rng.randrange(0, len(stream) - size)
        return tokenizer.decode(stream[start:start + size]).strip()

    overhead = 10  # <|im_start|>user\n ... <|im_end|>\n<|im_start|>assistant\n ... <|im_end|>\n
    rows = []
    for _ in range(n):
        budget = rng.randint(MIN_LEN, MAX_LEN) - overhead
        completion = max(1, round(budget * rng.uniform(0.3, 0.7)))
        prompt = budget - completion
        instruction = max(1, min(prompt, rng.randint(4, 24)))
        rows.append({"instruction": piece(instruction), "input": piece(prompt - instruction),
                     "output": piece(completion)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return {"rows": n, "path": str(path)}


# ---------------------------------------------------------------------------------------------------
# (a): the script a practitioner would write with transformers + peft alone


def bare_trainer(data_path: str, model_path: str, *, steps: int, output_dir: str):
    """A plain Trainer + peft LoRA run over the same rows, template, labels and hyperparameters."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainingArguments, set_seed)

    set_seed(SEED)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    examples = []
    for line in open(data_path, encoding="utf-8"):
        row = json.loads(line)
        prompt = row["instruction"] + ("\n\n" + row["input"] if row["input"].strip() else "")
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
        enc = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        ids = list(enc["input_ids"])[:MAX_SEQ_LENGTH]
        labels = [t if m else -100 for t, m in zip(ids, enc["assistant_masks"])]  # completion only
        if any(t != -100 for t in labels[1:]):
            examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=LORA["r"], lora_alpha=LORA["alpha"],
                                             lora_dropout=LORA["dropout"], target_modules=LORA["target_modules"]))
    args = TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=BATCH_SIZE, max_steps=steps,
        learning_rate=LEARNING_RATE, lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0,
        max_grad_norm=1.0, optim="adamw_torch", logging_steps=10, save_strategy="no", report_to="none",
        seed=SEED, data_seed=SEED, use_cpu=True, disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=0,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)  # pads per batch
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collator)
    trainer.train()  # RandomSampler (the default sampling strategy)
    return trainer


# ---------------------------------------------------------------------------------------------------
# (b), (c), (d): the studio core


def studio_spec(data_path: str, *, steps: int, packing: bool, group_by_length: bool) -> dict:
    return {
        "model": "studio-tiny-llama", "training_file": data_path, "seed": SEED,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": BATCH_SIZE}}},
        "tuning": {"type": "lora", **LORA},
        "training": {"max_steps": steps, "max_seq_length": MAX_SEQ_LENGTH, "packing": packing,
                     "group_by_length": group_by_length, "precision": "fp32", "learning_rate": LEARNING_RATE},
    }


def studio_run(data_path: str, *, steps: int, packing: bool, group_by_length: bool, output_dir: str):
    from worker.finetune.spec import parse_spec
    from worker.finetune.train import run

    spec = parse_spec(studio_spec(data_path, steps=steps, packing=packing, group_by_length=group_by_length))
    return run(spec, output_dir=output_dir)


# ---------------------------------------------------------------------------------------------------
# One variant, in its own process


def install_meters(stats: dict) -> None:
    """Count the tokens of every batch `Trainer.training_step` receives and time `Trainer.train()`.

    Patched on transformers' base `Trainer`, so (a) and the studio's `StudioTrainer` are measured by the
    same code at the same points."""
    import transformers

    step, train = transformers.Trainer.training_step, transformers.Trainer.train

    def training_step(self, model, inputs, *args, **kwargs):
        ids = inputs["input_ids"]
        stats["steps"] += 1
        stats["padded_tokens"] += int(ids.numel())
        if "attention_mask" in inputs:
            stats["real_tokens"] += int(inputs["attention_mask"].sum())
        elif "num_real_tokens" in inputs:
            stats["real_tokens"] += int(inputs["num_real_tokens"])
        else:
            stats["real_tokens"] += int(ids.numel())
        stats["loss_tokens"] += int((inputs["labels"] != -100).sum())
        stats["max_row"] = max(stats["max_row"], int(ids.shape[1]))
        return step(self, model, inputs, *args, **kwargs)

    def timed_train(self, *args, **kwargs):
        start = time.perf_counter()
        out = train(self, *args, **kwargs)
        stats["train_seconds"] = time.perf_counter() - start
        stats["train_loss"] = float(out.training_loss)
        return out

    transformers.Trainer.training_step = training_step
    transformers.Trainer.train = timed_train


def child(variant: str, data_path: str, steps: int, out_path: str, workdir: str) -> None:
    import torch

    torch.set_num_threads(THREADS)
    stats = {"variant": variant, "steps": 0, "padded_tokens": 0, "real_tokens": 0, "loss_tokens": 0, "max_row": 0}
    install_meters(stats)
    wall = time.perf_counter()
    output = os.path.join(workdir, f"run-{variant}")
    if variant == "a":
        from worker.finetune.models import resolve_model

        bare_trainer(data_path, resolve_model("studio-tiny-llama").path, steps=steps, output_dir=output)
    else:
        result = studio_run(data_path, steps=steps, packing=variant == "c", group_by_length=variant == "d",
                            output_dir=output)
        stats["studio_trained_tokens"] = result.trained_tokens
        stats["studio_runtime_seconds"] = result.metrics.get("runtime_seconds")
    stats["process_seconds"] = time.perf_counter() - wall
    stats["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    stats["threads"] = torch.get_num_threads()
    Path(out_path).write_text(json.dumps(stats))


# ---------------------------------------------------------------------------------------------------
# The table


def derive(stats: dict) -> dict:
    s = dict(stats)
    t = s["train_seconds"]
    s["real_tps"] = s["real_tokens"] / t
    s["padded_tps"] = s["padded_tokens"] / t
    s["padding_pct"] = 100.0 * (1 - s["real_tokens"] / s["padded_tokens"])
    s["step_seconds"] = t / max(s["steps"], 1)
    return s


def render(results: dict[str, dict]) -> str:
    base = results.get("a")
    head = (f"{'variant':<32} {'steps':>5} {'loop s':>7} {'s/step':>6} {'real tok':>9} {'padded tok':>10} "
            f"{'pad %':>6} {'real tok/s':>10} {'padded tok/s':>12} {'loss tok':>9} {'peak RSS MB':>11} {'vs (a)':>7}")
    lines = [head, "-" * len(head)]
    for key, s in results.items():
        ratio = f"{s['real_tps'] / base['real_tps']:.2f}x" if base else "-"
        lines.append(
            f"({key}) {VARIANTS[key]:<28} {s['steps']:>5} {s['train_seconds']:>7.1f} {s['step_seconds']:>6.2f} "
            f"{s['real_tokens']:>9,} {s['padded_tokens']:>10,} {s['padding_pct']:>6.1f} {s['real_tps']:>10,.0f} "
            f"{s['padded_tps']:>12,.0f} {s['loss_tokens']:>9,} {s['peak_rss_mb']:>11,.0f} {ratio:>7}")
    if base:
        lines.append("")
        for key, target in TARGETS.items():
            if key in results:
                ratio = results[key]["real_tps"] / base["real_tps"]
                verdict = "ok" if ratio >= target else "BELOW TARGET"
                lines.append(f"({key})/(a) = {ratio:.2f} (target >= {target}) {verdict}")
        if "d" in results:
            lines.append(f"(d)/(a) = {results['d']['real_tps'] / base['real_tps']:.2f} (information)")
    return "\n".join(lines)


def versions() -> str:
    import peft
    import torch
    import transformers
    import trl

    return (f"python {sys.version.split()[0]}, torch {torch.__version__}, transformers {transformers.__version__}, "
            f"peft {peft.__version__}, trl {trl.__version__}; {os.cpu_count()} CPUs, {THREADS} threads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="optimizer steps per variant (default 60)")
    parser.add_argument("--quick", action="store_true", help="12 steps, variants a,b,c only (a smoke run)")
    parser.add_argument("--variants", default=None, help="comma-separated subset of a,b,c,d (default all)")
    parser.add_argument("--json", default=None, help="also write the per-variant numbers to this file")
    parser.add_argument("--workdir", default=None, help="keep data and run folders here (default: a temp dir)")
    parser.add_argument("--child", nargs=4, metavar=("VARIANT", "DATA", "STEPS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("STUDIO_DATA_DIR", str(Path(tempfile.gettempdir()) / "studio-bench-data"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.child:
        variant, data, steps, out = args.child
        child(variant, data, int(steps), out, str(Path(out).parent))
        return 0

    steps = 12 if args.quick and args.steps == 60 else args.steps
    variants = (args.variants or ("a,b,c" if args.quick else "a,b,c,d")).split(",")
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="studio-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from worker.finetune.models import ensure_demo_model

    ensure_demo_model()  # built once, outside every timed region
    data = workdir / "alpaca_20_400.jsonl"
    make_workload(data)
    print(f"workload: {NUM_EXAMPLES} alpaca rows, {MIN_LEN}-{MAX_LEN} tokens ({data}); {steps} steps, "
          f"batch {BATCH_SIZE}, max_seq_length {MAX_SEQ_LENGTH}, LoRA r={LORA['r']} on q/k/v/o, fp32", flush=True)
    print(versions(), flush=True)
    results: dict[str, dict] = {}
    for key in variants:
        out = workdir / f"stats-{key}.json"
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", key, str(data), str(steps), str(out)],
                              env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-4000:], file=sys.stderr)
            raise SystemExit(f"variant ({key}) failed with exit code {proc.returncode}")
        results[key] = derive(json.loads(out.read_text()))
        s = results[key]
        print(f"  ({key}) {VARIANTS[key]}: {s['real_tps']:,.0f} real tok/s, {s['train_seconds']:.1f}s loop, "
              f"{time.perf_counter() - started:.0f}s process", flush=True)
    print()
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"versions": versions(), "steps": steps, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

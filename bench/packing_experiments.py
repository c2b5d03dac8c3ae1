"""Experimental: where a packed training step spends its time, and prototypes that make it cheaper.

    .venv/bin/python bench/packing_experiments.py check     # the prototypes compute the default loss/gradients
    .venv/bin/python bench/packing_experiments.py micro     [--batches 6] [--rounds 3] [--only SUBSTR,...]
    .venv/bin/python bench/packing_experiments.py profile   [--kind packed|padded] [--loss-proto]
                                                            [--attn sdpa|segments] [--dropout off|peft|fast]
    .venv/bin/python bench/packing_experiments.py e2e       [--baseline] [--steps 60] [--sets "alloc,attn;..."]

Not part of the product: the prototypes are monkeypatched in to measure what a core change would gain
before anyone makes it. Same workload, model, LoRA and threads as `train_throughput.py`; `e2e` runs the
studio's `run()` end to end with the same meters (and, with `--baseline`, (a) first in the same session).

Prototypes (names as in `e2e --sets`)
  attn       "segment attention": an attention function that reads the per-example `position_ids` of a
             packed row and runs causal SDPA on each example separately (`is_causal=True`, the CPU flash
             kernel, no mask tensor) instead of one 512x512 block-diagonal mask per row, and skips building
             that mask. Right-padded (unpacked) batches get one `is_causal` call: correct without the
             padding mask, because real tokens never look right and padding has label -100.
  alloc      glibc `mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=2 GiB)`: freed memory stays in the process
             instead of being re-mmapped (and page-faulted, and zeroed by the kernel) every step.
  micro2     the 8 rows of a step as 2 micro-batches of 4 (gradient accumulation, same normalisation).
  loss       label-only logits (in the core since commit affb2a8; a no-op there) / `fulllogits`: the core
             with it switched off (the logits of every position, as before).
  drop05     LoRA dropout 0.05 (peft's `nn.Dropout`); `fastdrop`: 0.05 with `FastDropout` below.
  group / nopack   group_by_length / plain padded batches instead of packing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
import train_throughput as tt  # noqa: E402
from torch import nn  # noqa: E402

IGNORE = -100
SEGMENT_ATTN = "proto_segments"  # not the core's name (worker/finetune/attention.py), so the two never clobber
LEAKY_ATTN = "leaky_causal"


# ---------------------------------------------------------------------------------------------------
# Prototype "loss": logits only where a label is learned


def label_only_loss(model, inputs: dict, num_items_in_batch=None):
    """Causal-LM loss with lm_head applied only to positions whose next-token label is not -100."""
    import torch.nn.functional as F

    labels = inputs["labels"]
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal_lm.get_decoder()
    hidden = decoder(**{k: v for k, v in inputs.items() if k != "labels"}).last_hidden_state
    shift = labels[:, 1:]
    keep = shift != IGNORE
    logits = causal_lm.get_output_embeddings()(hidden[:, :-1][keep])
    loss = F.cross_entropy(logits.float(), shift[keep], reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return loss / count


def install_label_only_loss() -> None:
    from worker.finetune.trainer import StudioTrainer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = label_only_loss(model, inputs, num_items_in_batch)
        return (loss, None) if return_outputs else loss

    StudioTrainer.compute_loss = compute_loss


# ---------------------------------------------------------------------------------------------------
# Prototype "attn": causal SDPA per packed example


def segment_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None,
                 position_ids=None, **kwargs):
    """query/key/value (B, H, S, D) -> (B, S, H, D); examples split where position_ids restart at 0.

    The batch is viewed as one (H, B*S, D) stream (a view: q/k/v are (B, S, H, D) in memory) and cut with
    `torch.split` at every position 0, so the backward is one `cat`, not a zero-filled tensor per slice."""
    import torch
    import torch.nn.functional as F

    batch, heads, length, dim = query.shape
    if position_ids is None:
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling)
        return out.transpose(1, 2), None
    starts = (position_ids.expand(batch, -1).reshape(-1) == 0).nonzero().flatten()
    if starts.numel() == batch:  # one example per row (unpacked, right-padded): a single causal call
        out = F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling)
        return out.transpose(1, 2), None
    sizes = torch.diff(starts, append=starts.new_tensor([batch * length])).tolist()
    flat = [t.transpose(0, 1).reshape(heads, batch * length, dim) for t in (query, key, value)]
    parts = [F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, scale=scaling)[0]
             for q, k, v in zip(*(t.split(sizes, dim=1) for t in flat), strict=True)]  # 4-D: the CPU flash kernel
    out = torch.cat(parts, dim=1).view(heads, batch, length, dim).permute(1, 2, 0, 3)
    return out, None


def leaky_causal_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Reference only: one causal call per row, so packed examples DO attend to each other (trl "wrapped")."""
    import torch.nn.functional as F

    return F.scaled_dot_product_attention(query, key, value, is_causal=True, scale=scaling).transpose(1, 2), None


def register_segment_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(SEGMENT_ATTN, segment_sdpa)
    AttentionMaskInterface.register(SEGMENT_ATTN, lambda *args, **kwargs: None)  # no mask tensor at all
    AttentionInterface.register(LEAKY_ATTN, leaky_causal_sdpa)
    AttentionMaskInterface.register(LEAKY_ATTN, lambda *args, **kwargs: None)


def use_segment_attention(model) -> None:
    register_segment_attention()
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(SEGMENT_ATTN)


class FastDropout(nn.Module):
    """Inverted dropout whose keep-mask comes from 15 random bits per element, four elements per 64-bit
    draw (torch's CPU `bernoulli_` costs ~2.5x more). Drop probability is round(p*32768)/32768 (0.049988
    for 0.05); forward and backward are one multiply by the saved mask."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(p * 32768)
        self.scale = 1.0 / (1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_()
        keep = (bits.view(torch.int16)[:n].view(x.shape) & 0x7FFF) >= self.threshold
        return x * (keep.to(x.dtype) * self.scale)


def set_lora_dropout(model, enabled: bool | str) -> None:
    """LoRA dropout: True = peft's nn.Dropout, False = Identity (what lora_dropout=0 builds), "fast" =
    `FastDropout` with the same p."""
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        saved = module.__dict__.setdefault("_bench_dropout", dict(drops.items()))
        for name in list(drops.keys()):
            original = saved[name]
            if enabled == "fast" and isinstance(original, nn.Dropout):
                drops[name] = FastDropout(original.p)
            else:
                drops[name] = original if enabled else nn.Identity()


def keep_freed_memory() -> bool:
    """Prototype "alloc": stop glibc from returning big freed blocks to the kernel.

    Every step allocates and frees tensors of 4-130 MB (activations, logits); glibc serves blocks above its
    mmap threshold (max 32 MB) with fresh mmaps and trims the heap on free, so each step page-faults and
    the kernel zeroes ~100k pages (~13% of a padded step is `sys` time). With mmap off and trimming
    disabled, freed memory is reused. Runtime `mallopt`, so it works inside an already running process."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


# ---------------------------------------------------------------------------------------------------
# Shared setup: studio tokenisation, packing, collator and LoRA model


def setup(workdir: Path):
    import torch

    torch.set_num_threads(tt.THREADS)
    from worker.finetune.batching import PaddingCollator, pack_examples, tokenize_dataset
    from worker.finetune.data import read_dataset
    from worker.finetune.methods import apply_method
    from worker.finetune.models import ensure_demo_model, load_model, load_tokenizer, resolve_model
    from worker.finetune.spec import parse_spec

    ensure_demo_model()
    data = workdir / "alpaca_20_400.jsonl"
    if not data.exists():
        tt.make_workload(data)
    # Built with LoRA dropout 0.05 so that the dropout modules exist; `set_lora_dropout(model, False)` (the
    # default below) turns them into Identity, which is what today's default (dropout 0) builds.
    spec = parse_spec(tt.studio_spec(str(data), steps=60, packing=True, group_by_length=False, dropout=0.05))
    resolved = resolve_model(spec.model)
    tokenizer = load_tokenizer(resolved)
    examples = tokenize_dataset(read_dataset(str(data), stage="supervised"), tokenizer,
                                max_seq_length=tt.MAX_SEQ_LENGTH).examples
    torch.manual_seed(tt.SEED)
    model = load_model(resolved, dtype=torch.float32)
    model.config.use_cache = False
    model = apply_method(model, spec.tuning, total_steps=60)
    set_lora_dropout(model, False)
    model.train()
    return model, tokenizer, examples, PaddingCollator(pad_token_id=tokenizer.pad_token_id), pack_examples


def make_batches(examples, collator, pack, *, kind: str, n: int, row: int = tt.MAX_SEQ_LENGTH,
                 batch: int = tt.BATCH_SIZE, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    items = pack(examples, row) if kind == "packed" else examples
    return [collator(rng.sample(items, batch)) for _ in range(n)]


def step_fn(model, optimizer, *, loss_proto: bool):
    def step(batch: dict) -> float:
        inputs = {k: v for k, v in batch.items() if k != "num_real_tokens"}
        n = int((inputs["labels"][:, 1:] != IGNORE).sum())
        loss = label_only_loss(model, inputs, n) if loss_proto else model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def cpu_pressure() -> float:
    """Seconds some runnable task waited for a CPU (Linux PSI); other people's work shows up here."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return int(line.split("total=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return float("nan")


# ---------------------------------------------------------------------------------------------------
# micro: fwd + bwd + AdamW on fixed batches, per configuration


def micro(args) -> dict:
    import torch

    workdir = Path(args.workdir)
    model, tokenizer, examples, collator, pack = setup(workdir)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    base = model.get_base_model()
    register_segment_attention()
    sets = {
        "padded 8xlongest": make_batches(examples, collator, pack, kind="padded", n=args.batches),
        "packed 8x512": make_batches(examples, collator, pack, kind="packed", n=args.batches),
        "packed 4x1024": make_batches(examples, collator, pack, kind="packed", n=args.batches, row=1024, batch=4),
        "packed 4x512": make_batches(examples, collator, pack, kind="packed", n=2 * args.batches, batch=4),
    }
    # (name, batches, attention, label-only logits, LoRA dropout: False = off (default) | True = peft 0.05 | "fast")
    configs = [
        ("(a) padded, full logits", "padded 8xlongest", "sdpa", False, False),
        ("(b) padded, label-only logits", "padded 8xlongest", "sdpa", True, False),
        ("(b) + causal w/o padding mask", "padded 8xlongest", SEGMENT_ATTN, True, False),
        ("packed 8x512, full logits (old core)", "packed 8x512", "sdpa", False, False),
        ("(c) packed 8x512, label-only logits", "packed 8x512", "sdpa", True, False),
        ("(c) + segment attention", "packed 8x512", SEGMENT_ATTN, True, False),
        ("(c) + segments, as 2 x 4 rows", "packed 4x512", SEGMENT_ATTN, True, False),
        ("(c) + leaky causal (ref., leaks)", "packed 8x512", LEAKY_ATTN, True, False),
        ("(c) 4x1024 rows, block mask", "packed 4x1024", "sdpa", True, False),
        ("(c) 4x1024 rows + segments", "packed 4x1024", SEGMENT_ATTN, True, False),
        ("(a) with LoRA dropout 0.05", "padded 8xlongest", "sdpa", False, True),
        ("(c) with LoRA dropout 0.05", "packed 8x512", "sdpa", True, True),
        ("(c) with fast dropout 0.05", "packed 8x512", "sdpa", True, "fast"),
    ]
    if args.only:
        configs = [c for c in configs if any(o in c[0] for o in args.only.split(","))]
    times: dict[str, list[float]] = {c[0]: [] for c in configs}
    pressure: dict[str, float] = {c[0]: 0.0 for c in configs}
    for round_ in range(args.rounds):
        for name, key, attn, proto, drop in configs:
            base.set_attn_implementation(attn)
            set_lora_dropout(model, drop)
            step = step_fn(model, optimizer, loss_proto=proto)
            step(sets[key][0])  # warm-up: allocator, oneDNN primitives for these shapes
            p0, t0 = cpu_pressure(), time.perf_counter()
            for b in sets[key]:
                step(b)
            times[name].append(time.perf_counter() - t0)
            pressure[name] += cpu_pressure() - p0
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    set_lora_dropout(model, False)
    base.set_attn_implementation("sdpa")
    rows = {}
    for name, key, *_ in configs:
        batches = sets[key]
        real = sum(int(b["num_real_tokens"]) for b in batches)
        padded = sum(b["input_ids"].numel() for b in batches)
        best = min(times[name])
        rows[name] = {"batches": key, "real_tokens": real, "padded_tokens": padded, "best_s": best,
                      "median_s": statistics.median(times[name]), "step_s": best / len(batches),
                      "real_tps": real / best, "padded_tps": padded / best, "cpu_wait_s": pressure[name]}
    ref = rows[configs[0][0]]["real_tps"]
    head = f"{'configuration':<44} {'s/step':>7} {'real tok/s':>10} {'padded tok/s':>12} {'vs (a/b)':>8} {'cpu wait s':>10}"
    print(head + "\n" + "-" * len(head))
    for name, r in rows.items():
        print(f"{name:<44} {r['step_s']:>7.3f} {r['real_tps']:>10,.0f} {r['padded_tps']:>12,.0f} "
              f"{r['real_tps'] / ref:>7.2f}x {r['cpu_wait_s']:>10.1f}")
    print(f"(best of {args.rounds} rounds of {args.batches} steps each; fwd+bwd+AdamW; studio tokenisation/packing/collator)")
    return rows


# ---------------------------------------------------------------------------------------------------
# profile: torch.profiler over a few steps of one kind of batch


def profile(args) -> None:
    import torch
    from torch.profiler import ProfilerActivity, record_function
    from torch.profiler import profile as torch_profile

    model, tokenizer, examples, collator, pack = setup(Path(args.workdir))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    batches = make_batches(examples, collator, pack, kind=args.kind, n=4)
    if args.attn == "segments":
        use_segment_attention(model)
    set_lora_dropout(model, {"peft": True, "off": False, "fast": "fast"}[args.dropout])
    step = step_fn(model, optimizer, loss_proto=args.loss_proto)
    step(batches[0])
    causal_lm = model.get_base_model()
    head = causal_lm.get_output_embeddings()
    decoder = causal_lm.get_decoder()
    # Coarse split by module: lm_head forward, loss, decoder
    marks = {}

    def pre(name):
        return lambda *a, **k: marks.__setitem__(name, record_function(name).__enter__())

    def post(name):
        return lambda *a, **k: marks.pop(name).__exit__(None, None, None)

    hooks = [head.register_forward_pre_hook(pre("lm_head.forward")), head.register_forward_hook(post("lm_head.forward")),
             decoder.register_forward_pre_hook(pre("decoder.forward")),
             decoder.register_forward_hook(post("decoder.forward"))]
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in batches:
            step(b)
    for h in hooks:
        h.remove()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))
    wall = sum(e.self_cpu_time_total for e in prof.key_averages())
    print(f"total self CPU time {wall / 1e6:.2f}s over {len(batches)} steps")


# ---------------------------------------------------------------------------------------------------
# e2e: the studio run() end to end (same meters as train_throughput.py) with prototypes patched in


def e2e_child(protos: list[str], data: str, steps: int, out: str) -> None:
    import torch
    import transformers

    torch.set_num_threads(tt.THREADS)
    stats = {"variant": "c+" + "+".join(protos), "steps": 0, "padded_tokens": 0, "real_tokens": 0, "loss_tokens": 0,
             "max_row": 0}
    tt.install_meters(stats)
    if "alloc" in protos:
        keep_freed_memory()
    from worker.finetune.trainer import StudioTrainer

    core_has_label_only = hasattr(StudioTrainer, "label_only_logits")  # in the core since affb2a8
    if "loss" in protos and not core_has_label_only:
        install_label_only_loss()
    timed_train = transformers.Trainer.train

    def train(self, *a, **k):  # applied to the built model, just before the (timed) loop
        if "fulllogits" in protos:
            self.label_only_logits = False  # the core before affb2a8
        if "attn" in protos:
            use_segment_attention(self.model)
        if "fastdrop" in protos:
            set_lora_dropout(self.model, "fast")
        return timed_train(self, *a, **k)

    transformers.Trainer.train = train
    grouped = "group" in protos  # (d)-style batches instead of packing
    packing = "nopack" not in protos and not grouped
    accumulation = 2 if "micro2" in protos else 1  # 8 rows per optimizer step as 2 micro-batches of 4
    dropout = 0.05 if {"drop05", "fastdrop"} & set(protos) else None  # None: the benchmark's (0)
    result = tt.studio_run(data, steps=steps, packing=packing, group_by_length=grouped, accumulation=accumulation,
                           dropout=dropout,
                           output_dir=str(Path(out).parent / f"run-{'-'.join(protos) or 'none'}"))
    stats["studio_trained_tokens"] = result.trained_tokens
    stats["peak_rss_mb"] = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(stats))


def e2e(args) -> None:
    import subprocess

    workdir = Path(args.workdir)
    from worker.finetune.models import ensure_demo_model

    ensure_demo_model()
    data = workdir / "alpaca_20_400.jsonl"
    if not data.exists():
        tt.make_workload(data)
    results = {}
    runs = [("(a) bare Trainer+peft", [str(HERE / "train_throughput.py"), "--child", "a"], "a")] if args.baseline else []
    runs += [(f"{'(d)' if 'group' in protos else '(b)' if 'nopack' in protos else '(c)'} + {protos or 'nothing'}", [__file__, "e2e-child", protos], protos or "none")
             for protos in args.sets.split(";")]
    for label, cmd, key in runs:
        out = workdir / f"e2e-{key.replace(',', '-')}.json"
        for attempt in range(args.retries + 1):
            tt.wait_for_quiet()
            proc = subprocess.run([sys.executable, *cmd, str(data), str(args.steps), str(out)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode:
                print(proc.stdout[-4000:], file=sys.stderr)
                raise SystemExit(f"e2e {label} failed")
            s = tt.derive(json.loads(out.read_text()))
            contended = (s["contention_pct"] or 0) > 5.0
            if key not in results or s["real_tps"] > results[key]["real_tps"]:
                results[key] = s
            ratio = f" = {s['real_tps'] / results['a']['real_tps']:.2f}x (a)" if "a" in results and key != "a" else ""
            print(f"{label:<42} {s.get('optimizer_steps', s['steps']):>4} steps {s['train_seconds']:>7.1f}s {s['real_tps']:>8,.0f} real tok/s "
                  f"{s['padded_tps']:>8,.0f} padded tok/s loss {s['train_loss']:.4f} cpu wait "
                  f"{tt._pct(s['contention_pct'])}{ratio}" + ((" (contended, retrying)" if attempt < args.retries else " (contended)") if contended else ""),
                  flush=True)
            if not contended:
                break
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


# ---------------------------------------------------------------------------------------------------
# check: the prototypes compute the same loss and gradients as the default path


def check(args) -> None:
    import torch

    model, tokenizer, examples, collator, pack = setup(Path(args.workdir))
    model.eval()  # no dropout, so the paths are comparable
    base = model.get_base_model()
    register_segment_attention()
    trainable = [p for p in model.parameters() if p.requires_grad]
    for kind in ("padded", "packed"):
        batch = make_batches(examples, collator, pack, kind=kind, n=1)[0]
        inputs = {k: v for k, v in batch.items() if k != "num_real_tokens"}
        n = int((inputs["labels"][:, 1:] != IGNORE).sum())
        results = {}
        for attn, proto in (("sdpa", False), ("sdpa", True), (SEGMENT_ATTN, False), (SEGMENT_ATTN, True),
                            (LEAKY_ATTN, False)):  # the last one leaks: shows the check can tell
            base.set_attn_implementation(attn)
            model.zero_grad(set_to_none=True)
            loss = label_only_loss(model, inputs, n) if proto else model(**inputs).loss
            loss.backward()
            results[(attn, proto)] = (float(loss.detach()), torch.cat([p.grad.flatten() for p in trainable]))
        ref_loss, ref_grad = results[("sdpa", False)]
        for key, (loss, grad) in results.items():
            rel = float((grad - ref_grad).norm() / ref_grad.norm())
            print(f"{kind:<7} attn={key[0]:<16} label-only={key[1]!s:<5} loss {loss:.6f} (ref {ref_loss:.6f}) "
                  f"grad rel. diff {rel:.2e}")
    base.set_attn_implementation("sdpa")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("micro")
    m.add_argument("--batches", type=int, default=6)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--only", default=None, help="comma-separated substrings of configuration names")
    m.add_argument("--json", default=None)
    p = sub.add_parser("profile")
    p.add_argument("--kind", choices=["packed", "padded"], default="packed")
    p.add_argument("--attn", choices=["sdpa", "segments"], default="sdpa")
    p.add_argument("--loss-proto", action="store_true", help="label-only logits")
    p.add_argument("--dropout", choices=["off", "peft", "fast"], default="off", help="LoRA dropout (0.05 unless off)")
    p.add_argument("--rows", type=int, default=25)
    e = sub.add_parser("e2e")
    e.add_argument("--steps", type=int, default=60)
    e.add_argument("--baseline", action="store_true", help="also run (a) first, for ratios")
    e.add_argument("--retries", type=int, default=2, help="reruns of a run that other processes slowed down")
    e.add_argument("--sets", default="fulllogits;;attn;alloc;alloc,attn",
                   help="';'-separated prototype sets (attn, alloc, micro2, fulllogits, loss, drop05, fastdrop) run "
                        "through studio run() with packing; add 'group' for group_by_length instead, 'nopack' "
                        "for plain padding; '' = the core as it is")
    e.add_argument("--json", default=None)
    c = sub.add_parser("e2e-child")
    c.add_argument("protos")
    c.add_argument("data")
    c.add_argument("steps", type=int)
    c.add_argument("out")
    sub.add_parser("check")
    for s in (m, p, e, sub.choices["check"]):
        s.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "studio-bench-experiments"))
    args = parser.parse_args()
    os.environ.setdefault("STUDIO_DATA_DIR", str(Path(tempfile.gettempdir()) / "studio-bench-data"))
    if getattr(args, "workdir", None):
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    if args.cmd == "micro":
        rows = micro(args)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
    elif args.cmd == "profile":
        profile(args)
    elif args.cmd == "e2e":
        e2e(args)
    elif args.cmd == "e2e-child":
        e2e_child([p for p in args.protos.split(",") if p], args.data, args.steps, args.out)
    else:
        check(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

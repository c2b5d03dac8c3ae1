"""The GPU path, measured: tokens/s and peak GPU memory per tuning method, and generation that honours them.

    python bench/gpu_path.py [--steps 30] [--json FILE]        # needs CUDA; exits 2 without it

No line of the studio had run on a GPU before this script. It builds a ~1.1B Llama (TinyLlama's shape:
hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632; the demo tokenizer, random weights, so
nothing comes from the hub) into `STUDIO_DATA_DIR/models/`, writes bench/train_throughput.py's
variable-length alpaca workload, then runs the studio core (`worker.finetune.train.run`, the same call a
worker makes) once per method, each in its own process so that peak GPU memory is per method:

  lora (bf16, r=16, all-linear), qlora (4-bit NF4 + double quant, paged AdamW, r=16), dora, prefix_tuning,
  full (bf16). Packed rows of <= 1024 tokens, batch 8, gradient checkpointing off.

For each it prints real tokens/s (non-padding tokens over the wall time of the training loop, the core's
own `tokens_per_second`), peak `torch.cuda.max_memory_allocated`, first and last train loss, and whether a
greedy generation from the trained artifact, served as chat serves it, differs from the base's (prefix tuning included — the defect
of issue 9 was that generate() ignored a prefix). Ratios to LoRA are printed beside the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL_NAME = "bench-llama-1b"
SHAPE = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4, max_position_embeddings=2048)
METHODS = {
    "lora": {"type": "lora", "r": 16, "target_modules": "all-linear"},
    "qlora": {"type": "qlora", "r": 16, "target_modules": "all-linear"},
    "dora": {"type": "dora", "r": 16, "target_modules": "all-linear"},
    "prefix_tuning": {"type": "prefix_tuning", "num_virtual_tokens": 16},
    "full": {"type": "full"},
}
LEARNING_RATES = {"full": 2e-5, "prefix_tuning": 1e-2}
PROMPT = [{"role": "user", "content": "Write one sentence about the sea."}]


def job_body(data: str, tuning: dict, steps: int) -> dict:
    return {
        "model": MODEL_NAME, "training_file": data, "seed": 42,
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 8}}},
        "tuning": tuning,
        "training": {"max_steps": steps, "max_seq_length": 1024, "packing": True, "precision": "bf16",
                     "learning_rate": LEARNING_RATES.get(tuning["type"], 2e-4), "logging_steps": 1,
                     "warmup_ratio": 0.0, "save_steps": steps},
    }


def child(method: str, data: str, steps: int, out_json: str, workdir: str) -> None:
    import torch

    from worker.finetune.spec import parse_spec
    from worker.finetune.train import run

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    spec = parse_spec(job_body(data, METHODS[method], steps))
    started = time.time()
    result = run(spec, output_dir=Path(workdir) / method)
    wall = time.time() - started
    peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
    stats = {"method": method, "status": result.status, "steps": result.global_step,
             "tokens_per_second": result.metrics.get("tokens_per_second"),
             "trained_tokens": result.trained_tokens, "peak_gpu_bytes": peak, "wall_seconds": round(wall, 1),
             "first_loss": result.metrics.get("first_train_loss"), "last_loss": result.metrics.get("train_loss"),
             "trainable_params": result.trainable_params, "total_params": result.total_params}
    stats.update(generation_check(method, Path(workdir) / method))
    Path(out_json).write_text(json.dumps(stats))


def generation_check(method: str, artifact: Path) -> dict:
    """Greedy text of the trained artifact vs the base, through the inference worker's own serving path
    (`worker.finetune.generate.stream_generate`, the code behind /v1/chat/completions)."""
    import torch

    from worker.finetune.generate import Finished, ModelCache, SamplingParams, Served, stream_generate

    cuda = torch.cuda.is_available()
    cache = ModelCache(size=2, device="cuda" if cuda else "cpu", dtype=torch.bfloat16 if cuda else torch.float32)
    params = SamplingParams(max_tokens=24, temperature=0.0)

    def text(served: Served) -> str:
        return "".join(d for d in stream_generate(cache, served, messages=PROMPT, params=params)
                       if not isinstance(d, Finished))

    base_text = text(Served(base=MODEL_NAME))
    tuned = (Served(base=MODEL_NAME, artifact="full", adapter_path=str(artifact)) if method == "full"
             else Served(base=MODEL_NAME, artifact="peft", adapter_path=str(artifact), adapter_key=method))
    tuned_text = text(tuned)
    return {"base_text": base_text, "tuned_text": tuned_text, "generation_differs": base_text != tuned_text}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--json", default=None)
    parser.add_argument("--smoke", action="store_true", help="a tiny model on the CPU: checks the script itself")
    parser.add_argument("--child", nargs=4, metavar=("METHOD", "DATA", "OUT", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, data, out, workdir = args.child
        child(method, data, args.steps, out, workdir)
        return 0

    import torch

    if not torch.cuda.is_available() and not args.smoke:
        print("needs a CUDA GPU (none here); --smoke checks the script on the CPU with a tiny model")
        return 2
    shape = dict(SHAPE, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2) if args.smoke else SHAPE
    from bench.train_throughput import make_workload
    from worker.finetune.models import build_demo_model

    workdir = Path(tempfile.mkdtemp(prefix="gpu-path-"))
    os.environ.setdefault("STUDIO_DATA_DIR", str(workdir / "data"))
    folder = Path(os.environ["STUDIO_DATA_DIR"]) / "models" / MODEL_NAME
    started = time.time()
    if not (folder / "config.json").exists():
        build_demo_model(folder, seed=0, **shape)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (smoke)"
    print(f"{device}, torch {torch.__version__}; model built in {time.time() - started:.0f} s")
    data = workdir / "alpaca.jsonl"
    make_workload(data, n=200 if args.smoke else 2000)

    results: dict[str, dict] = {}
    for method in args.methods.split(","):
        out = workdir / f"{method}.json"
        proc = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", method, str(data),
                               str(out), str(workdir)], capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            results[method] = {"method": method, "error": (proc.stderr or proc.stdout)[-1500:]}
            print(f"{method}: FAILED\n{results[method]['error']}")
            continue
        results[method] = json.loads(out.read_text())
        print(json.dumps(results[method]))

    lora = results.get("lora", {})
    print(f"\n{'method':<14}{'tok/s':>10}{'x lora':>8}{'peak GiB':>10}{'x lora':>8}{'loss first->last':>20}  gen differs")
    for method, r in results.items():
        if "error" in r:
            print(f"{method:<14} failed")
            continue
        tps, peak = r["tokens_per_second"] or 0, r["peak_gpu_bytes"]
        rt = tps / lora["tokens_per_second"] if lora.get("tokens_per_second") else float("nan")
        rp = peak / lora["peak_gpu_bytes"] if lora.get("peak_gpu_bytes") else float("nan")
        print(f"{method:<14}{tps:>10.0f}{rt:>8.2f}{peak / 2**30:>10.2f}{rp:>8.2f}"
              f"{r['first_loss']:>10.3f} -> {r['last_loss']:<7.3f}  {r['generation_differs']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

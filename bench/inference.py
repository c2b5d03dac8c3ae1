"""Inference benchmark: time to first token (TTFT) and decode tokens/s, cold (the base loads) vs a cached
base, and the cache's counters proving two adapters of one base cost one base load.

    .venv/bin/python bench/inference.py                    # the demo model, ~1 min on 2 CPU cores
    .venv/bin/python bench/inference.py --model bench-llama-110m  # a random 110M Llama built locally
    .venv/bin/python bench/inference.py --model PATH_OR_ID # any local base (or hub id, if reachable)

What runs: the inference core in this process (`worker.finetune.generate`: `ModelCache` +
`stream_generate`, exactly what `studio.generate` calls), greedy decoding of `--max-tokens` tokens for
one chat message. Two LoRA adapters (all linear layers, r=16, random nonzero B) are made on the base in
a temporary folder. Phases, in this order:

  first     the very first request of the process (lazy imports + base load + generation)
  cold      a fresh ModelCache per request: base load + generation (median of --repeat)
  warm      the same cache again: generation only (median of --repeat)
  adapter   first request for adapter A, then B (each an adapter load on the cached base),
            then A/B alternating (set_adapter only; median of --repeat)
  no-cache  what an adapter request costs without the cache: fresh base + adapter load (median)
  http      (--http) the real path: embedded Redis + `studio worker --queues inference` + `studio api`,
            streamed `POST /v1/chat/completions`; TTFT of the worker's first request (it loads the base)
            and of later ones (cached), as the client sees them

TTFT = call to first text delta; tokens/s = (completion tokens - 1) / (last delta - first delta).
A benchmark, not a test: it prints numbers and ratios and never fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SYNTHETIC = {"bench-llama-110m": dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                                     num_attention_heads=16, num_key_value_heads=16)}
MESSAGES = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]


def timed(cache, served, params) -> dict:
    from worker.finetune.generate import Finished, stream_generate

    start = time.perf_counter()
    first = last = None
    for item in stream_generate(cache, served, messages=MESSAGES, params=params):
        now = time.perf_counter()
        if isinstance(item, Finished):
            finished = item
        elif item:
            first = first or now
            last = now
    tokens = finished.completion_tokens
    decode = (tokens - 1) / (last - first) if first and last and last > first else float("nan")
    return {"ttft": (first or time.perf_counter()) - start, "tps": decode, "tokens": tokens,
            "finish": finished.finish_reason}


def make_adapter(base_path: str, folder: Path, seed: int) -> str:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path)
    get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                     init_lora_weights=False)).save_pretrained(folder)
    return str(folder)


def over_http(model: str, max_tokens: int, repeat: int, work: Path) -> tuple[dict, list[dict]]:
    """(first, later) streamed chat requests through API -> Celery -> worker -> Redis Stream -> SSE."""
    import httpx
    import redis

    from backend.embedded import EmbeddedRedis, free_port

    server = EmbeddedRedis(work / "redis")
    env = {**os.environ, "STUDIO_REDIS_URL": server.start()}
    env.pop("STUDIO_DATABASE_URL", None)
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-m", "backend.cli", *args], cwd=REPO, env=env, start_new_session=True,
                              stdout=open(work / f"{args[0]}.log", "ab"), stderr=subprocess.STDOUT)
             for args in (("worker", "--queues", "inference"), ("api", "--port", str(port)))]
    body = {"model": model, "messages": MESSAGES, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    try:
        beats = redis.Redis.from_url(env["STUDIO_REDIS_URL"])
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as client:
            deadline = time.time() + 120
            while not _up(client) or not beats.zcard("studio:inference:workers"):
                assert time.time() < deadline, "API or worker did not start (see the logs in " + str(work) + ")"
                time.sleep(0.2)
            time.sleep(5)  # the worker imports torch in the background at start; let it finish
            runs = [_stream(client, body) for _ in range(repeat + 1)]
        beats.close()
        return runs[0], runs[1:]
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        server.stop()


def _up(client) -> bool:
    import httpx

    try:
        return client.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _stream(client, body: dict) -> dict:
    start, first, last, usage = time.perf_counter(), None, None, {}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if "error" in chunk:
                raise RuntimeError(f"error frame: {chunk['error']}")
            usage = chunk.get("usage") or usage
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                now = time.perf_counter()
                first, last = first or now, now
    tokens = usage.get("completion_tokens", 0)
    return {"ttft": first - start, "tps": (tokens - 1) / (last - first) if last > first else float("nan"),
            "tokens": tokens, "finish": "-"}


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def row(name: str, runs: list[dict]) -> str:
    return (f"{name:<28} TTFT {median(runs, 'ttft') * 1000:9.1f} ms   decode {median(runs, 'tps'):7.1f} tok/s   "
            f"({len(runs)} run{'s' if len(runs) > 1 else ''}, {runs[0]['tokens']} tokens, {runs[0]['finish']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="studio-tiny-llama")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--http", action="store_true", help="also measure through the API and a worker process")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    os.environ.setdefault("STUDIO_DATA_DIR", str(work / "data"))  # the demo model is built here once

    started = time.perf_counter()
    from worker.finetune.generate import ModelCache, SamplingParams, Served
    from worker.finetune.models import resolve_model

    if args.model in SYNTHETIC:  # a bigger random Llama with the demo tokenizer, where local models load from
        from worker.finetune.models import build_demo_model, data_dir

        folder = data_dir() / "models" / args.model
        if not (folder / "config.json").exists():
            build_demo_model(folder, seed=0, **SYNTHETIC[args.model])
    resolved = resolve_model(args.model)  # builds the demo model on first use (not timed below)
    print(f"model {args.model} at {resolved.path} (resolve/build {time.perf_counter() - started:.1f} s)")
    params = SamplingParams(max_tokens=args.max_tokens, temperature=0)
    base = Served(base=args.model)

    first = timed(ModelCache(), base, params)  # lazy imports + load + generate
    cold = [timed(ModelCache(), base, params) for _ in range(args.repeat)]
    cache = ModelCache(size=2)
    timed(cache, base, params)
    warm = [timed(cache, base, params) for _ in range(args.repeat)]

    peft_started = time.perf_counter()
    import peft  # noqa: F401  (paid once per worker process, by its first adapter request)

    peft_import = time.perf_counter() - peft_started
    adapters = [Served(base=args.model, artifact="peft", adapter_path=make_adapter(resolved.path, work / n, i),
                       adapter_key=n) for i, n in enumerate(("A", "B"))]
    adapter_first = [timed(cache, a, params) for a in adapters]
    switching = [timed(cache, adapters[i % 2], params) for i in range(2 * args.repeat)]
    counters = (cache.base_loads, cache.adapter_loads)
    no_cache = [timed(ModelCache(), adapters[0], params) for _ in range(args.repeat)]

    print()
    print(row("first request of process", [first]))
    print(row("cold (fresh cache: load)", cold))
    print(row("warm (cached base)", warm))
    print(row("adapter A, first (load)", adapter_first[:1]))
    print(row("adapter B, first (load)", adapter_first[1:]))
    print(row("adapters A/B alternating", switching))
    print(row("adapter without the cache", no_cache))
    print()
    print(f"import peft: {peft_import:.1f} s, once per worker process (its first adapter request pays it)")
    print(f"base_loads={counters[0]} adapter_loads={counters[1]} for base + adapters A and B "
          f"(+{2 * args.repeat} alternating requests) on one cache")
    print(f"TTFT cold / warm:                    {median(cold, 'ttft') / median(warm, 'ttft'):6.1f}x")
    print(f"TTFT adapter no-cache / alternating: {median(no_cache, 'ttft') / median(switching, 'ttft'):6.1f}x")
    print(f"decode tok/s adapter / base (warm):  {median(switching, 'tps') / median(warm, 'tps'):6.2f}x")
    if args.http:
        first_http, later_http = over_http(args.model, args.max_tokens, args.repeat, work)
        print()
        print(row("http: worker's first request", [first_http]))
        print(row("http: later requests", later_http))
        print(f"TTFT http first / later:             {first_http['ttft'] / median(later_http, 'ttft'):6.1f}x")
        print(f"TTFT http later - in-process warm:   {(median(later_http, 'ttft') - median(warm, 'ttft')) * 1000:6.1f} ms"
              " (Celery dispatch + Redis Stream + SSE)")


if __name__ == "__main__":
    main()

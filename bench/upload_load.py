"""Upload benchmark: `GET /v1/files` latency while a big dataset uploads, against a REAL `studio api`.

    .venv/bin/python bench/upload_load.py              # a 200 MB JSONL (~1-2 min on 2 cores)
    .venv/bin/python bench/upload_load.py --size-mb 20 # smoke run

What runs: the same stack as bench/api_load.py (embedded Redis + `python -m backend.cli api` subprocess,
temporary data dir, SQLite). The script writes a JSONL chat file of `--size-mb` MB (deterministic rows of
~400 characters), then:
  idle     `--requests` sequential `GET /v1/files?limit=20` with nothing else running: p50/p95.
  loaded   one client process uploads the big file (`POST /v1/files`, multipart, streamed from disk) while another
           sends the same GETs back to back until the upload's answer arrives: p50/p95, and the upload's
           wall time, status, the API process's peak RSS and its validation worker processes' (psutil,
           sampled every 50 ms).
Prints the loaded/idle p95 ratio. A benchmark, not a test: it never fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx
import psutil
from api_load import Stack

UPLOADER = """
import sys, httpx
with open(sys.argv[2], "rb") as fh:
    r = httpx.post(sys.argv[1] + "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("big.jsonl", fh)},
                   timeout=600)
print(r.status_code)
print(r.text)
"""


def write_dataset(path: Path, size_mb: int) -> int:
    """A chat JSONL of about `size_mb` MB; returns its row count."""
    rows, written, target = 0, 0, size_mb * 1_000_000
    with open(path, "w", encoding="utf-8") as fh:
        while written < target:
            line = json.dumps({"messages": [
                {"role": "user", "content": f"Question {rows}: how do the tides depend on the moon and the sun?"},
                {"role": "assistant", "content": f"Answer {rows}: " + "The moon pulls the oceans; the sun adds. " * 8},
            ]}) + "\n"
            fh.write(line)
            written += len(line)
            rows += 1
    return rows


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))]


def time_gets(client: httpx.Client, count: int | None, stop: threading.Event | None = None,
              slow: list | None = None) -> list[float]:
    """Latencies (ms) of sequential GET /v1/files: `count` of them, or until `stop` is set; GETs over
    100 ms go to `slow` as (start time, ms)."""
    out: list[float] = []
    while (count is None or len(out) < count) and not (stop is not None and stop.is_set()):
        start = time.perf_counter()
        response = client.get("/v1/files", params={"limit": 20})
        out.append((time.perf_counter() - start) * 1000)
        if slow is not None and out[-1] > 100:
            slow.append((start, out[-1]))
        response.raise_for_status()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200, help="idle GETs")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="studio-upload-bench-"))
    data = root / "big.jsonl"
    rows = write_dataset(data, args.size_mb)
    print(f"dataset: {data.stat().st_size / 1e6:.1f} MB, {rows} rows")
    stack = Stack(root)
    stack.env["STUDIO_MAX_UPLOAD_BYTES"] = str(max(512, 2 * args.size_mb) * 1024 * 1024)
    try:
        stack.start_api()
        api = psutil.Process(stack.api.pid)
        with httpx.Client(base_url=stack.url, timeout=600) as client:
            client.post("/v1/files", data={"purpose": "fine-tune"},
                        files={"file": ("warm.jsonl", b'{"text": "warm up"}\n')}).raise_for_status()
            idle = time_gets(client, args.requests)

            done, result, peak, peak_children = threading.Event(), {}, [api.memory_info().rss], [0]

            def upload() -> None:
                # a separate process, so the client's own multipart encoding never holds this process's GIL
                start = time.perf_counter()
                out = subprocess.run(
                    [sys.executable, "-c", UPLOADER, stack.url, str(data)], capture_output=True, text=True, check=False)
                status, _, text = out.stdout.partition("\n")
                result.update(status=int(status or 0), seconds=time.perf_counter() - start,
                              body=json.loads(text) if text.strip() else {"error": out.stderr[-500:]})
                done.set()

            def watch_memory() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], api.memory_info().rss)
                    try:  # the API's dataset-validation worker processes
                        children = sum(c.memory_info().rss for c in api.children(recursive=True))
                    except psutil.Error:
                        children = 0
                    peak_children[0] = max(peak_children[0], children)
                    time.sleep(0.05)

            rss_before = api.memory_info().rss
            slow: list[tuple[float, float]] = []
            began = time.perf_counter()
            threads = [threading.Thread(target=upload), threading.Thread(target=watch_memory)]
            for thread in threads:
                thread.start()
            loaded = time_gets(client, None, done, slow)
            for thread in threads:
                thread.join()
    finally:
        stack.close()

    body = result["body"]
    print(f"upload: HTTP {result['status']} in {result['seconds']:.1f} s, "
          f"{body.get('num_examples', body.get('error'))} examples; API RSS {rss_before / 2**20:.0f} MiB -> "
          f"peak {peak[0] / 2**20:.0f} MiB (+{(peak[0] - rss_before) / 2**20:.0f} MiB); its validation "
          f"processes' peak RSS {peak_children[0] / 2**20:.0f} MiB")
    for name, values in (("idle", idle), ("during upload", loaded)):
        print(f"GET /v1/files {name:>14}: n={len(values):4d}  p50 {statistics.median(values):7.1f} ms  "
              f"p95 {percentile(values, 95):7.1f} ms  max {max(values):7.1f} ms")
    print(f"p95 ratio (during upload / idle): {percentile(loaded, 95) / percentile(idle, 95):.1f}x")
    if slow:
        print("GETs over 100 ms (started at s after the upload began: ms): "
              + ", ".join(f"{t - began:.1f}: {ms:.0f}" for t, ms in slow))


if __name__ == "__main__":
    main()

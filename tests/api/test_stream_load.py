"""Open event streams and chats waiting on a model hold no database connection: with 50 SSE streams and
20 chats and completions, whole and streamed (no inference worker has answered yet), open on one team's key,
another team's GETs stay fast.

Before, each open stream and each waiting chat kept its request's SQLAlchemy session, and so a pool
connection, for its whole life: 15 of them (pool 5 + overflow 10) left every other request waiting ~30 s
for a connection. Real uvicorn, real Redis, team mode with real keys; once on SQLite, once on PostgreSQL.
"""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest

from backend.services import auth
from tests.api.conftest import _empty_tables
from tests.api.jobs_support import *
from tests.api.jobs_support import sent_tasks
from tests.conftest import EXAMPLES
from tests.helpers import job as job_body

JOBS, FILES = "/v1/fine_tuning/jobs", "/v1/files"
STREAMS, CHATS, GETS = 50, 20, 40
P95_BOUND_S = 2.0  # measured ~0.05 s on a loaded 2-core VM; before the fix a GET waited ~30 s for a connection


def _get_p95(base: str, headers: dict, label: str) -> float:
    """GET /v1/files `GETS` times as another team; prints p50/p95/max, returns p95 (10 s per timeout)."""
    latencies = []
    with httpx.Client(base_url=base, timeout=10.0) as http:
        for _ in range(GETS):
            started = time.perf_counter()
            try:
                response = http.get(FILES, headers=headers)
                assert response.status_code == 200, response.text
                latencies.append(time.perf_counter() - started)
            except httpx.TimeoutException:
                latencies.append(10.0)
                if latencies.count(10.0) >= 3:
                    break  # starved: no need to wait out the rest
    p50, p95 = _percentile(latencies, 50), _percentile(latencies, 95)
    print(f"\nGET {FILES} (another team) with {label}: "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")
    return p95


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


class Opened:
    """Counts connections whose response headers have arrived; `stop` ends the readers."""

    def __init__(self):
        self.lock, self.count, self.statuses, self.stop = threading.Lock(), 0, [], threading.Event()

    def opened(self, status: int) -> None:
        with self.lock:
            self.count += 1
            self.statuses.append(status)


def _follow(url: str, headers: dict, opened: Opened) -> None:
    """Hold an event stream open (reading keep-alives) until `opened.stop` is set or the server ends it."""
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(60.0)) as response:
            opened.opened(response.status_code)
            for _line in response.iter_lines():
                if opened.stop.is_set():
                    return
    except httpx.HTTPError:
        opened.opened(-1)


def _chat(base: str, headers: dict, results: list, i: int) -> None:
    """Chat and completion, whole and streamed, in turn."""
    path, body = (("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}) if i % 4 < 2 else
                  ("/v1/completions", {"prompt": "Once"}))
    body |= {"model": "my-llama", "stream": i % 2 == 1}
    try:
        response = httpx.post(f"{base}{path}", json=body, headers=headers, timeout=60.0)
        assert not body["stream"] or response.text.endswith("data: [DONE]\n\n"), response.text
        results.append(response.status_code)
    except (httpx.HTTPError, AssertionError) as exc:
        results.append(repr(exc))


@pytest.fixture
def team_server(job_settings, redis, db, live_server):
    """(base url, alice's headers, bob's headers): a real server in team mode, relay on, default SSE poll."""
    settings = job_settings.model_copy(update={
        "auth": "on", "relay_enabled": True, "sse_poll_seconds": 0.2, "sse_keepalive_seconds": 0.5,
        "inference_timeout_seconds": 60})
    _empty_tables(settings.database_url)
    with db.session() as session:
        alice = auth.create_key(session=session, user="alice", team="a")[1]
        bob = auth.create_key(session=session, user="bob", team="b")[1]
    return live_server(settings), {"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"}


def test_open_streams_and_waiting_chats_leave_other_teams_fast(team_server, redis):
    base, alice, bob = team_server
    with httpx.Client(base_url=base, timeout=30.0) as http:
        upload = http.post(FILES, headers=alice, data={"purpose": "fine-tune"},
                           files={"file": ("chat.jsonl", (EXAMPLES / "chat.jsonl").read_bytes())})
        assert upload.status_code == 200, upload.text
        job = http.post(JOBS, headers=alice, json=job_body("studio-tiny-llama", upload.json()["id"]))
        assert job.status_code == 200, job.text  # stays queued: the scheduler is off
        job_id = job.json()["id"]
        assert http.post(FILES, headers=bob, data={"purpose": "fine-tune"},
                         files={"file": ("chat.jsonl", (EXAMPLES / "chat.jsonl").read_bytes())}).status_code == 200
    redis.zadd("studio:inference:workers", {"fake@test": int(redis.time()[0]) + 3600})  # alive, never answers

    opened, chats, threads = Opened(), [], []
    for _ in range(STREAMS):
        threads.append(threading.Thread(target=_follow, args=(f"{base}{JOBS}/{job_id}/events/stream", alice,
                                                              opened), daemon=True))
    for i in range(CHATS):
        threads.append(threading.Thread(target=_chat, args=(base, alice, chats, i), daemon=True))
    for thread in threads:
        thread.start()
    deadline = time.time() + 60
    while (opened.count < STREAMS or len(sent_tasks(redis, "inference")) < CHATS) and time.time() < deadline:
        time.sleep(0.1)
    assert opened.count == STREAMS and set(opened.statuses) == {200}, opened.statuses
    waiting = sent_tasks(redis, "inference")
    assert len(waiting) == CHATS, f"only {len(waiting)} chats reached the inference queue"

    p95 = _get_p95(base, bob, f"{STREAMS} open streams + {CHATS} waiting chats")

    for task in waiting:  # now answer the chats: they were waiting, not failed
        key = f"studio:gen:{task['kwargs']['request_id']}"
        redis.xadd(key, {"event": '{"type": "delta", "text": "Hi"}'})
        redis.xadd(key, {"event": '{"type": "done", "finish_reason": "stop", "usage": {"prompt_tokens": 1, '
                                  '"completion_tokens": 1, "total_tokens": 2}}'})
    opened.stop.set()
    assert p95 < P95_BOUND_S, f"p95 {p95:.2f} s"
    with httpx.Client(base_url=base, timeout=30.0) as http:  # the final status ends every stream
        assert http.post(f"{JOBS}/{job_id}/cancel", headers=alice).status_code == 200
    for thread in threads:
        thread.join(timeout=30)
    assert chats == [200] * CHATS, chats


"""A job's events and checkpoints: lists with cursors, and the Server-Sent Events stream (replay,
reconnect with Last-Event-ID, live events, keep-alives, the final status)."""

from __future__ import annotations

import json
import queue
import threading
import time

import httpx

from backend.db.ids import event_id
from backend.services.relay import relay_once
from tests.api.jobs_support import *  # fixtures
from tests.api.jobs_support import error_of
from tests.conftest import EXAMPLES
from tests.helpers import job

JOBS = "/v1/fine_tuning/jobs"


def relay(db, redis, job_id: str, settings) -> None:
    with db.session() as session:
        relay_once(session, redis, job_id, data_dir=settings.data_dir)


def finished_job(create, worker, db, redis, settings, steps: int = 5) -> tuple[str, list[int]]:
    """A job with running, `steps` metrics events and a succeeded status, relayed to the DB."""
    job_id = create()["id"]
    seqs = [worker.status(job_id, "running")]
    seqs += [worker.metrics(job_id, s, total=steps) for s in range(1, steps + 1)]
    seqs.append(worker.status(job_id, "succeeded", result=worker.success_result("/out", steps=steps)))
    relay(db, redis, job_id, settings)
    return job_id, seqs


def parse_sse(text: str) -> list[dict]:
    """SSE frames → [{id?, event, data}] (comments dropped)."""
    frames = []
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if fields:
            fields["data"] = json.loads(fields["data"])
            frames.append(fields)
    return frames


def test_events_list_is_oldest_first_with_after(jobs_client, create, worker, db, redis, job_settings):
    job_id, seqs = finished_job(create, worker, db, redis, job_settings)
    page = jobs_client.get(f"{JOBS}/{job_id}/events", params={"limit": 3}).json()
    assert page["object"] == "list" and page["has_more"]
    assert [e["id"] for e in page["data"]] == [event_id(job_id, s) for s in seqs[:3]]
    first = page["data"][0]
    assert set(first) == {"object", "id", "created_at", "level", "message", "type", "data", "attempt"}
    assert first["object"] == "fine_tuning.job.event" and first["type"] == "status" and first["attempt"] == 1
    assert first["data"]["status"] == "running"
    assert page["data"][1]["type"] == "metrics" and page["data"][1]["data"]["step"] == 1
    rest = jobs_client.get(f"{JOBS}/{job_id}/events", params={"after": page["last_id"], "limit": 100}).json()
    assert [e["id"] for e in rest["data"]] == [event_id(job_id, s) for s in seqs[3:]] and not rest["has_more"]
    assert rest["data"][-1]["data"]["status"] == "succeeded"
    error = error_of(jobs_client.get(f"{JOBS}/{job_id}/events", params={"after": "ftevent-other-000000001"}), 400)
    assert error["param"] == "after"
    assert error_of(jobs_client.get(f"{JOBS}/{job_id}/events", params={"limit": 0}), 422)["param"] == "limit"


def test_checkpoints_list_latest_first(jobs_client, create, worker, db, redis, job_settings):
    job_id = create()["id"]
    worker.status(job_id, "running")
    for step in (2, 4, 6):
        worker.checkpoint(job_id, step, str(job_settings.jobs_dir / job_id / "checkpoints" / f"checkpoint-{step}"))
    relay(db, redis, job_id, job_settings)
    page = jobs_client.get(f"{JOBS}/{job_id}/checkpoints", params={"limit": 2}).json()
    assert page["object"] == "list" and page["has_more"]
    assert [c["step_number"] for c in page["data"]] == [6, 4]
    ckpt = page["data"][0]
    assert ckpt["object"] == "fine_tuning.job.checkpoint" and ckpt["id"].startswith("ftckpt-")
    assert ckpt["fine_tuning_job_id"] == job_id and ckpt["metrics"] == {"train_loss": 0.5}
    assert ckpt["fine_tuned_model_checkpoint"].endswith(":ckpt-step-6") and isinstance(ckpt["created_at"], int)
    rest = jobs_client.get(f"{JOBS}/{job_id}/checkpoints", params={"after": page["last_id"]}).json()
    assert [c["step_number"] for c in rest["data"]] == [2] and not rest["has_more"]


def test_stream_replays_a_finished_job_then_closes_with_its_status(jobs_client, create, worker, db, redis, job_settings):
    job_id, seqs = finished_job(create, worker, db, redis, job_settings)
    response = jobs_client.get(f"{JOBS}/{job_id}/events/stream")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    frames = parse_sse(response.text)
    assert [f.get("id") for f in frames] == [event_id(job_id, s) for s in seqs] + [None]
    # stored status changes are `message` frames; the final, id-less `status` frame closes the stream
    assert [f["event"] for f in frames] == ["message"] + ["metrics"] * 5 + ["message", "status"]
    assert "id" not in frames[-1] and all("id" in f for f in frames[:-1])
    assert frames[-1]["data"] == {"status": "succeeded"}
    listed = jobs_client.get(f"{JOBS}/{job_id}/events", params={"limit": 100}).json()["data"]
    assert [f["data"] for f in frames[:-1]] == listed  # each frame's data is the event object


def test_reconnect_with_last_event_id_gets_exactly_the_rest(jobs_client, create, worker, db, redis, job_settings):
    job_id, seqs = finished_job(create, worker, db, redis, job_settings)
    cut = event_id(job_id, seqs[2])
    for request in ({"headers": {"Last-Event-ID": cut}}, {"params": {"after": cut}}):
        frames = parse_sse(jobs_client.get(f"{JOBS}/{job_id}/events/stream", **request).text)
        assert [f.get("id") for f in frames] == [event_id(job_id, s) for s in seqs[3:]] + [None]
    last = event_id(job_id, seqs[-1])
    frames = parse_sse(jobs_client.get(f"{JOBS}/{job_id}/events/stream", headers={"Last-Event-ID": last}).text)
    assert frames == [{"event": "status", "data": {"status": "succeeded"}}]
    error = error_of(jobs_client.get(f"{JOBS}/{job_id}/events/stream", headers={"Last-Event-ID": "garbage"}), 400)
    assert error["param"] == "Last-Event-ID"


def test_cancelled_job_with_no_events_streams_just_the_status(jobs_client, create):
    job_id = create()["id"]
    jobs_client.post(f"{JOBS}/{job_id}/cancel")
    frames = parse_sse(jobs_client.get(f"{JOBS}/{job_id}/events/stream").text)
    assert frames == [{"event": "status", "data": {"status": "cancelled"}}]


def _reader(url: str, headers: dict, out: queue.Queue) -> None:
    """Stream lines into `out` (None at the end) from a thread."""
    try:
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(20.0)) as response:
            out.put(("status", response.status_code))
            for line in response.iter_lines():
                out.put(("line", line))
    except Exception as exc:  # surfaced by the test through the queue
        out.put(("error", repr(exc)))
    out.put(None)


def _collect_until(out: queue.Queue, predicate, timeout: float = 10.0) -> list[str]:
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        try:
            item = out.get(timeout=max(0.01, deadline - time.time()))
        except queue.Empty:
            break
        if item is None:
            return lines
        kind, value = item
        assert kind != "error", value
        if kind == "line":
            lines.append(value)
            if predicate(lines):
                return lines
    raise AssertionError(f"timed out; got {lines}")


def test_live_stream_receives_new_events_keepalives_and_the_end(live_server, create, worker, db, redis, job_settings):
    job_id = create()["id"]
    first = worker.status(job_id, "running")
    base = live_server()  # relay on, keep-alive every 0.3 s
    out: queue.Queue = queue.Queue()
    thread = threading.Thread(target=_reader, args=(f"{base}{JOBS}/{job_id}/events/stream", {}, out), daemon=True)
    thread.start()
    lines = _collect_until(out, lambda ls: f"id: {event_id(job_id, first)}" in ls)
    lines += _collect_until(out, lambda ls: ": keep-alive" in ls)

    seq = worker.metrics(job_id, 1, total=2)  # written after the client connected
    lines += _collect_until(out, lambda ls: f"id: {event_id(job_id, seq)}" in ls)
    end = worker.status(job_id, "succeeded", result=worker.success_result("/out", steps=2))
    lines += _collect_until(out, lambda ls: False, timeout=10)  # runs until the server closes the stream
    thread.join(timeout=5)
    frames = parse_sse("\n".join(lines) + "\n\n")
    assert [f.get("id") for f in frames] == [event_id(job_id, s) for s in (first, seq, end)] + [None]
    assert frames[1]["event"] == "metrics" and frames[1]["data"]["data"]["step"] == 1
    assert frames[-1] == {"event": "status", "data": {"status": "succeeded"}}


def test_live_reconnect_resumes_after_the_last_event_id(live_server, create, worker, db, redis, job_settings):
    job_id = create()["id"]
    seqs = [worker.status(job_id, "running"), worker.metrics(job_id, 1, total=3)]
    base = live_server()
    url = f"{base}{JOBS}/{job_id}/events/stream"
    out: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(url, {}, out), daemon=True).start()
    _collect_until(out, lambda ls: f"id: {event_id(job_id, seqs[1])}" in ls)
    # (the first connection is simply abandoned, as a browser losing its network would)
    seqs += [worker.metrics(job_id, 2, total=3), worker.metrics(job_id, 3, total=3)]
    seqs.append(worker.status(job_id, "succeeded", result=worker.success_result("/out", steps=3)))
    again: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(url, {"Last-Event-ID": event_id(job_id, seqs[1])}, again),
                     daemon=True).start()
    lines = _collect_until(again, lambda ls: False, timeout=10)
    frames = parse_sse("\n".join(lines) + "\n\n")
    assert [f.get("id") for f in frames] == [event_id(job_id, s) for s in seqs[2:]] + [None]


def test_a_cursor_past_any_sequence_number_is_a_400(jobs_client, create):
    """A seq no database integer holds (SQLite raised OverflowError: a 500) or digits that are not ASCII."""
    job_id = create()["id"]
    body = job_id.removeprefix("ftjob-")
    for cursor in (f"ftevent-{body}-99999999999999999999", f"ftevent-{body}-{2**63}", f"ftevent-{body}-{2**31}",
                   f"ftevent-{body}-00²"):
        error = error_of(jobs_client.get(f"{JOBS}/{job_id}/events", params={"after": cursor}), 400)
        assert error["param"] == "after" and cursor in error["message"]
        error = error_of(jobs_client.get(f"{JOBS}/{job_id}/events/stream", headers={"Last-Event-ID": cursor.encode()}), 400)
        assert error["param"] == "Last-Event-ID"
        error = error_of(jobs_client.get(f"{JOBS}/{job_id}/events/stream", params={"after": cursor}), 400)
        assert error["param"] == "after"
    largest = f"ftevent-{body}-{2**31 - 1}"  # the largest seq the INTEGER column stores: nothing after it, yet
    assert jobs_client.get(f"{JOBS}/{job_id}/events", params={"after": largest}).json()["data"] == []


def test_revoking_a_key_ends_its_open_streams(live_server, job_settings, worker, db, redis):
    """Team mode: a stream opened with a key ends within seconds of `studio keys revoke` (an error frame in
    OpenAI's envelope, then the end); a stream of another, live key goes on."""
    from backend.services import auth

    settings = job_settings.model_copy(update={"auth": "on", "relay_enabled": True, "sse_poll_seconds": 0.2})
    with db.session() as session:
        alice_row, alice = auth.create_key(session=session, user="alice", team="a")
        _row, carol = auth.create_key(session=session, user="carol", team="a")
    base = live_server(settings)
    upload = httpx.post(f"{base}/v1/files", headers={"Authorization": f"Bearer {alice}"},
                        data={"purpose": "fine-tune"}, files={"file": ("chat.jsonl", (EXAMPLES / "chat.jsonl").read_bytes())})
    created = httpx.post(f"{base}{JOBS}", headers={"Authorization": f"Bearer {alice}"},
                         json=job("studio-tiny-llama", upload.json()["id"]))
    job_id = created.json()["id"]
    first = worker.status(job_id, "running")
    url = f"{base}{JOBS}/{job_id}/events/stream"
    streams = {}
    for name, headers in (("alice", {"Authorization": f"Bearer {alice}"}), ("carol", {"Authorization": f"Bearer {carol}"})):
        streams[name] = queue.Queue()
        threading.Thread(target=_reader, args=(url, headers, streams[name]), daemon=True).start()
        _collect_until(streams[name], lambda ls: f"id: {event_id(job_id, first)}" in ls)

    with db.session() as session:
        auth.revoke_key(session=session, key_id=alice_row.id)
    revoked_at = time.time()
    lines = _collect_until(streams["alice"], lambda ls: False, timeout=5)  # returns when the server ends it
    took = time.time() - revoked_at
    frames = parse_sse("\n".join(lines) + "\n\n")
    assert frames[-1]["event"] == "error" and frames[-1]["data"]["error"]["code"] == "invalid_api_key", frames
    assert took < 3, f"the stream ended {took:.1f} s after the revocation"

    seq = worker.metrics(job_id, 1, total=2)  # the live key's stream still delivers
    _collect_until(streams["carol"], lambda ls: f"id: {event_id(job_id, seq)}" in ls)


def test_events_and_job_errors_name_no_server_path(jobs_client, create, worker, db, redis, job_settings):
    """What the worker emits holds absolute paths (checkpoint, output folder, a missing training file); a
    member sees the studio's own names (jobs/<id>/…, the file id), never the server's folders."""
    job_id = create()["id"]
    root = str(job_settings.data_dir.resolve())
    ckpt, out = f"{root}/jobs/{job_id}/checkpoints/checkpoint-1", f"{root}/jobs/{job_id}/output"
    worker.status(job_id, "running")
    worker.checkpoint(job_id, 1, ckpt)
    worker.emit(job_id, "message", {"output_dir": out}, message=f"Paused at step 1; checkpoint {ckpt}")
    worker.emit(job_id, "message", message="Loaded /srv/secret/models/llama/config.json (see https://hf.co/a/b)")
    worker.status(job_id, "failed", error={"code": "invalid_training_file", "param": None,
                                           "message": f"file not found: {root}/files/file-ABC.jsonl"})
    relay(db, redis, job_id, job_settings)
    listed = jobs_client.get(f"{JOBS}/{job_id}/events", params={"limit": 100}).text
    streamed = jobs_client.get(f"{JOBS}/{job_id}/events/stream").text
    job_body = jobs_client.get(f"{JOBS}/{job_id}").json()
    for text in (listed, streamed, json.dumps(job_body)):
        assert root not in text and "/srv/secret" not in text
    assert f"jobs/{job_id}/checkpoints/checkpoint-1" in listed and "https://hf.co/a/b" in listed
    assert job_body["error"]["message"] == "file not found: file-ABC.jsonl"

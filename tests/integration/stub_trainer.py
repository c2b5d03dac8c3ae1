"""A stand-in for the training process (`worker.run_job`) for the queue's load test and benchmark.

Workers run it when `STUDIO_TRAINING_MODULE=tests.integration.stub_trainer`. Same arguments, events, exit
codes and `result.json` as the real one — `metrics` events, a final `status`, cancel/pause through the
control key, SIGTERM → `worker_lost` — but no model: `training.max_steps` steps (from the spec; resumed
after `checkpoint-N` when `--resume-from` names one), `STUDIO_STUB_STEP_SECONDS` (0.05 s) each. A real run
costs ~5 s of CPU in imports alone (torch, transformers, peft), which would make 200 jobs on 2 cores a
10-minute test of import speed rather than of the queue.

`STUDIO_STUB_LOG`, when set, gets one JSON line per start `{job_id, attempt, pid, worker, started}` (`worker`:
the worker process's pid; O_APPEND, so concurrent workers never interleave lines): the load test's proof
that no job ran twice, and the benchmark's start times.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from worker.events import RedisStreamReporter, connect, emit_status
from worker.finetune.reporting import make_event
from worker.run_job import (
    EXIT_CANCELLED,
    EXIT_INTERRUPTED,
    EXIT_PAUSED,
    EXIT_SUCCEEDED,
    ControlSignal,
    parse_args,
    write_result,
)


def log_start(job_id: str, attempt: int) -> None:
    path = os.environ.get("STUDIO_STUB_LOG")
    if path:
        line = json.dumps({"job_id": job_id, "attempt": attempt, "pid": os.getpid(), "worker": os.getppid(),
                           "started": time.time()}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, prog="python -m tests.integration.stub_trainer")
    log_start(args.job_id, args.attempt)
    redis = connect(args.redis_url)
    control = ControlSignal(redis, args.job_id, args.key_prefix)
    signal.signal(signal.SIGTERM, control.on_sigterm)
    signal.signal(signal.SIGUSR1, control.on_parent_death)
    reporter = RedisStreamReporter(redis, args.job_id, args.attempt, args.key_prefix)
    spec = json.loads(Path(args.spec_file).read_text(encoding="utf-8"))
    total = int((spec.get("training") or {}).get("max_steps") or 3)
    pause = float(os.environ.get("STUDIO_STUB_STEP_SECONDS") or 0.05)
    first = int(Path(args.resume_from).name.rsplit("-", 1)[-1]) + 1 if args.resume_from else 1
    reporter.report(make_event("message", f"Stub training: steps {first}..{total}", {"plan": {"total_steps": total}}))
    code, status, error, result = EXIT_SUCCEEDED, "succeeded", None, None
    for step in range(first, total + 1):
        time.sleep(pause)
        reporter.report(make_event("metrics", f"Step {step}/{total}", {
            "step": step, "total_steps": total, "train_loss": 2.0 / step, "learning_rate": 1e-4, "epoch": step / total}))
        requested = control()
        if requested and step < total:
            checkpoint = str(Path(args.checkpoint_dir) / f"checkpoint-{step}")
            Path(checkpoint).mkdir(parents=True, exist_ok=True)
            result = {"checkpoint": checkpoint, "global_step": step}
            if control.terminated:
                code, status = EXIT_INTERRUPTED, "failed"
                error = {"code": "worker_lost", "message": "the worker shut down; the job can resume"}
            elif requested == "pause":
                code, status = EXIT_PAUSED, "paused"
            else:
                code, status, result = EXIT_CANCELLED, "cancelled", None
            break
    if status == "succeeded":
        result = {"global_step": total, "trained_tokens": 10 * total, "output_dir": args.output_dir,
                  "plan": {"total_steps": total}, "metrics": {"train_loss": 2.0 / total}}
    if status in ("paused", "cancelled"):
        redis.delete(control.key)
    emit_status(redis, args.job_id, args.attempt, status, error=error, result=result, prefix=args.key_prefix)
    write_result(args, {"attempt": args.attempt, "exit_code": code, "status": status, "error": error,
                        "result": result})
    return code


if __name__ == "__main__":
    sys.exit(main())

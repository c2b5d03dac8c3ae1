"""The training subprocess: `python -m worker.run_job --job-id … --attempt … --spec-file … --output-dir …
--checkpoint-dir … [--resume-from …] --redis-url … [--key-prefix …] [--result-file …]`.

A separate process keeps torch/CUDA out of the Celery pool process (CUDA is not fork-safe) and turns a
crash or an out-of-memory error into an exit code the task maps to a status. The process writes its own
final `status` event, then `result.json` (`{"attempt", "exit_code", "status", "error", "result"}`) — the
file existing tells the task the status event was written.

Exit codes: 0 succeeded · 10 paused (checkpoint in `result.checkpoint`, also printed) · 11 cancelled ·
12 interrupted by SIGTERM (worker shutting down) or SIGUSR1 (the worker died: the parent-death signal);
pauses at the next step, status `failed`/`worker_lost` with the checkpoint · 2 invalid input · 3 out of
memory · 1 anything else (`training_error`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .events import OOM_HINT, RedisStreamReporter, connect, control_key, emit_status

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_INVALID, EXIT_OOM = 0, 1, 2, 3
EXIT_PAUSED, EXIT_CANCELLED, EXIT_INTERRUPTED = 10, 11, 12
STATUS_EXIT = {"succeeded": EXIT_SUCCEEDED, "paused": EXIT_PAUSED, "cancelled": EXIT_CANCELLED}
CONTROL_POLL_SECONDS = 0.25


class ControlSignal:
    """The core's `stop()` hook: the job's control key (GET at most every 0.25 s), or a SIGTERM / SIGUSR1.

    SIGTERM is the worker shutting down (a second one: stop now); SIGUSR1 is the worker gone (the kernel's
    parent-death signal, which may arrive several times: each is the same news)."""

    def __init__(self, redis, job_id: str, prefix: str | None):
        self.redis, self.key = redis, control_key(job_id, prefix)
        self.value: str | None = None
        self.checked = 0.0
        self.terminated = False
        self.orphaned = False  # the worker process died (SIGUSR1)

    def on_sigterm(self, signum, frame) -> None:
        if self.terminated:  # a second SIGTERM: stop now, no checkpoint
            raise SystemExit(EXIT_INTERRUPTED)
        self.terminated = True

    def on_parent_death(self, signum, frame) -> None:
        self.terminated = self.orphaned = True

    def __call__(self) -> str | None:
        if self.terminated:
            return "pause"
        now = time.monotonic()
        if now - self.checked >= CONTROL_POLL_SECONDS:
            self.checked = now
            value = self.redis.get(self.key)
            self.value = value if value in ("cancel", "pause") else None
        return self.value


def classify(exc: BaseException) -> tuple[int, str, str]:
    """(exit code, error code, one-line message) for an exception out of the core."""
    from worker.finetune.data import DataValidationError
    from worker.finetune.methods import MethodError
    from worker.finetune.models import ModelError
    from worker.finetune.spec import SpecError

    invalid = [(DataValidationError, "invalid_training_file"), (SpecError, "invalid_spec"),
               (ModelError, "invalid_model"), (MethodError, "invalid_tuning")]
    for cls, code in invalid:
        if isinstance(exc, cls):
            return EXIT_INVALID, code, _one_line(str(exc))
    if isinstance(exc, FileNotFoundError):
        return EXIT_INVALID, "invalid_training_file", f"file not found: {exc.filename}"
    if _is_oom(exc):
        reason = _one_line(str(exc) or type(exc).__name__, limit=300)
        return EXIT_OOM, "out_of_memory", f"out of memory: {reason}. {OOM_HINT}"
    return EXIT_FAILED, "training_error", _one_line(f"{type(exc).__name__}: {exc}")


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def _one_line(text: str, limit: int = 500) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def train(args: argparse.Namespace, redis, control: ControlSignal) -> tuple[int, str, dict | None, dict | None]:
    """Run the core; returns (exit code, status, error, result)."""
    from worker.finetune.cli import quiet_libraries
    from worker.finetune.spec import parse_spec
    from worker.finetune.train import run

    reporter = RedisStreamReporter(redis, args.job_id, args.attempt, args.key_prefix)
    try:
        spec = parse_spec(Path(args.spec_file).read_text(encoding="utf-8"))
        quiet_libraries()
        result = run(spec, output_dir=args.output_dir, reporter=reporter, stop=control,
                     resume_from=args.resume_from, checkpoint_dir=args.checkpoint_dir)
    except Exception as exc:  # noqa: BLE001 — every failure becomes a status and an exit code
        traceback.print_exc(file=sys.stderr)
        code, error_code, message = classify(exc)
        return code, "failed", {"code": error_code, "message": message}, None
    summary = result.to_dict()
    if control.terminated and result.status in ("paused", "cancelled"):
        why = "the worker process died" if control.orphaned else "the worker shut down"
        error = {"code": "worker_lost", "message": f"{why}; the job can resume from its checkpoint"}
        return EXIT_INTERRUPTED, "failed", error, summary
    return STATUS_EXIT[result.status], result.status, None, summary


def parse_args(argv: list[str] | None = None, prog: str = "python -m worker.run_job") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    for name in ("--job-id", "--spec-file", "--output-dir", "--checkpoint-dir", "--redis-url"):
        parser.add_argument(name, required=True)
    parser.add_argument("--attempt", type=int, required=True)
    parser.add_argument("--resume-from")
    parser.add_argument("--key-prefix")
    parser.add_argument("--result-file", help="default: result.json next to the output dir")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    redis = connect(args.redis_url)
    control = ControlSignal(redis, args.job_id, args.key_prefix)
    signal.signal(signal.SIGTERM, control.on_sigterm)
    signal.signal(signal.SIGUSR1, control.on_parent_death)
    code, status, error, result = train(args, redis, control)
    if status in ("paused", "cancelled"):
        redis.delete(control.key)  # acted on (before the status, which the API may answer with a resume)
    emit_status(redis, args.job_id, args.attempt, status, error=error, result=result, prefix=args.key_prefix)
    write_result(args, {"attempt": args.attempt, "exit_code": code, "status": status, "error": error,
                        "result": result})
    if status == "paused":
        print(f"paused: checkpoint {result.get('checkpoint')}", flush=True)
    return code


def default_result_file(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir).parent / "result.json"


def write_result(args: argparse.Namespace, outcome: dict[str, Any]) -> None:
    path = Path(args.result_file) if args.result_file else default_result_file(args.output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(outcome, default=str), encoding="utf-8")
    tmp.replace(path)  # atomic: the task never reads half a file


if __name__ == "__main__":
    sys.exit(main())

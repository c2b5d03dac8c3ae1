"""The one narrow interface through which a run talks to the world: a `Reporter` receives events.

Events are plain dicts shaped like the API's job events (DESIGN §4): `type` (message | metrics |
checkpoint), `level`, `message`, `data`, `created_at`. The CLI writes them as JSONL and draws a progress
bar; the Celery worker (next layer) relays them to a Redis Stream. The core never knows which.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any, Protocol

METRIC_FIELDS = ("step", "total_steps", "train_loss", "valid_loss", "learning_rate", "grad_norm",
                 "tokens_per_second", "epoch", "gpu_memory_bytes")


class Reporter(Protocol):
    def report(self, event: dict[str, Any]) -> None: ...


def make_event(type_: str, message: str, data: dict[str, Any] | None = None, level: str = "info") -> dict[str, Any]:
    return {"type": type_, "level": level, "message": message, "data": data or {}, "created_at": int(time.time())}


def metrics_message(data: dict[str, Any]) -> str:
    parts = [f"Step {data.get('step')}/{data.get('total_steps')}"]
    for key, label in (("train_loss", "training loss"), ("valid_loss", "validation loss")):
        if data.get(key) is not None:
            parts.append(f"{label}={data[key]:.4f}")
    return ": ".join([parts[0], ", ".join(parts[1:])]) if len(parts) > 1 else parts[0]


class JsonlReporter:
    """Every event as one JSON line (a file or stdout); `metrics_path` gets each metrics event's `data`."""

    def __init__(self, stream: IO[str] | None = None, metrics_path: Path | None = None):
        self.stream = stream
        self.metrics_file = open(metrics_path, "a", encoding="utf-8") if metrics_path else None  # noqa: SIM115 - closed by close()

    def report(self, event: dict[str, Any]) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(event) + "\n")
            self.stream.flush()
        if self.metrics_file is not None and event["type"] == "metrics":
            self.metrics_file.write(json.dumps(event["data"]) + "\n")
            self.metrics_file.flush()

    def close(self) -> None:
        if self.metrics_file is not None:
            self.metrics_file.close()


class ListReporter:
    """Keeps events in memory (tests, and callers that want the run's history)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def report(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == type_]


class FanoutReporter:
    def __init__(self, *reporters: Reporter):
        self.reporters = [r for r in reporters if r is not None]

    def report(self, event: dict[str, Any]) -> None:
        for reporter in self.reporters:
            reporter.report(event)


class ProgressReporter:
    """A terminal progress bar: step, loss, tokens/s and ETA; messages print above it."""

    def __init__(self, stream: IO[str] = sys.stderr):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(), console=Console(file=stream), transient=False,
        )
        self.task = None
        self.loss: float | None = None
        self.tps: float | None = None

    def report(self, event: dict[str, Any]) -> None:
        if event["type"] != "metrics":
            self.progress.console.print(f"[dim]{event['message']}[/dim]")
            return
        data = event["data"]
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task("train", total=data.get("total_steps") or None, stats="")
        self.loss = data.get("train_loss", self.loss)
        self.tps = data.get("tokens_per_second", self.tps)
        stats = " ".join(s for s in (
            f"loss {self.loss:.4f}" if self.loss is not None else "",
            f"{self.tps:,.0f} tok/s" if self.tps else "",
            f"val {data['valid_loss']:.4f}" if data.get("valid_loss") is not None else "",
        ) if s)
        self.progress.update(self.task, completed=data.get("step", 0), total=data.get("total_steps"), stats=stats)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()

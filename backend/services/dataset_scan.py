"""Validating datasets in a pool of separate processes, not in the API's threads.

Why a process: the reader and validator are Python code. In a thread they hold the API's GIL, and while a
200 MB JSONL was validated `GET /v1/files` took up to 664 ms (p95 34 ms against 2 ms idle,
bench/upload_load.py). In a process they cannot slow other requests, and what a hostile file still costs
(one batch, one row) is spent outside the API. Workers are spawned (never forked from a threaded server).
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from worker.finetune.data import (
    DataIssue,
    DataLimitError,
    DataLimits,
    DatasetSummary,
    DataValidationError,
    scan_dataset,
)

WORKERS = 2
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def _reset_pool() -> None:
    global _pool
    with _lock:
        _pool = None


def _scan(path: str, mapping: dict[str, str] | None, limits: DataLimits, tokenizer_path: str | None,
          every: int, limit: int | None) -> tuple:
    """In the worker process: scan, counting tokens of the sampled examples. Errors come back as data
    (("error", limit, issues, total)): DataValidationError's constructor does not survive pickling."""
    from backend.services.tokens import TokenCounter, tokenizer_from_file

    counter = TokenCounter(tokenizer_from_file(tokenizer_path), every=every, limit=limit) if tokenizer_path else None
    try:
        summary = scan_dataset(path, column_mapping=mapping, limits=limits,
                               on_example=counter.add if counter else None)
    except DataLimitError as exc:
        return ("error", exc.limit, exc.issues, exc.total)
    except DataValidationError as exc:
        return ("error", None, exc.issues, exc.total)
    return ("ok", summary, counter.flush() if counter else [])


def scan_file(path: Path, *, column_mapping: dict[str, str] | None, limits: DataLimits,
              tokenizer_path: Path | None = None, every: int = 1,
              limit: int | None = None) -> tuple[DatasetSummary, list[int]]:
    """(summary, token lengths of the sampled examples); raises DataValidationError/DataLimitError."""
    args = (str(path), column_mapping, limits, str(tokenizer_path) if tokenizer_path else None, every, limit)
    result = None
    for _attempt in range(2):
        try:
            result = _get_pool().submit(_scan, *args).result()
            break
        except BrokenProcessPool:  # a worker died (killed for memory?): a fresh pool, once
            _reset_pool()
    if result is None:
        raise DataValidationError([DataIssue(None, None, (
            "the process validating this file died twice (out of memory?); split the file or lower its row size"))])
    if result[0] == "ok":
        return result[1], result[2]
    _, limit_name, issues, total = result
    if limit_name is not None:
        issue = issues[0]
        raise DataLimitError(limit_name, issue.message, issue.line, issue.unit)
    raise DataValidationError(issues, total)

"""Estimates: the job body is validated here, priced by the core's estimator on an inference worker
(it needs torch on the meta device, which the API never imports), and cached by body."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.orm import Session

from backend.api.errors import APIError
from backend.schemas.registry import EstimateObject
from backend.services import queue as queue_calls
from backend.services.auth import Principal
from backend.services.job_checks import (
    check_file,
    check_model,
    check_target_modules,
    parse_job_body,
)
from backend.services.queue import JobQueue
from backend.settings import Settings

PLACEHOLDER_FILE = "file-estimate"  # stands in for an absent training_file: estimates don't read data
CACHE_SIZE = 256
TIMEOUT_SECONDS = 60.0
_cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def estimate_job(*, session: Session, settings: Settings, queue: JobQueue, body: Any,
                 principal: Principal | None = None) -> EstimateObject:
    if isinstance(body, dict) and not body.get("training_file"):
        body = {**body, "training_file": PLACEHOLDER_FILE}
    spec = parse_job_body(body)
    if spec.training_file != PLACEHOLDER_FILE:
        check_file(session=session, file_id=spec.training_file, param="training_file", stage=spec.stage,
                   principal=principal)
    check_target_modules(spec=spec, model_type=check_model(settings=settings, spec=spec, weights=False))
    payload = spec.model_dump(mode="json")
    key = json.dumps(payload, sort_keys=True)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return EstimateObject(**_cache[key])
    reply = queue_calls.call_worker(queue, queue_calls.ESTIMATE_TASK, {"spec": payload}, TIMEOUT_SECONDS)
    if "error" in reply:
        error = reply["error"] or {}
        raise APIError(400, f"Cannot estimate this job: {error.get('message')}", param="model",
                       code="invalid_estimate")
    result = reply["estimate"]
    with _lock:
        _cache[key] = result
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return EstimateObject(**result)

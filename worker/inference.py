"""`studio.generate` (queue `inference`): run one chat or completion and stream it to Redis.

Contract with the API (`backend/services/inference.py` reads the same keys):

- The API sends kwargs `request_id, served ({id, base, adapter_path, adapter_key, artifact}), kind
  ("chat" | "completion"), messages | prompt, params ({max_tokens, temperature, top_p, stop, seed})`.
- `{prefix}:gen:{request_id}` — a Redis Stream; each entry has one field `event` = JSON:
  `{"type": "delta", "text"}` …, then `{"type": "done", "finish_reason", "usage"}` or
  `{"type": "error", "status", "code", "message"}` (`status` is the HTTP status the API answers with).
  The key expires 10 minutes after its last write.
- `{prefix}:inference:workers` — a sorted set: a worker consuming `inference` scores its hostname with
  Redis' clock every 5 s (the worker registry's heartbeat, `worker/registry.py`). Celery's ping is no
  liveness test here: a solo worker busy generating does not answer it, yet it is alive and will take
  the next request.

One `ModelCache` per worker process keeps bases loaded between requests.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from celery.signals import task_prerun, worker_ready

from . import events as ev
from . import registry
from .celery_app import app

log = logging.getLogger("studio.inference")
STREAM_TTL_SECONDS = 600
_cache = None
_started: dict[str, Any] = {}  # the early-imports thread


def gen_key(request_id: str, prefix: str | None = None) -> str:
    return f"{ev.key_prefix(prefix)}:gen:{request_id}"


def workers_key(prefix: str | None = None) -> str:
    return registry.queue_workers_key("inference", prefix)


def model_cache():
    """This process's cache (created on first use, so importing the module stays torch-free)."""
    global _cache
    if _cache is None:
        from .finetune.generate import ModelCache

        _cache = ModelCache()
    return _cache


@app.task(name="studio.generate", bind=True, acks_late=False, ignore_result=True)
def generate(self, request_id: str, served: dict, kind: str, params: dict,
             messages: list[dict] | None = None, prompt: str | None = None) -> dict[str, Any]:
    """Stream one answer's deltas to `{prefix}:gen:{request_id}`, then `done` or `error`."""
    redis = ev.connect(self.app.conf.broker_url)
    key = gen_key(request_id)
    try:
        done = _run(lambda event: _write(redis, key, event), served, kind, params, messages, prompt)
        return {"status": "done" if done else "error"}
    finally:
        redis.close()


def _run(write, served: dict, kind: str, params: dict, messages, prompt) -> bool:
    import torch

    from .finetune.generate import (
        Finished,
        GenerationError,
        SamplingParams,
        Served,
        stream_generate,
    )
    from .finetune.models import ModelError

    try:
        items = stream_generate(model_cache(), Served.from_dict(served),
                                messages=messages if kind == "chat" else None,
                                prompt=prompt if kind != "chat" else None, params=SamplingParams.from_dict(params))
        for item in items:
            if isinstance(item, Finished):
                write({"type": "done", "finish_reason": item.finish_reason, "usage": item.usage})
            else:
                write({"type": "delta", "text": item})
        return True
    except GenerationError as exc:
        write({"type": "error", "status": 400, "code": exc.code, "message": str(exc)})
    except ModelError as exc:
        write({"type": "error", "status": 503, "code": "model_unavailable", "message": str(exc)})
    except torch.OutOfMemoryError:
        write({"type": "error", "status": 503, "code": "out_of_memory",
               "message": "The inference worker ran out of memory; retry with a shorter prompt or max_tokens."})
    except Exception as exc:  # logged here; the caller gets a 500 without a traceback
        log.exception("generation failed")
        write({"type": "error", "status": 500, "code": "generation_error", "message": type(exc).__name__})
    return False


def _write(redis, key: str, event: dict[str, Any]) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.xadd(key, {"event": json.dumps(event)})
    pipe.expire(key, STREAM_TTL_SECONDS)
    pipe.execute()


# ---------------------------------------------------------------------------------------------------
# Start-up: liveness is the worker registry's heartbeat (`worker/registry.py`); imports are paid early


@worker_ready.connect
def _start_imports(sender=None, **_kwargs) -> None:
    if "inference" not in (sender.app.amqp.queues.consume_from or {}):
        return
    imports = threading.Thread(target=_import_early, name="studio-inference-imports", daemon=True)
    imports.start()
    _started["imports"] = imports


def _import_early() -> None:
    """torch + transformers take ~3 s to import (transformers' lazy modules import on first use, inside
    `from_pretrained`): pay that at start, not in the first request (measured: 2.0 s -> 0.15 s TTFT)."""
    try:
        import torch  # noqa: F401
        import transformers.generation.utils
        import transformers.modeling_utils
        import transformers.tokenization_utils_tokenizers  # noqa: F401
    except Exception:  # the first request will report it
        log.warning("early import failed", exc_info=True)


@task_prerun.connect
def _wait_for_imports(**_kwargs) -> None:
    """Every task here (estimates and merges too) waits for them: transformers' lazy modules are not safe
    to import from two threads at once (an ImportError, seen in tests)."""
    imports = _started.get("imports")
    if imports is not None:
        imports.join()

"""Chat and completions on an inference worker: send `studio.generate` by name, then read the answer back
from its Redis Stream (the contract is in `worker/inference.py`), whole or as OpenAI's SSE chunks.

The event loop never blocks: the stream is read with redis.asyncio's blocking XREAD and the task is
sent from a thread. Nothing is sent when no inference worker has beaten its heart in the last 15 s
(503 at once, rather than a request that hangs until the timeout).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from backend.api.errors import APIError
from backend.schemas.inference import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    SamplingRequest,
)
from backend.services.queue import JobQueue, QueueUnavailable
from backend.settings import Settings

GENERATE_TASK, INFERENCE_QUEUE = "studio.generate", "inference"
HEARTBEAT_FRESH_SECONDS = 15  # workers beat every 5 s
READ_BLOCK_SECONDS = 5
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def stream_key(prefix: str, request_id: str) -> str:
    return f"{prefix}:gen:{request_id}"


def workers_key(prefix: str) -> str:
    return f"{prefix}:inference:workers"


def parse(model: type[BaseModel], body: Any) -> Any:
    """The request, or 400 naming the first bad field (OpenAI answers 400, not 422, here)."""
    if not isinstance(body, dict):
        raise APIError(400, "The request body must be a JSON object, sent with Content-Type: application/json.",
                       code="invalid_request")
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".") or None
        if error["type"] == "missing":
            raise APIError(400, f"Missing required parameter: '{param}'.", param=param,
                           code="missing_required_parameter") from None
        reason = error["msg"].removeprefix("Value error, ")
        raise APIError(400, f"Invalid value for '{param}': {reason}.", param=param, code="invalid_value") from None
    if (param := _lone_surrogate(body)) is not None:
        raise APIError(400, f"Invalid value for '{param}': the text contains a lone UTF-16 surrogate (an unpaired "
                            "\\ud800-\\udfff escape), which no tokenizer takes; fix or remove that character.",
                       param=param, code="invalid_value")
    return parsed


def _lone_surrogate(body: dict) -> str | None:
    """The path of the first string (depth-first, in the body's order) that cannot be encoded as UTF-8:
    JSON lets `\\ud800` stand alone and the tokenizer then fails on the worker. Iterative, so a deep body
    cannot exhaust the stack."""
    pending: list[tuple[str, Any]] = [(key, value) for key, value in reversed(body.items())]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


@dataclass(frozen=True)
class Call:
    """One request as sent to the worker, and how its answer is shaped."""

    id: str
    kind: str  # chat | completion
    model: str
    created: int
    include_usage: bool

    def whole(self, text: str, done: dict[str, Any]) -> ChatCompletion | Completion:
        if self.kind == "chat":
            return ChatCompletion(id=self.id, created=self.created, model=self.model, usage=done["usage"],
                                  choices=[{"message": {"content": text}, "finish_reason": done["finish_reason"]}])
        return Completion(id=self.id, created=self.created, model=self.model, usage=done["usage"],
                          choices=[{"text": text, "finish_reason": done["finish_reason"]}])

    def chunk(self, text: str | None = None, finish_reason: str | None = None, *, role: bool = False) -> dict:
        if self.kind == "chat":
            delta = {**({"role": "assistant"} if role else {}), **({"content": text} if text is not None else {})}
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            return self._frame("chat.completion.chunk", [choice])
        choice = {"index": 0, "text": text or "", "finish_reason": finish_reason, "logprobs": None}
        return self._frame("text_completion", [choice])

    def usage_chunk(self, usage: dict[str, int]) -> dict:
        return {**self._frame("chat.completion.chunk" if self.kind == "chat" else "text_completion", []),
                "usage": usage}

    def _frame(self, object_: str, choices: list[dict]) -> dict:
        return {"id": self.id, "object": object_, "created": self.created, "model": self.model, "choices": choices}


async def answer(*, queue: JobQueue, settings: Settings, served: Any, request: SamplingRequest):
    """The whole answer (`ChatCompletion` / `Completion`), or a `StreamingResponse` when `stream` is set."""
    chat = isinstance(request, ChatCompletionRequest)
    call = Call(id=f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}", kind="chat" if chat else "completion",
                model=served.id, created=int(time.time()),
                include_usage=bool(request.stream_options and request.stream_options.include_usage))
    key = stream_key(queue.prefix, call.id)
    client = aioredis.Redis.from_url(settings.broker_url, decode_responses=True, socket_connect_timeout=3,
                                     socket_timeout=READ_BLOCK_SECONDS + 5)  # longer than a blocking XREAD
    owned = True
    try:
        await _require_worker(client, queue.prefix)
        await run_in_threadpool(_send, queue, call, served, request, settings)
        events = _read(client, key, time.monotonic() + settings.inference_timeout_seconds,
                       settings.inference_timeout_seconds)
        first = await anext(events)  # errors before the first token still get their own status
        if first["type"] == "error":
            raise _error(first)
        if request.stream:
            owned = False
            return StreamingResponse(_sse(call, first, events, client, key), media_type="text/event-stream",
                                     headers=SSE_HEADERS)
        text, done = await _collect(first, events)
        return call.whole(text, done)
    except redis.RedisError as exc:
        raise QueueUnavailable(str(exc)) from exc
    finally:
        if owned:
            await _close(client, key)


async def _require_worker(client: aioredis.Redis, prefix: str) -> None:
    now, _micro = await client.time()
    if not await client.zcount(workers_key(prefix), now - HEARTBEAT_FRESH_SECONDS, "+inf"):
        raise APIError(503, "No inference worker is running, so nothing can answer: start one with "
                            "`studio worker --queues inference` (`studio up` starts one).",
                       code="no_inference_worker")


def _send(queue: JobQueue, call: Call, served: Any, request: SamplingRequest, settings: Settings) -> None:
    cap = settings.inference_max_tokens
    asked = getattr(request, "max_completion_tokens", None) or request.max_tokens or cap
    params = {"max_tokens": min(asked, cap), "stop": request.stops(), "seed": request.seed,
              "temperature": 1.0 if request.temperature is None else request.temperature,
              "top_p": 1.0 if request.top_p is None else request.top_p}
    if call.kind == "chat":
        payload = {"messages": [m.model_dump() for m in request.messages]}
    else:
        payload = {"prompt": request.prompt}
    kwargs = {"request_id": call.id, "served": served.to_task(), "kind": call.kind, "params": params, **payload}
    try:  # expires: a request still queued when the API has given up is dropped, not run
        queue.celery.send_task(GENERATE_TASK, kwargs=kwargs, queue=INFERENCE_QUEUE, ignore_result=True,
                               expires=settings.inference_timeout_seconds)
    except Exception as exc:  # kombu's connection errors
        raise QueueUnavailable(str(exc)) from exc


async def _read(client: aioredis.Redis, key: str, deadline: float, timeout: float) -> AsyncIterator[dict]:
    """The worker's events, oldest first, up to `done` or `error`; 504 when the deadline passes first."""
    last = "0-0"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise APIError(504, f"The model did not answer within {timeout:g} s; the inference worker may be "
                                "busy or still loading the model. Retry later.", code="timeout")
        reply = await client.xread({key: last}, count=256, block=max(1, int(min(left, READ_BLOCK_SECONDS) * 1000)))
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                event = json.loads(fields["event"])
                yield event
                if event["type"] in ("done", "error"):
                    return


def _error(event: dict) -> APIError:
    return APIError(int(event.get("status") or 500), event.get("message") or "generation failed",
                    code=event.get("code"), param="model" if event.get("code") == "model_unavailable" else None)


async def _collect(first: dict, events: AsyncIterator[dict]) -> tuple[str, dict]:
    parts, event = [], first
    while True:
        if event["type"] == "done":
            return "".join(parts), event
        if event["type"] == "error":
            raise _error(event)
        parts.append(event["text"])
        event = await anext(events)


async def _sse(call: Call, first: dict, events: AsyncIterator[dict], client: aioredis.Redis,
               key: str) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk (chat), content chunks, a finish chunk, usage if asked, `[DONE]`.
    An error after the first chunk becomes a `data: {"error": …}` frame (the openai SDK raises it)."""
    try:
        if call.kind == "chat":
            yield _frame(call.chunk("", role=True))
        event = first
        while True:
            if event["type"] == "delta":
                yield _frame(call.chunk(event["text"]))
            elif event["type"] == "done":
                yield _frame(call.chunk(None if call.kind == "chat" else "", event["finish_reason"]))
                if call.include_usage:
                    yield _frame(call.usage_chunk(event["usage"]))
                yield "data: [DONE]\n\n"
                return
            else:
                raise _error(event)
            event = await anext(events)
    except APIError as exc:
        yield _frame({"error": {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}})
    except redis.RedisError:
        yield _frame({"error": {"message": "The job queue (Redis) could not be reached; retry later.",
                                "type": "server_error", "param": None, "code": "queue_unavailable"}})
    finally:
        await _close(client, key)


def _frame(data: dict) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _close(client: aioredis.Redis, key: str) -> None:
    try:
        await client.delete(key)  # read once; a stream nobody reads expires on its own
    except redis.RedisError:
        pass
    await client.aclose()


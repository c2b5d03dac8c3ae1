"""Tests for worker.finetune.data: reading, detection, validation, normalisation, stats."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys

import pytest

from worker.finetune.data import (
    STAGE_FORMATS,
    DataFormat,
    DataIssue,
    DataValidationError,
    char_stats,
    detect_file_format,
    detect_format,
    read_dataset,
    token_stats,
)
from worker.finetune.hashing import file_sha256

CHAT = {"messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Hi"},
                     {"role": "assistant", "content": "Hello!", "weight": 1, "extra": "dropped"}]}
PC = {"prompt": "2+2=", "completion": "4", "id": 7}
ALPACA = {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "You translate."}
TEXT = {"text": "Once upon a time."}
PREF = {"prompt": "Pick", "chosen": "good", "rejected": "bad"}
OPENAI_PREF = {"input": {"messages": [{"role": "user", "content": "Hi"}]},
               "preferred_output": [{"role": "assistant", "content": "Hello!"}],
               "non_preferred_output": [{"role": "assistant", "content": "Go away."}]}

EXPECTED = {
    DataFormat.CHAT: (CHAT, {"messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": "Hi"},
                                          {"role": "assistant", "content": "Hello!", "weight": 1}]}),
    DataFormat.PROMPT_COMPLETION: (PC, {"prompt": "2+2=", "completion": "4"}),
    DataFormat.ALPACA: (ALPACA, {"prompt": "Translate\n\nbonjour", "completion": "hello",
                                 "system": "You translate."}),
    DataFormat.TEXT: (TEXT, {"text": "Once upon a time."}),
    DataFormat.PREFERENCE: (PREF, {"prompt": "Pick", "chosen": "good", "rejected": "bad"}),
}


# ----------------------------------------------------------------------------- writers

def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_json(path, rows):
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def write_csv(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(keys)
        for r in rows:
            w.writerow([json.dumps(r[k]) if isinstance(r.get(k), (list, dict)) else r.get(k, "") for k in keys])
    return path


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


WRITERS = {"jsonl": write_jsonl, "json": write_json, "csv": write_csv, "parquet": write_parquet}


def first_issue(path, **kw) -> DataIssue:
    with pytest.raises(DataValidationError) as info:
        read_dataset(path, **kw)
    return info.value.issues[0]


# ----------------------------------------------------------------------------- detection + normalisation

@pytest.mark.parametrize("container", list(WRITERS))
@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_every_format_in_every_container(tmp_path, container, fmt):
    row, normalised = EXPECTED[fmt]
    path = WRITERS[container](tmp_path / f"train.{container}", [row, row])
    ds = read_dataset(path)
    assert ds.file_format == container
    assert ds.format is fmt
    assert ds.num_examples == 2
    expected_lines = [2, 3] if container == "csv" else [1, 2]
    assert [r.line for r in ds.records] == expected_lines
    assert ds.records[0].data == normalised
    assert ds.num_bytes == path.stat().st_size
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("container", ["jsonl", "json", "parquet"])
def test_openai_preference_shape(tmp_path, container):
    ds = read_dataset(WRITERS[container](tmp_path / f"p.{container}", [OPENAI_PREF]), stage="dpo")
    assert ds.format is DataFormat.PREFERENCE
    assert ds.records[0].data == {"prompt": [{"role": "user", "content": "Hi"}],
                                  "chosen": "Hello!", "rejected": "Go away."}


def test_alpaca_without_input_and_conversational_preference(tmp_path):
    ds = read_dataset(write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Say hi", "output": "hi"},
                                                         {"instruction": "Say hi", "input": None, "output": "hi"}]))
    assert [r.data for r in ds.records] == [{"prompt": "Say hi", "completion": "hi"}] * 2
    row = {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "A"}],
           "rejected": "B"}
    ds = read_dataset(write_jsonl(tmp_path / "p.jsonl", [row]))
    assert ds.records[0].data == {"prompt": [{"role": "user", "content": "Q"}], "chosen": "A", "rejected": "B"}


def test_detect_format_from_keys():
    assert detect_format({"messages": [], "text": "x"}) is DataFormat.CHAT
    assert detect_format({"prompt": "", "completion": "", "meta": 1}) is DataFormat.PROMPT_COMPLETION
    assert detect_format({"prompt": "", "chosen": "", "rejected": ""}) is DataFormat.PREFERENCE
    assert detect_format({"instruction": "", "output": ""}) is DataFormat.ALPACA
    assert detect_format({"text": "", "source": "web"}) is DataFormat.TEXT
    assert detect_format({"input": {}, "preferred_output": [], "non_preferred_output": []}) is DataFormat.PREFERENCE
    assert detect_format({"question": "", "answer": ""}) is None


def test_detect_file_format():
    assert detect_file_format("a.JSONL", b"") == "jsonl"
    assert detect_file_format("a.ndjson", b"") == "jsonl"
    assert detect_file_format("a.pq", b"") == "parquet"
    assert detect_file_format("data", b"PAR1....") == "parquet"
    assert detect_file_format("data.bin", b"  [{") == "json"
    assert detect_file_format("notes.md", b"# x") == "txt"
    assert detect_file_format("data", b"\xef\xbb\xbf{\"a\": 1}") == "jsonl"
    assert detect_file_format("data", b"prompt,completion\n") == "csv"


def test_sniffed_and_jsonl_in_json_extension(tmp_path):
    (tmp_path / "noext").write_text(json.dumps(TEXT) + "\n")
    assert read_dataset(tmp_path / "noext").file_format == "jsonl"
    path = write_jsonl(tmp_path / "lines.json", [TEXT, TEXT])
    ds = read_dataset(path)
    assert ds.file_format == "jsonl" and ds.num_examples == 2


def test_blank_lines_skipped_but_counted(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(TEXT) + "\n\n   \n" + json.dumps(TEXT) + "\n")
    assert [r.line for r in read_dataset(path).records] == [1, 4]


def test_stage_formats():
    assert STAGE_FORMATS["dpo"] == {DataFormat.PREFERENCE}
    assert DataFormat.ALPACA in STAGE_FORMATS["supervised"]


# ----------------------------------------------------------------------------- errors

def test_truncated_json_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(PC) + "\n" + json.dumps(PC) + "\n" + '{"prompt": "a", "completion": "b"\n')
    issue = first_issue(path)
    assert (issue.line, issue.field) == (3, None)
    assert "invalid JSON" in issue.message
    assert str(issue).startswith("line 3: invalid JSON (Expecting ',' delimiter")



def test_unterminated_string_names_its_column_once(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(PC) + "\n" + '{"prompt": "a", "completion": "b}\n')
    issue = first_issue(path)
    assert issue.line == 2
    assert "invalid JSON (Unterminated string starting at column 31)" in issue.message, issue.message
    assert "at at" not in issue.message

def test_unknown_role(tmp_path):
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}
    with pytest.raises(DataValidationError) as info:
        read_dataset(write_jsonl(tmp_path / "c.jsonl", [CHAT, bad]))
    issue = info.value.issues[0]
    assert (issue.line, issue.field) == (2, "messages[1].role")
    assert "unknown role 'bot'; expected one of system, user, assistant, tool" in issue.message
    assert str(info.value).startswith("training file is invalid: line 2, field 'messages[1].role': unknown role")


def test_missing_assistant_turn(tmp_path):
    bad = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                        {"role": "user", "content": "Bye"}]}
    issue = first_issue(write_jsonl(tmp_path / "c.jsonl", [bad]))
    assert (issue.line, issue.field) == (1, "messages")
    assert "missing assistant turn" in issue.message


def test_chat_structure_errors(tmp_path):
    rows = [{"messages": []},
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"},
                          {"role": "assistant", "content": "b"}]},
            {"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "b"}]}]
    with pytest.raises(DataValidationError) as info:
        read_dataset(write_jsonl(tmp_path / "c.jsonl", rows))
    got = [(i.line, i.field) for i in info.value.issues]
    assert got == [(1, "messages"), (2, "messages[1].role"), (3, "messages[0].content")]


def test_missing_csv_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,id\nhello,1\n")
    issue = first_issue(path)
    assert (issue.line, issue.field) == (1, "completion")
    assert "prompt, id" in issue.message


def test_empty_csv_cell(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("prompt,completion\nhello,world\nhi,\n")
    issue = first_issue(path)
    assert (issue.line, issue.field) == (3, "completion")
    assert "empty" in issue.message


def test_csv_multiline_cell_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('prompt,completion\n"multi\nline",ok\nhi,\n')
    issue = first_issue(path)
    assert (issue.line, issue.field) == (4, "completion")


def test_mixed_formats(tmp_path):
    issue = first_issue(write_jsonl(tmp_path / "m.jsonl", [CHAT, ALPACA]))
    assert (issue.line, issue.field) == (2, None)
    assert "row looks like 'alpaca' but the file's first row is 'chat'; use one format per file" in issue.message


@pytest.mark.parametrize("content", [b"", b"  \n\n", b"[]", b"prompt,completion\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / ("e.json" if content == b"[]" else "e.csv" if b"," in content else "e.jsonl")
    path.write_bytes(content)
    issue = first_issue(path)
    assert issue.line is None and issue.message.startswith("file is empty")


def test_non_utf8(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(json.dumps(TEXT).encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    issue = first_issue(path)
    assert issue.line == 2 and "UTF-8" in issue.message


def test_non_string_field(tmp_path):
    issue = first_issue(write_jsonl(tmp_path / "n.jsonl", [PC, {"prompt": "x", "completion": 4}]))
    assert (issue.line, issue.field) == (2, "completion")
    assert str(issue) == "line 2, field 'completion': must be a string, got number"


def test_row_numbering_for_json_and_parquet(tmp_path):
    rows = [PC, PC, {"prompt": "x", "completion": None}]
    for container in ("json", "parquet"):
        issue = first_issue(WRITERS[container](tmp_path / f"r.{container}", rows))
        assert (issue.line, issue.field) == (3, "completion")
        assert str(issue).startswith("row 3, field 'completion'")


def test_unknown_shape_and_non_object(tmp_path):
    issue = first_issue(write_jsonl(tmp_path / "u.jsonl", [{"q_text": "q", "a_text": "a"}]))
    assert issue.line == 1 and "accepted formats" in issue.message
    issue = first_issue(write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q"}]))
    assert issue.field == "completion"
    issue = first_issue(write_jsonl(tmp_path / "l.jsonl", [TEXT, [1, 2]]))
    assert issue.line == 2 and "got array" in issue.message


def test_preference_errors(tmp_path):
    rows = [{"prompt": "p", "chosen": "same", "rejected": "same"}, {"prompt": "p", "chosen": "", "rejected": "r"}]
    with pytest.raises(DataValidationError) as info:
        read_dataset(write_jsonl(tmp_path / "p.jsonl", rows))
    assert [(i.line, i.field) for i in info.value.issues] == [(1, "rejected"), (2, "chosen")]


def test_stage_mismatch(tmp_path):
    issue = first_issue(write_jsonl(tmp_path / "c.jsonl", [CHAT]), stage="dpo")
    assert issue.message == ("training file has format 'chat' but stage 'dpo' needs "
                             "preference rows with prompt/chosen/rejected")
    assert read_dataset(tmp_path / "c.jsonl", stage="supervised").format is DataFormat.CHAT
    with pytest.raises(ValueError):
        read_dataset(tmp_path / "c.jsonl", stage="nope")


def test_max_errors_cap(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"text": ""}] * 10)
    with pytest.raises(DataValidationError) as info:
        read_dataset(path, max_errors=3)
    err = info.value
    assert [i.line for i in err.issues] == [1, 2, 3]
    assert err.total == 10
    assert str(err).endswith("(and 9 more problems)")


# ----------------------------------------------------------------------------- stats + hashing

def test_token_stats_known_list():
    lengths = list(range(1, 101))  # 1..100
    s = token_stats(lengths, bins=10)
    assert (s["count"], s["total"], s["min"], s["max"]) == (100, 5050, 1, 100)
    assert s["mean"] == pytest.approx(50.5)
    assert (s["p50"], s["p95"]) == (50, 95)
    assert s["histogram"]["edges"] == [1 + 10 * i for i in range(11)]
    assert s["histogram"]["counts"] == [10] * 10
    assert sum(token_stats([5, 5, 7, 300, 12], bins=20)["histogram"]["counts"]) == 5
    single = token_stats([42])
    assert (single["p50"], single["p95"], len(single["histogram"]["edges"])) == (42, 42, 21)


def test_token_stats_empty():
    s = token_stats([])
    assert s["count"] == 0 and s["total"] == 0 and s["mean"] == 0.0
    assert s["histogram"] == {"edges": [], "counts": []}


def test_char_stats(tmp_path):
    ds = read_dataset(write_jsonl(tmp_path / "pc.jsonl", [{"prompt": "ab", "completion": "cde"},
                                                          {"prompt": "a", "completion": "b"}]))
    s = char_stats(ds)
    assert (s["count"], s["total"], s["max"], s["min"]) == (2, 7, 5, 2)


def test_file_sha256(tmp_path):
    """Larger than one read block, so the blocks are chained."""
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello" * 300_000)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_import_without_torch():
    code = ("import sys, worker.finetune.data; "
            "bad = [m for m in ('torch', 'transformers', 'datasets', 'pandas', 'pyarrow') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------- issue 9: streaming, caps, mappings

def rss_growth_of(code: str) -> tuple[int, str]:
    """Run `code` in a fresh interpreter; (peak RSS growth in MiB over the imports, its stdout)."""
    script = ("import resource, sys, worker.finetune.data as d, pyarrow.parquet, ijson\n"
              "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              f"{code}\n"
              "print('GROWTH', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    growth = int(out.stdout.rsplit("GROWTH", 1)[1])
    return growth, out.stdout


def write_parquet_bomb(path, rows=250_000, width=2800):
    """Dictionary + zstd: one long value repeated, ~160 KB on disk, ~1.4 GB of text once decoded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    index = pa.array([0] * rows)
    table = pa.table({"prompt": pa.array(["p" * width]).take(index), "completion": pa.array(["c" * width]).take(index)})
    pq.write_table(table, path, compression="zstd", use_dictionary=True)
    return path


def test_parquet_decompression_bomb_is_refused_with_bounded_memory(tmp_path):
    path = write_parquet_bomb(tmp_path / "bomb.parquet")
    assert path.stat().st_size < 400_000
    code = (f"try:\n    d.read_dataset({str(path)!r})\n    print('ACCEPTED')\n"
            "except d.DataLimitError as e:\n    print('REFUSED', e.limit, e)\n")
    growth, out = rss_growth_of(code)
    print(f"bomb: peak RSS growth {growth} MiB; {out.strip()}")
    assert "REFUSED max_dataset_chars" in out and "characters" in out
    assert growth < 300  # the decoded text is ~1.4 GB


def test_large_jsonl_scans_with_bounded_memory(tmp_path):
    path = tmp_path / "big.jsonl"
    row = json.dumps({"prompt": "q" * 300, "completion": "a" * 700}) + "\n"
    with open(path, "w") as fh:
        fh.writelines(row for _ in range(60_000))  # ~60 MB
    growth, out = rss_growth_of(f"s = d.scan_dataset({str(path)!r}); print('N', s.num_examples)")
    print(f"60 MB JSONL: peak RSS growth {growth} MiB")
    assert "N 60000" in out
    assert growth < 150


def test_row_cap_names_the_limit(tmp_path):
    from worker.finetune.data import DataLimitError, DataLimits

    path = write_jsonl(tmp_path / "t.jsonl", [TEXT] * 5)
    with pytest.raises(DataLimitError) as info:
        read_dataset(path, limits=DataLimits(max_rows=3))
    assert info.value.limit == "max_dataset_rows" and "3" in str(info.value)


def test_long_line_is_refused_naming_the_line(tmp_path):
    from worker.finetune.data import DataLimits

    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(TEXT) + "\n" + json.dumps({"text": "x" * 5000}) + "\n")
    with pytest.raises(DataValidationError) as info:
        read_dataset(path, limits=DataLimits(max_row_bytes=1000))
    assert info.value.issues[0].line == 2 and "1000" in info.value.issues[0].message


def test_json_array_of_brackets_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000)
    issue = first_issue(path)
    assert issue.line == 1 and "nested" in issue.message


def test_deeply_nested_jsonl_line_is_a_clear_error(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text(json.dumps(TEXT) + "\n" + '{"text": ' + "[" * 100_000 + "\n")
    issue = first_issue(path)
    assert issue.line == 2 and "nested" in issue.message


def test_json_array_streams_and_reports_bad_json(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('[{"prompt": "a", "completion": "b"}, {"prompt": "a", "completion": ')
    issue = first_issue(path)
    assert issue.line == 2 and "invalid JSON" in issue.message


SHAREGPT = {"system": "Be kind.",
            "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"},
                              {"from": "human", "value": "Weather?"}, {"from": "function_call", "value": "{\"f\": 1}"},
                              {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]}


@pytest.mark.parametrize("container", ["jsonl", "json", "parquet"])
def test_sharegpt_is_read_as_chat(tmp_path, container):
    ds = read_dataset(WRITERS[container](tmp_path / f"s.{container}", [SHAREGPT]), stage="supervised")
    assert ds.format is DataFormat.CHAT and ds.column_mapping == {"messages": "conversations"}
    assert ds.records[0].data["messages"] == [
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "{\"f\": 1}"}, {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."}]


def test_sharegpt_unknown_role_names_the_turn(tmp_path):
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "Yo"}]}
    issue = first_issue(write_jsonl(tmp_path / "s.jsonl", [row]))
    assert (issue.line, issue.field) == (1, "conversations[1].from") and "human, gpt" in issue.message


@pytest.mark.parametrize("keys, fmt, mapping", [
    (("question", "answer"), DataFormat.PROMPT_COMPLETION, {"prompt": "question", "completion": "answer"}),
    (("query", "response"), DataFormat.PROMPT_COMPLETION, {"prompt": "query", "completion": "response"}),
    (("input", "output"), DataFormat.PROMPT_COMPLETION, {"prompt": "input", "completion": "output"}),
    (("instruction", "response"), DataFormat.ALPACA, {"output": "response"}),
    (("content",), DataFormat.TEXT, {"text": "content"}),
])
@pytest.mark.parametrize("container", ["jsonl", "csv"])
def test_common_column_names_are_detected(tmp_path, keys, fmt, mapping, container):
    row = {k: f"v-{k}" for k in keys}
    ds = read_dataset(WRITERS[container](tmp_path / f"q.{container}", [row]))
    assert ds.format is fmt and ds.column_mapping == mapping
    assert f"v-{keys[-1]}" in json.dumps(ds.records[0].data)


def test_explicit_column_mapping_and_sidecar(tmp_path):
    from worker.finetune.data import mapping_sidecar, write_mapping_sidecar

    rows = [{"q_text": "2+2?", "a_text": "4", "id": 1}]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    issue = first_issue(path)
    assert "accepted formats" in issue.message
    mapping = {"prompt": "q_text", "completion": "a_text"}
    ds = read_dataset(path, column_mapping=mapping)
    assert ds.format is DataFormat.PROMPT_COMPLETION and ds.records[0].data == {"prompt": "2+2?", "completion": "4"}
    assert ds.column_mapping == mapping
    # what the worker sees: the mapping stored beside the file
    write_mapping_sidecar(path, mapping)
    assert mapping_sidecar(path).is_file()
    assert read_dataset(path, stage="supervised").records[0].data == {"prompt": "2+2?", "completion": "4"}


def test_explicit_mapping_naming_a_missing_column(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"q": "a", "a": "b"}])
    issue = first_issue(path, column_mapping={"prompt": "q", "completion": "answer"})
    assert issue.field == "answer" and "completion" in issue.message


def test_bad_mapping_is_refused():
    from worker.finetune.data import parse_column_mapping

    assert parse_column_mapping('{"prompt": "q", "completion": "a"}') == {"prompt": "q", "completion": "a"}
    for bad in ("[1]", '{"nope": "q"}', '{"prompt": 3}', "{", '{"prompt": "a", "completion": "a"}'):
        with pytest.raises(ValueError):
            parse_column_mapping(bad)


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_plain_text_is_split_on_blank_lines(tmp_path, suffix):
    path = tmp_path / f"book{suffix}"
    path.write_text("# Title\n\nFirst paragraph,\nstill first.\n\n\n  \nSecond one.\n", encoding="utf-8")
    ds = read_dataset(path, stage="pretraining")
    assert ds.format is DataFormat.TEXT and ds.file_format == "txt"
    assert [(r.line, r.data["text"]) for r in ds.records] == [
        (1, "# Title"), (3, "First paragraph,\nstill first."), (8, "Second one.")]


def test_scan_counts_without_keeping_rows(tmp_path):
    path = write_jsonl(tmp_path / "pc.jsonl", [PC, PC, PC])
    seen = []
    summary = __import__("worker.finetune.data", fromlist=["scan_dataset"]).scan_dataset(
        path, on_example=lambda data: seen.append(data))
    assert summary.num_examples == 3 and summary.format is DataFormat.PROMPT_COMPLETION and len(seen) == 3
    assert summary.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_sharegpt_rows_tokenize_for_training(tmp_path):
    """Function calls and observations reach the chat template as assistant and tool turns."""
    from worker.finetune.batching import tokenize_dataset
    from worker.finetune.models import build_demo_tokenizer

    dataset = read_dataset(write_jsonl(tmp_path / "s.jsonl", [SHAREGPT]), stage="supervised")
    tokens = tokenize_dataset(dataset, build_demo_tokenizer(), max_seq_length=256)
    assert len(tokens.examples) == 1 and any(label != -100 for label in tokens.examples[0]["labels"])

"""Reading, format detection, validation and normalisation of training datasets.

Files may be JSONL (``.jsonl``/``.ndjson``), JSON (an array of objects; a ``.json`` file holding
one object per line is read as JSONL), CSV (with a header) or Parquet. Every row is validated and
normalised so that later stages (tokenisation, chat templates, packing) see one shape per format:

* ``CHAT``: ``{"messages": [{"role": ..., "content": str, "weight"?: 0|1}, ...]}`` -- roles are
  system/user/assistant/tool, other message keys are dropped, ``weight`` is kept on assistant
  messages when present (OpenAI fine-tuning format).
* ``PROMPT_COMPLETION``: ``{"prompt": str, "completion": str}``.
* ``ALPACA``: ``{"prompt": instruction + "\\n\\n" + input (if any), "completion": output}`` plus
  ``"system"`` when the row has one. ``LoadedDataset.format`` stays ``ALPACA``.
* ``TEXT``: ``{"text": str}``.
* ``PREFERENCE``: ``{"prompt": str | list[message], "chosen": str, "rejected": str}``. ``prompt``
  is a string for ``{"prompt", "chosen", "rejected"}`` rows and a list of chat messages for
  conversational rows: a ``prompt`` given as a message list, or OpenAI's DPO shape
  ``{"input": {"messages": [...]}, "preferred_output": [{"role": "assistant", "content": ...}],
  "non_preferred_output": [...]}``. ``chosen``/``rejected`` are always the assistant's text.

This module must stay importable without torch/transformers: pyarrow is imported lazily (Parquet
only); JSON and CSV use the standard library.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator, Sequence


class DataFormat(str, Enum):
    CHAT = "chat"
    PROMPT_COMPLETION = "prompt_completion"
    ALPACA = "alpaca"
    TEXT = "text"
    PREFERENCE = "preference"


STAGE_FORMATS: dict[str, frozenset[DataFormat]] = {
    "supervised": frozenset({DataFormat.CHAT, DataFormat.PROMPT_COMPLETION, DataFormat.ALPACA}),
    "pretraining": frozenset({DataFormat.TEXT}),
    "dpo": frozenset({DataFormat.PREFERENCE}),
}

_STAGE_NEEDS = {
    "supervised": "chat, prompt_completion or alpaca rows",
    "pretraining": "text rows with a 'text' field",
    "dpo": "preference rows with prompt/chosen/rejected",
}

# Keys that identify each format (optional keys in the description only).
_FORMAT_KEYS: dict[DataFormat, tuple[str, ...]] = {
    DataFormat.CHAT: ("messages",),
    DataFormat.PREFERENCE: ("prompt", "chosen", "rejected"),
    DataFormat.PROMPT_COMPLETION: ("prompt", "completion"),
    DataFormat.ALPACA: ("instruction", "output"),
    DataFormat.TEXT: ("text",),
}
_OPENAI_PREF_KEYS = ("input", "preferred_output", "non_preferred_output")
_ACCEPTED = (
    "chat {messages}, prompt_completion {prompt, completion}, alpaca {instruction, input?, output}, "
    "text {text}, preference {prompt, chosen, rejected} or {input, preferred_output, non_preferred_output}"
)
ROLES = ("system", "user", "assistant", "tool")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
               ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class DataIssue:
    """One problem in a training file. ``unit`` is "line" (JSONL, CSV) or "row" (JSON array, Parquet)."""

    line: int | None
    field: str | None
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        parts = []
        if self.line is not None:
            parts.append(f"{self.unit} {self.line}")
        if self.field:
            parts.append(f"field '{self.field}'")
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class DataValidationError(ValueError):
    """The training file is invalid. ``issues`` holds the first problems in file order;
    ``total`` counts all problems found (it can exceed ``len(issues)``)."""

    def __init__(self, issues: list[DataIssue], total: int | None = None):
        self.issues = list(issues)
        self.total = max(total or 0, len(self.issues))
        more = self.total - 1
        suffix = f" (and {more} more problem{'s' if more != 1 else ''})" if more > 0 else ""
        first = str(self.issues[0]) if self.issues else "unknown problem"
        super().__init__(f"training file is invalid: {first}{suffix}")


@dataclass
class DatasetRecord:
    line: int
    data: dict


@dataclass
class LoadedDataset:
    path: str
    file_format: str
    format: DataFormat
    records: list[DatasetRecord]
    sha256: str
    num_bytes: int

    @property
    def num_examples(self) -> int:
        return len(self.records)


# ----------------------------------------------------------------------------- detection

def detect_file_format(path: str | os.PathLike, head: bytes) -> str:
    """Container format from the extension, or by sniffing ``head`` when the extension is unknown."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "jsonl"
    return "csv"


def detect_format(row: dict) -> DataFormat | None:
    """Dataset format from the keys of one row (extra keys are ignored), or None."""
    keys = set(row)
    if "messages" in keys:
        return DataFormat.CHAT
    if {"preferred_output", "non_preferred_output"} <= keys:
        return DataFormat.PREFERENCE
    for fmt in (DataFormat.PREFERENCE, DataFormat.PROMPT_COMPLETION, DataFormat.ALPACA, DataFormat.TEXT):
        if set(_FORMAT_KEYS[fmt]) <= keys:
            return fmt
    return None


def _unknown_shape(keys: Sequence[str], what: str = "field") -> tuple[str | None, str]:
    """(missing field, message) for a row that matches no format; names the nearest format."""
    present = ", ".join(keys) or "none"
    best, best_overlap = None, 0
    # On ties the earlier (more common) format wins: {"prompt"} is a prompt_completion row missing "completion".
    candidates = [(f, _FORMAT_KEYS[f]) for f in (DataFormat.CHAT, DataFormat.PROMPT_COMPLETION, DataFormat.ALPACA,
                                                  DataFormat.TEXT, DataFormat.PREFERENCE)]
    for fmt, required in (*candidates, (DataFormat.PREFERENCE, _OPENAI_PREF_KEYS)):
        overlap = len(set(required) & set(keys))
        if overlap > best_overlap:
            best, best_overlap = (fmt, required), overlap
    if best is not None:
        fmt, required = best
        missing = [k for k in required if k not in keys]
        return missing[0], (f"missing {what} '{missing[0]}' ({what}s present: {present}); "
                            f"{fmt.value} rows need {', '.join(required)}")
    return None, f"row matches no known format ({what}s present: {present}); accepted formats: {_ACCEPTED}"


# ----------------------------------------------------------------------------- reading

def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Issues:
    """Collects the first ``cap`` issues and counts all of them."""

    def __init__(self, cap: int):
        self.cap, self.items, self.total = max(1, cap), [], 0

    def add(self, line: int | None, field_: str | None, message: str, unit: str = "line") -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(DataIssue(line, field_, message, unit))

    def raise_if_any(self) -> None:
        if self.items:
            raise DataValidationError(self.items, self.total)


def _decode(raw: bytes, issues: _Issues) -> str | None:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        issues.add(line, None, f"file is not valid UTF-8 (byte offset {e.start}: {e.reason}); "
                               "save it as UTF-8")
        return None


def _json_error(e: json.JSONDecodeError, last: bool) -> str:
    hint = "; the file may be truncated" if last else ""
    return f"invalid JSON ({e.msg} at column {e.colno}){hint}"


def _iter_jsonl(text: str, issues: _Issues) -> Iterator[tuple[int, Any]]:
    lines = text.split("\n")
    last = max((i for i, s in enumerate(lines) if s.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield i + 1, json.loads(line)
        except json.JSONDecodeError as e:
            issues.add(i + 1, None, _json_error(e, i == last))


def _iter_json(text: str, issues: _Issues) -> Iterator[tuple[int, Any]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        issues.add(e.lineno, None, f"invalid JSON ({e.msg} at column {e.colno})")
        return
    if not isinstance(doc, list):
        issues.add(None, None, f"expected a JSON array of objects, got {_type_name(doc)}; "
                               "for one object per line use a .jsonl file")
        return
    yield from enumerate(doc, start=1)


def _iter_csv(text: str, issues: _Issues) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as e:
        issues.add(1, None, f"invalid CSV ({e})")
        return
    header = [h.strip() for h in header]
    if detect_format(dict.fromkeys(header)) is None:
        missing, msg = _unknown_shape(header, "column")
        issues.add(1, missing, msg + ("" if missing else "; the first line must be a header naming the columns"))
        return
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            issues.add(start, None, f"invalid CSV ({e})")
            return
        line, start = start, reader.line_num + 1
        if not cells or cells == [""]:
            continue
        if len(cells) != len(header):
            issues.add(line, None, f"row has {len(cells)} cells but the header has {len(header)} columns")
            continue
        row = dict(zip(header, cells))
        # Structured columns (chat messages, OpenAI preference shape) hold JSON text in CSV.
        structured = ["messages", "preferred_output", "non_preferred_output"]
        if "preferred_output" in row:
            structured.append("input")
        for key in structured:
            if isinstance(row.get(key), str) and row[key].strip():
                try:
                    row[key] = json.loads(row[key])
                except json.JSONDecodeError as e:
                    issues.add(line, key, f"column holds invalid JSON ({e.msg} at column {e.colno})")
                    row = None
                    break
        if row is not None:
            yield line, row


def _iter_parquet(raw: bytes, issues: _Issues) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(raw))
    except Exception as e:  # pyarrow raises several error types for corrupt files
        issues.add(None, None, f"cannot read Parquet file ({e})")
        return
    yield from enumerate(table.to_pylist(), start=1)


# ----------------------------------------------------------------------------- validation

def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


class _Row:
    """Validation helpers for one row; each failure is recorded on ``issues``."""

    def __init__(self, line: int, unit: str, issues: _Issues):
        self.line, self.unit, self.issues, self.ok = line, unit, issues, True

    def fail(self, field_: str | None, message: str) -> None:
        self.ok = False
        self.issues.add(self.line, field_, message, self.unit)

    def string(self, value: Any, name: str, *, required: bool = True) -> str:
        if value is None and not required:
            return ""
        if value is None:
            self.fail(name, "is missing or null; it must be a non-empty string")
            return ""
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {_type_name(value)}")
            return ""
        if required and not value.strip():
            self.fail(name, "is empty; it must be a non-empty string")
        return value

    def messages(self, value: Any, name: str, *, final_assistant: bool = True) -> list[dict]:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _type_name(value)
            self.fail(name, f"must be a non-empty list of messages, got {got}")
            return []
        out = []
        for i, msg in enumerate(value):
            where = f"{name}[{i}]"
            if not isinstance(msg, dict):
                self.fail(where, f"each message must be an object with role and content, got {_type_name(msg)}")
                continue
            role = msg.get("role")
            if role not in ROLES:
                self.fail(f"{where}.role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
            elif role == "system" and i > 0:
                self.fail(f"{where}.role", "a system message is only allowed as the first message")
            content = msg.get("content")
            if not isinstance(content, str):
                self.fail(f"{where}.content", f"must be a string, got {_type_name(content)}")
                content = ""
            norm = {"role": role, "content": content}
            if "weight" in msg and msg["weight"] is not None:
                if msg["weight"] not in (0, 1) or isinstance(msg["weight"], bool):
                    self.fail(f"{where}.weight", f"weight must be 0 or 1, got {msg['weight']!r}")
                elif role != "assistant":
                    self.fail(f"{where}.weight", "weight is only allowed on assistant messages")
                else:
                    norm["weight"] = int(msg["weight"])
            out.append(norm)
        if final_assistant and out and len(out) == len(value):
            if out[-1]["role"] != "assistant":
                self.fail(name, "missing assistant turn: the last message must be from the assistant")
            elif not out[-1]["content"].strip():
                self.fail(f"{name}[{len(out) - 1}].content", "the last assistant message is empty")
        return out

    def assistant_text(self, value: Any, name: str) -> str:
        """A preference answer: a string, or a list holding one assistant message."""
        if isinstance(value, list):
            msgs = self.messages(value, name)
            if len(msgs) != 1:
                self.fail(name, f"must hold exactly one assistant message, got {len(msgs)}")
                return ""
            return msgs[0]["content"]
        return self.string(value, name)


def _normalise(fmt: DataFormat, row: dict, r: _Row) -> dict:
    if fmt is DataFormat.CHAT:
        return {"messages": r.messages(row.get("messages"), "messages")}
    if fmt is DataFormat.PROMPT_COMPLETION:
        return {"prompt": r.string(row.get("prompt"), "prompt"),
                "completion": r.string(row.get("completion"), "completion")}
    if fmt is DataFormat.ALPACA:
        instruction = r.string(row.get("instruction"), "instruction")
        extra = r.string(row.get("input"), "input", required=False)
        out = {"prompt": instruction + ("\n\n" + extra if extra.strip() else ""),
               "completion": r.string(row.get("output"), "output")}
        if row.get("system") not in (None, ""):
            out["system"] = r.string(row["system"], "system")
        return out
    if fmt is DataFormat.TEXT:
        return {"text": r.string(row.get("text"), "text")}
    # PREFERENCE
    if "preferred_output" in row:
        inp = row.get("input")
        if not isinstance(inp, dict):
            r.fail("input", f"must be an object with a 'messages' list, got {_type_name(inp)}")
            prompt: Any = []
        else:
            prompt = r.messages(inp.get("messages"), "input.messages", final_assistant=False)
        chosen = r.assistant_text(row.get("preferred_output"), "preferred_output")
        rejected = r.assistant_text(row.get("non_preferred_output"), "non_preferred_output")
        names = ("preferred_output", "non_preferred_output")
    else:
        raw = row.get("prompt")
        if isinstance(raw, list):
            prompt = r.messages(raw, "prompt", final_assistant=False)
        else:
            prompt = r.string(raw, "prompt")
        chosen = r.assistant_text(row.get("chosen"), "chosen")
        rejected = r.assistant_text(row.get("rejected"), "rejected")
        names = ("chosen", "rejected")
    if r.ok and chosen == rejected:
        r.fail(names[1], f"'{names[0]}' and '{names[1]}' are identical; a preference pair needs two different answers")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def read_dataset(path: str | os.PathLike, *, stage: str | None = None, max_errors: int = 20) -> LoadedDataset:
    """Read, detect, validate and normalise a training file.

    Raises DataValidationError with the first ``max_errors`` problems (in file order) if any row is
    invalid, or when ``stage`` is given and the file's format does not fit it.
    """
    if stage is not None and stage not in STAGE_FORMATS:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGE_FORMATS)}")
    raw = open(path, "rb").read()
    file_format = detect_file_format(path, raw[:64])
    issues = _Issues(max_errors)
    unit = "line"
    if not raw.strip():
        issues.add(None, None, "file is empty")
        issues.raise_if_any()
    if file_format == "parquet":
        rows, unit = _iter_parquet(raw, issues), "row"
    else:
        text = _decode(raw, issues)
        issues.raise_if_any()
        if file_format == "json" and not text.lstrip().startswith("["):
            file_format = "jsonl"  # a .json file holding one object per line
        if file_format == "json":
            rows, unit = _iter_json(text, issues), "row"
        elif file_format == "jsonl":
            rows = _iter_jsonl(text, issues)
        else:
            rows = _iter_csv(text, issues)

    fmt: DataFormat | None = None
    records: list[DatasetRecord] = []
    for line, row in rows:
        r = _Row(line, unit, issues)
        if not isinstance(row, dict):
            r.fail(None, f"expected a JSON object, got {_type_name(row)}")
            continue
        row_fmt = detect_format(row)
        if row_fmt is None:
            missing, msg = _unknown_shape(list(row))
            r.fail(missing, msg)
            continue
        if fmt is None:
            fmt = row_fmt
            if stage is not None and fmt not in STAGE_FORMATS[stage]:
                raise DataValidationError([DataIssue(None, None, (
                    f"training file has format '{fmt.value}' but stage '{stage}' needs {_STAGE_NEEDS[stage]}"))])
        elif row_fmt is not fmt:
            r.fail(None, f"row looks like '{row_fmt.value}' but the file's first row is '{fmt.value}'; "
                         "use one format per file")
            continue
        data = _normalise(fmt, row, r)
        if r.ok:
            records.append(DatasetRecord(line, data))
    issues.raise_if_any()
    if fmt is None or not records:
        raise DataValidationError([DataIssue(None, None, "file is empty (no data rows found)")])
    return LoadedDataset(path=os.fspath(path), file_format=file_format, format=fmt, records=records,
                         sha256=hashlib.sha256(raw).hexdigest(), num_bytes=len(raw))


# ----------------------------------------------------------------------------- stats

def _percentile(sorted_values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return int(sorted_values[rank - 1])


def token_stats(lengths: Sequence[int], *, bins: int = 20) -> dict:
    """Summary of per-example lengths. Percentiles use the nearest-rank method; the histogram has
    ``bins`` equal integer-width bins starting at the minimum (the last bin includes its right edge)."""
    values = sorted(int(v) for v in lengths)
    if not values:
        return {"count": 0, "total": 0, "mean": 0.0, "p50": 0, "p95": 0, "max": 0, "min": 0,
                "histogram": {"edges": [], "counts": []}}
    bins = max(1, bins)
    lo, hi = values[0], values[-1]
    width = max(1, math.ceil((hi - lo + 1) / bins))
    counts = [0] * bins
    for v in values:
        counts[min((v - lo) // width, bins - 1)] += 1
    total = sum(values)
    return {"count": len(values), "total": total, "mean": total / len(values),
            "p50": _percentile(values, 50), "p95": _percentile(values, 95), "max": hi, "min": lo,
            "histogram": {"edges": [lo + i * width for i in range(bins + 1)], "counts": counts}}


def _chars(data: dict) -> int:
    if "messages" in data:
        return sum(len(m["content"]) for m in data["messages"])
    if "text" in data:
        return len(data["text"])
    if "chosen" in data:  # preference: the longer of the two sequences the model sees
        prompt = data["prompt"]
        p = len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)
        return p + max(len(data["chosen"]), len(data["rejected"]))
    return len(data.get("system", "")) + len(data["prompt"]) + len(data["completion"])


def char_stats(dataset: LoadedDataset) -> dict:
    """Tokenizer-free length stats (characters per example), same shape as token_stats."""
    return token_stats([_chars(rec.data) for rec in dataset.records])

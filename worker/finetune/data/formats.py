"""Dataset formats, their identifying keys, and column mappings (detected or given by the user).

A *column mapping* renames a file's columns to the studio's canonical field names before detection:
``{"prompt": "question", "completion": "answer"}`` reads ``question`` as ``prompt``. Common names
(LLaMA-Factory's, Axolotl's and Hugging Face datasets' usual columns) are detected without one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any


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

STAGE_NEEDS = {
    "supervised": "chat, prompt_completion or alpaca rows",
    "pretraining": "text rows with a 'text' field",
    "dpo": "preference rows with prompt/chosen/rejected",
}

# Keys that identify each format (optional keys in the description only).
FORMAT_KEYS: dict[DataFormat, tuple[str, ...]] = {
    DataFormat.CHAT: ("messages",),
    DataFormat.PREFERENCE: ("prompt", "chosen", "rejected"),
    DataFormat.PROMPT_COMPLETION: ("prompt", "completion"),
    DataFormat.ALPACA: ("instruction", "output"),
    DataFormat.TEXT: ("text",),
}
OPENAI_PREF_KEYS = ("input", "preferred_output", "non_preferred_output")
ACCEPTED = (
    "chat {messages} (or ShareGPT {conversations: [{from, value}]}), prompt_completion {prompt, completion}, "
    "alpaca {instruction, input?, output}, text {text}, preference {prompt, chosen, rejected} or "
    "{input, preferred_output, non_preferred_output}; other column names need a column_mapping"
)

# Canonical fields a column mapping may name (its keys).
CANONICAL_FIELDS = ("messages", "prompt", "completion", "instruction", "input", "output", "system", "text",
                    "chosen", "rejected")

# Common column names, tried in this order when a row has no canonical shape. Every field listed is
# required; the first alias present wins.
ALIASES: tuple[tuple[DataFormat, dict[str, tuple[str, ...]]], ...] = (
    (DataFormat.CHAT, {"messages": ("conversations", "conversation", "dialog", "dialogue")}),
    (DataFormat.PREFERENCE, {"prompt": ("question", "query", "instruction", "input"),
                             "chosen": ("chosen",), "rejected": ("rejected",)}),
    (DataFormat.ALPACA, {"instruction": ("instruction",), "output": ("response", "answer")}),
    (DataFormat.PROMPT_COMPLETION, {"prompt": ("question", "query", "input", "source"),
                                    "completion": ("answer", "response", "output", "target")}),
    (DataFormat.TEXT, {"text": ("content", "document", "body", "passage")}),
)

MAX_MAPPING_NAME = 256


def detect_format(row: Mapping[str, Any]) -> DataFormat | None:
    """Dataset format from the canonical keys of one row (extra keys are ignored), or None."""
    keys = set(row)
    if "messages" in keys:
        return DataFormat.CHAT
    if {"preferred_output", "non_preferred_output"} <= keys:
        return DataFormat.PREFERENCE
    for fmt in (DataFormat.PREFERENCE, DataFormat.PROMPT_COMPLETION, DataFormat.ALPACA, DataFormat.TEXT):
        if set(FORMAT_KEYS[fmt]) <= keys:
            return fmt
    return None


def detect_mapping(keys: Sequence[str]) -> dict[str, str] | None:
    """A mapping from common column names when the keys have no canonical shape; {} when they do."""
    if detect_format(dict.fromkeys(keys)) is not None:
        return {}
    present = set(keys)
    for _fmt, fields in ALIASES:
        chosen = {}
        for canonical, aliases in fields.items():
            source = next((a for a in aliases if a in present), None)
            if source is None:
                break
            if source != canonical:
                chosen[canonical] = source
        else:
            return chosen
    return None


def apply_mapping(row: dict, mapping: Mapping[str, str]) -> dict:
    """The row with each mapped source column renamed to its canonical field."""
    if not mapping:
        return row
    sources = set(mapping.values())
    out = {k: v for k, v in row.items() if k not in sources and k not in mapping}
    for canonical, source in mapping.items():
        if source in row:
            out[canonical] = row[source]
    return out


def parse_column_mapping(raw: str | Mapping[str, Any] | None) -> dict[str, str] | None:
    """A user's column mapping (JSON text or a dict) checked; ValueError says what is wrong."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"column_mapping must be a JSON object ({exc})") from None
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError('column_mapping must be a non-empty JSON object like {"prompt": "question", '
                         '"completion": "answer"}')
    out: dict[str, str] = {}
    for key, value in raw.items():
        if key not in CANONICAL_FIELDS:
            raise ValueError(f"column_mapping key {str(key)[:64]!r} is not a studio field; "
                             f"use {', '.join(CANONICAL_FIELDS)}")
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_MAPPING_NAME:
            raise ValueError(f"column_mapping['{key}'] must be a column name (a non-empty string of at most "
                             f"{MAX_MAPPING_NAME} characters)")
        out[key] = value
    if len(set(out.values())) != len(out):
        raise ValueError("column_mapping maps one column to two fields")
    return out


def unknown_shape(keys: Sequence[str], what: str = "field") -> tuple[str | None, str]:
    """(missing field, message) for a row that matches no format; names the nearest format."""
    present = ", ".join(keys) or "none"
    best, best_overlap = None, 0
    # On ties the earlier (more common) format wins: {"prompt"} is a prompt_completion row missing "completion".
    candidates = [(f, FORMAT_KEYS[f]) for f in (DataFormat.CHAT, DataFormat.PROMPT_COMPLETION, DataFormat.ALPACA,
                                                 DataFormat.TEXT, DataFormat.PREFERENCE)]
    for fmt, required in (*candidates, (DataFormat.PREFERENCE, OPENAI_PREF_KEYS)):
        overlap = len(set(required) & set(keys))
        if overlap > best_overlap:
            best, best_overlap = (fmt, required), overlap
    if best is not None:
        fmt, required = best
        missing = [k for k in required if k not in keys]
        return missing[0], (f"missing {what} '{missing[0]}' ({what}s present: {present}); "
                            f"{fmt.value} rows need {', '.join(required)}")
    return None, f"row matches no known format ({what}s present: {present}); accepted formats: {ACCEPTED}"

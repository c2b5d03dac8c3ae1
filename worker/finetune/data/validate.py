"""Row validation and normalisation: one shape per format for tokenisation, templates and packing."""

from __future__ import annotations

from typing import Any

from .errors import Issues
from .formats import DataFormat

ROLES = ("system", "user", "assistant", "tool")
# ShareGPT's `from` values as LLaMA-Factory reads them; a function call is the assistant's turn and an
# observation is the tool's answer.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "assistant", "observation": "tool", "tool": "tool"}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def surrogate_at(text: str) -> int | None:
    """1-based position of a lone UTF-16 surrogate (a JSON escape like \\ud800 decodes to one); such a
    string cannot be encoded as UTF-8, so no tokenizer takes it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start + 1
    return None


def surrogate_message(position: int) -> str:
    return (f"contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape) at character {position}; "
            "fix or remove that character")


class Row:
    """Validation helpers for one row; each failure is recorded on ``issues``."""

    def __init__(self, line: int, unit: str, issues: Issues, names: dict[str, str] | None = None):
        self.line, self.unit, self.issues, self.ok = line, unit, issues, True
        self.names = names or {}  # canonical field -> the file's column, for messages

    def fail(self, field_: str | None, message: str) -> None:
        self.ok = False
        self.issues.add(self.line, field_, message, self.unit)

    def string(self, value: Any, name: str, *, required: bool = True) -> str:
        name = self.names.get(name, name)
        if value is None and not required:
            return ""
        if value is None:
            self.fail(name, "is missing or null; it must be a non-empty string")
            return ""
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {type_name(value)}")
            return ""
        if required and not value.strip():
            self.fail(name, "is empty; it must be a non-empty string")
        if (at := surrogate_at(value)) is not None:
            self.fail(name, surrogate_message(at))
        return value

    def _message(self, msg: dict, where: str, i: int) -> dict:
        if "role" not in msg and "from" in msg:  # ShareGPT turn
            role = SHAREGPT_ROLES.get(msg.get("from"))
            if role is None:
                self.fail(f"{where}.from", f"unknown ShareGPT speaker {msg.get('from')!r}; expected one of "
                                           "human, gpt, system, function_call, observation")
            content, content_key = msg.get("value"), "value"
        else:
            role, content, content_key = msg.get("role"), msg.get("content"), "content"
            if role not in ROLES:
                self.fail(f"{where}.role", f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if role == "system" and i > 0:
            self.fail(f"{where}.{'role' if content_key == 'content' else 'from'}",
                      "a system message is only allowed as the first message")
        if not isinstance(content, str):
            self.fail(f"{where}.{content_key}", f"must be a string, got {type_name(content)}")
            content = ""
        elif (at := surrogate_at(content)) is not None:
            self.fail(f"{where}.{content_key}", surrogate_message(at))
        norm = {"role": role, "content": content}
        if "weight" in msg and msg["weight"] is not None:
            if msg["weight"] not in (0, 1) or isinstance(msg["weight"], bool):
                self.fail(f"{where}.weight", f"weight must be 0 or 1, got {msg['weight']!r}")
            elif role != "assistant":
                self.fail(f"{where}.weight", "weight is only allowed on assistant messages")
            else:
                norm["weight"] = int(msg["weight"])
        return norm

    def messages(self, value: Any, name: str, *, final_assistant: bool = True) -> list[dict]:
        name = self.names.get(name, name)
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else type_name(value)
            self.fail(name, f"must be a non-empty list of messages, got {got}")
            return []
        out = []
        for i, msg in enumerate(value):
            where = f"{name}[{i}]"
            if not isinstance(msg, dict):
                self.fail(where, f"each message must be an object with role and content, got {type_name(msg)}")
                continue
            out.append(self._message(msg, where, i))
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


def _chat(row: dict, r: Row) -> dict:
    messages = r.messages(row.get("messages"), "messages")
    system = row.get("system")
    # ShareGPT keeps the system prompt in its own column (LLaMA-Factory's `system`).
    if "messages" in r.names and isinstance(system, str) and system.strip() and messages \
            and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system})
    return {"messages": messages}


def _preference(row: dict, r: Row) -> dict:
    if "preferred_output" in row:
        inp = row.get("input")
        if not isinstance(inp, dict):
            r.fail("input", f"must be an object with a 'messages' list, got {type_name(inp)}")
            prompt: Any = []
        else:
            prompt = r.messages(inp.get("messages"), "input.messages", final_assistant=False)
        chosen = r.assistant_text(row.get("preferred_output"), "preferred_output")
        rejected = r.assistant_text(row.get("non_preferred_output"), "non_preferred_output")
        names = ("preferred_output", "non_preferred_output")
    else:
        raw = row.get("prompt")
        prompt = r.messages(raw, "prompt", final_assistant=False) if isinstance(raw, list) else r.string(raw, "prompt")
        chosen = r.assistant_text(row.get("chosen"), "chosen")
        rejected = r.assistant_text(row.get("rejected"), "rejected")
        names = ("chosen", "rejected")
    if r.ok and chosen == rejected:
        r.fail(names[1], f"'{names[0]}' and '{names[1]}' are identical; a preference pair needs two different answers")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def normalise(fmt: DataFormat, row: dict, r: Row) -> dict:
    """The row in its format's one shape (see the package docstring); failures go to ``r``."""
    if fmt is DataFormat.CHAT:
        return _chat(row, r)
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
    return _preference(row, r)


def example_chars(data: dict) -> int:
    """Characters of one normalised example (what the caps and the character stats count)."""
    if "messages" in data:
        return sum(len(m["content"]) for m in data["messages"])
    if "text" in data:
        return len(data["text"])
    if "chosen" in data:  # preference: the longer of the two sequences the model sees
        prompt = data["prompt"]
        p = len(prompt) if isinstance(prompt, str) else sum(len(m["content"]) for m in prompt)
        return p + max(len(data["chosen"]), len(data["rejected"]))
    return len(data.get("system", "")) + len(data["prompt"]) + len(data["completion"])


def example_text(data: dict) -> str:
    """The text of one normalised example as a model sees it, chats framed as ChatML (for token counts;
    other chat templates differ by a few tokens per message)."""
    def chatml(messages: list[dict]) -> str:
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)

    if "messages" in data:
        return chatml(data["messages"])
    if "text" in data:
        return data["text"]
    if "chosen" in data:
        prompt = data["prompt"]
        head = prompt if isinstance(prompt, str) else chatml(prompt)
        return head + max(data["chosen"], data["rejected"], key=len)
    return data.get("system", "") + data["prompt"] + data["completion"]

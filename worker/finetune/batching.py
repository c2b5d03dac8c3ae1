"""From normalised records to training batches: chat template, label masks, truncation, packing.

`data.py` reads and validates files (torch-free, shared with the API); this module needs a tokenizer.
Two batching strategies keep examples from attending to each other:
- padded batches (optionally grouped by length so rows in a batch are alike);
- packed rows: several examples in one row with `position_ids` restarting at 0 per example and no
  attention mask. On CPU the training loop runs causal attention per example (`attention.py`); otherwise
  transformers 5 turns the positions into a block-diagonal causal mask (Trainer sets `use_cache=False`,
  without which packed examples would leak into each other).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .data import DataFormat, LoadedDataset, token_stats

IGNORE_INDEX = -100


@dataclass
class TokenizedData:
    """Examples ready for a collator, plus what the API and UI show about them."""

    examples: list[dict[str, list[int]]]
    truncated: int = 0              # examples cut at max_seq_length
    truncated_tokens: int = 0       # tokens lost to truncation
    dropped: int = 0                # examples with no trainable token left after truncation
    split: int = 0                  # long pretraining texts split into max_seq_length chunks
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def lengths(self) -> list[int]:
        return [len(e["input_ids"]) for e in self.examples]

    def summary(self) -> dict[str, Any]:
        return {"num_examples": len(self.examples), "truncated": self.truncated,
                "truncated_tokens": self.truncated_tokens, "dropped": self.dropped, "split": self.split,
                "trainable_tokens": sum(sum(1 for t in e["labels"] if t != IGNORE_INDEX) for e in self.examples),
                "token_stats": self.stats}


def to_messages(fmt: DataFormat, data: dict) -> list[dict[str, Any]]:
    """Every supervised format as a conversation, so the model learns the chat format it is served with."""
    if fmt == DataFormat.CHAT:
        return data["messages"]
    messages = [{"role": "system", "content": data["system"]}] if data.get("system") else []
    return [*messages, {"role": "user", "content": data["prompt"]},
            {"role": "assistant", "content": data["completion"]}]


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, Any]], *, completion_only: bool) -> tuple[list[int], list[int]]:
    """Token ids and labels; with `completion_only`, only assistant turns (weight != 0) are learned."""
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    encoded = tokenizer.apply_chat_template(clean, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=completion_only and _has_generation(tokenizer))
    ids = list(encoded["input_ids"])
    if not completion_only:
        return ids, list(ids)
    if "assistant_masks" in encoded and any(encoded["assistant_masks"]):
        mask = list(encoded["assistant_masks"])
        mask = _apply_weights(tokenizer, clean, messages, mask) if _has_weights(messages) else mask
    else:
        mask = _assistant_mask_by_prefix(tokenizer, clean, messages, len(ids))
    return ids, [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]


def _has_generation(tokenizer: Any) -> bool:
    return "{% generation %}" in (getattr(tokenizer, "chat_template", "") or "")


def _has_weights(messages: list[dict[str, Any]]) -> bool:
    return any(m.get("weight") == 0 for m in messages)


def _assistant_mask_by_prefix(tokenizer: Any, clean: list[dict], messages: list[dict], length: int) -> list[int]:
    """For templates without generation markers: an assistant turn spans from the end of the prompt
    rendered with `add_generation_prompt` to the end of the conversation rendered through that turn."""
    mask = [0] * length
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or message.get("weight") == 0:
            continue
        start = len(tokenizer.apply_chat_template(clean[:i], tokenize=True, add_generation_prompt=True,
                                                  return_dict=True)["input_ids"]) if i else 0
        end = len(tokenizer.apply_chat_template(clean[: i + 1], tokenize=True, return_dict=True)["input_ids"])
        for j in range(start, min(end, length)):
            mask[j] = 1
    return mask


def _apply_weights(tokenizer: Any, clean: list[dict], messages: list[dict], mask: list[int]) -> list[int]:
    """Unmask only assistant turns whose OpenAI-style `weight` is not 0."""
    by_prefix = _assistant_mask_by_prefix(tokenizer, clean, messages, len(mask))
    return [a and b for a, b in zip(mask, by_prefix, strict=True)]


def tokenize_dataset(dataset: LoadedDataset, tokenizer: Any, *, max_seq_length: int,
                     completion_only: bool = True) -> TokenizedData:
    """Tokenize a supervised or pretraining dataset; truncate (SFT) or split (pretraining) long rows."""
    out = TokenizedData(examples=[])
    for record in dataset.records:
        if dataset.format == DataFormat.TEXT:
            _add_text(out, tokenizer, record.data["text"], max_seq_length)
            continue
        ids, labels = tokenize_conversation(tokenizer, to_messages(dataset.format, record.data),
                                            completion_only=completion_only)
        if len(ids) > max_seq_length:
            out.truncated += 1
            out.truncated_tokens += len(ids) - max_seq_length
            ids, labels = ids[:max_seq_length], labels[:max_seq_length]
        if all(t == IGNORE_INDEX for t in labels[1:]):
            out.dropped += 1
            continue
        out.examples.append({"input_ids": ids, "labels": labels})
    out.stats = token_stats(out.lengths)
    return out


def _add_text(out: TokenizedData, tokenizer: Any, text: str, max_seq_length: int) -> None:
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    chunks = [ids[i: i + max_seq_length] for i in range(0, len(ids), max_seq_length)]
    if len(chunks) > 1:
        out.split += 1
    for chunk in chunks:
        if len(chunk) >= 2:
            out.examples.append({"input_ids": chunk, "labels": list(chunk)})


# ---------------------------------------------------------------------------------------------------
# Packing


def pack_examples(examples: Sequence[dict[str, list[int]]], max_seq_length: int) -> list[dict[str, list[int]]]:
    """Best-fit-decreasing packing into rows of at most `max_seq_length` tokens.

    Each row keeps per-example `position_ids` (restarting at 0), and the first label of every example is
    ignored, so no token is predicted across an example boundary.
    """
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    rows: list[list[int]] = []
    free: list[int] = []
    for index in order:
        size = len(examples[index]["input_ids"])
        best = -1
        for r, space in enumerate(free):
            if size <= space and (best < 0 or space < free[best]):
                best = r
        if best < 0:
            rows.append([index])
            free.append(max_seq_length - size)
        else:
            rows[best].append(index)
            free[best] -= size
    return [_concat([examples[i] for i in members]) for members in rows]


def _concat(parts: Sequence[dict[str, list[int]]]) -> dict[str, list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for part in parts:
        ids += part["input_ids"]
        labels += [IGNORE_INDEX, *part["labels"][1:]]
        positions += list(range(len(part["input_ids"])))
    return {"input_ids": ids, "labels": labels, "position_ids": positions}


# ---------------------------------------------------------------------------------------------------
# Collators


@dataclass
class PaddingCollator:
    """Pads each batch to its longest row. Packed rows (with `position_ids`) get no attention mask: the
    restarting positions tell examples apart (segment attention, or transformers' block-diagonal mask);
    padding there is a separate "example" of its own with ignored labels."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    # Right padding + causal attention: a real token only ever looks left, at real tokens, so the padding
    # mask changes nothing it computes. Without it, SDPA takes its mask-free causal kernel. Padding rows'
    # own outputs are garbage, but their labels are ignored. Off for methods that need the mask.
    attention_mask: bool = True

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        packed = "position_ids" in features[0]
        batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
        with_mask = self.attention_mask and not packed
        if packed:
            batch["position_ids"] = []
        elif with_mask:
            batch["attention_mask"] = []
        for f in features:
            pad = longest - len(f["input_ids"])
            batch["input_ids"].append(f["input_ids"] + [self.pad_token_id] * pad)
            batch["labels"].append(f["labels"] + [IGNORE_INDEX] * pad)
            if packed:
                batch["position_ids"].append(f["position_ids"] + list(range(pad)))
            elif with_mask:
                batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * pad)
        tensors = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        tensors["num_real_tokens"] = torch.tensor(sum(len(f["input_ids"]) for f in features))
        return tensors


class ListDataset:
    """A list of examples as a map-style torch dataset (Trainer wants `__len__`/`__getitem__`)."""

    def __init__(self, examples: list[dict[str, list[int]]]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.examples[index]

"""Chat templates, completion-only labels, truncation, and packing without cross-example leakage (with the
block-diagonal mask and with segment attention)."""

from __future__ import annotations

import json

import pytest
import torch

from worker.finetune import attention
from worker.finetune.batching import (
    IGNORE_INDEX,
    PaddingCollator,
    pack_examples,
    tokenize_conversation,
    tokenize_dataset,
)
from worker.finetune.data import read_dataset
from worker.finetune.models import load_tokenizer, resolve_model

CONVO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Spell dog in capitals."},
         {"role": "assistant", "content": "DOG"}]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(resolve_model(tiny_model))


def learned_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([t for t, l in zip(ids, labels, strict=True) if l != IGNORE_INDEX])


def test_completion_only_labels_cover_exactly_the_assistant_turn(tokenizer):
    ids, labels = tokenize_conversation(tokenizer, CONVO, completion_only=True)
    assert learned_text(tokenizer, ids, labels) == "DOG<|im_end|>"
    ids, labels = tokenize_conversation(tokenizer, CONVO, completion_only=False)
    assert labels == ids


def test_assistant_weight_zero_is_not_learned(tokenizer):
    convo = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", "weight": 0},
             {"role": "user", "content": "Add 2 and 3"}, {"role": "assistant", "content": "5"}]
    ids, labels = tokenize_conversation(tokenizer, convo, completion_only=True)
    assert learned_text(tokenizer, ids, labels) == "5<|im_end|>"


def test_templates_without_generation_markers_mask_by_prefix(tokenizer):
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    ids, labels = tokenize_conversation(tokenizer, CONVO, completion_only=True)
    assert learned_text(tokenizer, ids, labels).startswith("DOG<|im_end|>")
    assert "Spell" not in learned_text(tokenizer, ids, labels)


def test_truncation_is_counted_and_examples_without_labels_are_dropped(tokenizer, tmp_path):
    rows = [{"prompt": "word " * 200, "completion": "short"}, {"prompt": "Hi", "completion": "there " * 50},
            {"prompt": "Add 1 and 1", "completion": "2"}]
    path = tmp_path / "pc.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    data = tokenize_dataset(read_dataset(path), tokenizer, max_seq_length=32)
    assert data.dropped == 1            # the long prompt left no completion token
    assert data.truncated == 2 and data.truncated_tokens > 0
    assert all(len(e["input_ids"]) <= 32 for e in data.examples)
    assert data.stats["count"] == 2 and data.stats["max"] == 32


def test_pretraining_text_is_split_not_lost(tokenizer, tmp_path):
    path = tmp_path / "text.jsonl"
    path.write_text(json.dumps({"text": "The river runs to the sea. " * 40}) + "\n")
    data = tokenize_dataset(read_dataset(path, stage="pretraining"), tokenizer, max_seq_length=50)
    total = len(tokenizer("The river runs to the sea. " * 40)["input_ids"]) + 1
    assert sum(len(e["input_ids"]) for e in data.examples) == total and data.split == 1


def test_packing_fits_rows_and_restarts_positions():
    examples = [{"input_ids": list(range(n)), "labels": list(range(n))} for n in (7, 5, 4, 3, 2, 9)]
    rows = pack_examples(examples, max_seq_length=10)
    assert sum(len(e["input_ids"]) for e in examples) == sum(len(r["input_ids"]) for r in rows)
    # 30 tokens, cap 10, and the 9 fits with nothing: 4 rows is optimal, and best-fit-decreasing finds it.
    assert all(len(r["input_ids"]) <= 10 for r in rows) and len(rows) == 4
    for row in rows:
        starts = [i for i, p in enumerate(row["position_ids"]) if p == 0]
        assert all(row["labels"][i] == IGNORE_INDEX for i in starts)  # nothing predicted across a boundary


def no_mask_built(*args, **kwargs):
    raise AssertionError("segment attention must not build a mask for packed rows")


@pytest.mark.parametrize("implementation", ["sdpa", attention.SEGMENT_ATTENTION])
def test_packed_examples_do_not_attend_to_each_other(implementation, tiny_model, monkeypatch):
    """Logits of each example inside a packed row equal its logits when run alone."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    model.config.use_cache = False
    if implementation != "sdpa":
        assert attention.use_segment_attention(model)
        monkeypatch.setattr("transformers.masking_utils.sdpa_mask", no_mask_built)  # proves the segment path ran
    torch.manual_seed(0)
    examples = [{"input_ids": torch.randint(5, 7000, (n,)).tolist(), "labels": [1] * n} for n in (11, 6, 9)]
    rows = pack_examples(examples, max_seq_length=32)
    assert len(rows) == 1
    batch = PaddingCollator(pad_token_id=0, pad_to_multiple_of=8)(rows)
    batch.pop("num_real_tokens")
    assert "attention_mask" not in batch
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        offset = 0
        for example in sorted(examples, key=lambda e: -len(e["input_ids"])):
            alone = model(input_ids=torch.tensor([example["input_ids"]]), use_cache=False).logits[0]
            n = len(example["input_ids"])
            assert torch.allclose(packed[offset: offset + n], alone, atol=1e-5)
            offset += n


def test_segment_attention_trains_like_the_mask(tiny_model):
    """Loss and LoRA gradients of the trainer's loss over packed rows (and unpacked right-padded rows) are the
    same with segment attention as with the block-diagonal mask."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from worker.finetune.trainer import label_only_loss

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                                      init_lora_weights=False))
    model.config.use_cache = False
    examples = []
    for n in (12, 7, 20, 5, 9):
        ids = torch.randint(5, 7000, (n,)).tolist()
        examples.append({"input_ids": ids, "labels": [IGNORE_INDEX] * (n // 2) + ids[n // 2:]})
    for rows in (pack_examples(examples, 32), examples):
        batch = PaddingCollator(pad_token_id=0, attention_mask=False)(rows)
        batch.pop("num_real_tokens")
        results = []
        for on in (False, True):
            with attention.segment_attention(model, enabled=on) as active:
                assert active == on
                model.zero_grad()
                loss = label_only_loss(model, batch)
                loss.backward()
            grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
            results.append((loss.detach(), grads))
        (mask_loss, mask_grads), (seg_loss, seg_grads) = results
        assert torch.allclose(seg_loss, mask_loss, atol=1e-5), (float(seg_loss), float(mask_loss))
        assert mask_grads.keys() == seg_grads.keys() and mask_grads
        assert all(torch.allclose(seg_grads[k], mask_grads[k], atol=1e-5) for k in mask_grads)
    assert model.config._attn_implementation == "sdpa"  # restored after the block


def test_segment_attention_needs_position_ids():
    """Without position_ids it cannot tell packed examples apart: it raises instead of attending across them."""
    torch.manual_seed(0)
    query, key, value = (torch.randn(1, 2, 3, 8).repeat(1, 1, 2, 1) for _ in range(3))  # one example, twice
    with pytest.raises(ValueError, match="position_ids"):
        attention.segment_sdpa(torch.nn.Module(), query, key, value, None)
    out, _ = attention.segment_sdpa(torch.nn.Module(), query, key, value, None,
                                    position_ids=torch.tensor([[0, 1, 2, 0, 1, 2]]))
    assert torch.allclose(out[:, 3:], out[:, :3], atol=1e-6)  # the second copy does not see the first


def test_segment_attention_keeps_sdpa_where_it_does_not_apply(tiny_model):
    from transformers import AutoConfig, AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert attention.unsupported(model) is None
    config = AutoConfig.from_pretrained(tiny_model)
    config.sliding_window = 16
    windowed = AutoModelForCausalLM.from_config(config)
    assert "sliding" in attention.unsupported(windowed)
    with attention.segment_attention(windowed) as active:
        assert not active and windowed.config._attn_implementation == "sdpa"


def test_padding_collator_masks_padding():
    batch = PaddingCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]},
                                             {"input_ids": [8], "labels": [8]}])
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist()[1] == [8, IGNORE_INDEX, IGNORE_INDEX]
    assert int(batch["num_real_tokens"]) == 4

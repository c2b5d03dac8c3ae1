"""Logits only at learned positions: the same loss and gradients as the model's own loss."""

from __future__ import annotations

import torch

from worker.finetune.batching import PaddingCollator, pack_examples
from worker.finetune.trainer import label_only_loss


def batch_of(packed: bool):
    torch.manual_seed(1)
    examples = []
    for n in (12, 7, 20, 5):
        ids = torch.randint(5, 7000, (n,)).tolist()
        labels = [-100] * (n // 2) + ids[n // 2:]  # completion-only: the first half is the prompt
        examples.append({"input_ids": ids, "labels": labels})
    rows = pack_examples(examples, 32) if packed else examples
    batch = PaddingCollator(pad_token_id=0)(rows)
    batch.pop("num_real_tokens")
    return batch


def grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_label_only_loss_matches_the_models_loss_and_gradients(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for packed in (False, True):
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                               LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                                          init_lora_weights=False))
        model.config.use_cache = False
        batch = batch_of(packed)
        reference = model(**batch).loss
        reference.backward()
        expected = grads(model)
        model.zero_grad()
        ours = label_only_loss(model, batch)
        ours.backward()
        assert torch.allclose(ours, reference, atol=1e-5), (packed, float(ours), float(reference))
        got = grads(model)
        assert expected.keys() == got.keys() and expected
        assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)


def test_right_padded_batches_need_no_attention_mask(tiny_model):
    """Dropping the padding mask (so SDPA runs its causal kernel) leaves every real token's logits as they were."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    rows = [{"input_ids": list(range(5, 5 + n)), "labels": list(range(5, 5 + n))} for n in (9, 4, 13)]
    masked = PaddingCollator(pad_token_id=0)(rows)
    bare = PaddingCollator(pad_token_id=0, attention_mask=False)(rows)
    assert "attention_mask" not in bare
    with torch.no_grad():
        a = model(input_ids=masked["input_ids"], attention_mask=masked["attention_mask"]).logits
        b = model(input_ids=bare["input_ids"]).logits
    real = masked["attention_mask"].bool()
    assert torch.allclose(a[real], b[real], atol=1e-5)
    with torch.no_grad():  # and the loss over real labels is the same
        assert torch.allclose(model(**{k: v for k, v in masked.items() if k != "num_real_tokens"}).loss,
                              model(input_ids=bare["input_ids"], labels=bare["labels"]).loss, atol=1e-6)

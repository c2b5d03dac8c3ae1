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

"""Logits only at learned positions: the same loss and gradients as the model's own loss."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def assert_same_loss_and_grads(model, batch, what) -> None:
    """`label_only_loss` gives the model's own loss on `batch`, and the same gradients."""
    reference = model(**batch).loss
    reference.backward()
    expected = grads(model)
    model.zero_grad()
    ours = label_only_loss(model, batch)
    ours.backward()
    assert torch.allclose(ours, reference, atol=1e-5), (what, float(ours), float(reference))
    got = grads(model)
    assert expected.keys() == got.keys() and expected
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)


def test_label_only_loss_matches_the_models_loss_and_gradients(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for packed in (False, True):
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                               LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                                          init_lora_weights=False))
        model.config.use_cache = False
        assert_same_loss_and_grads(model, batch_of(packed), packed)


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


# Families whose forward transforms the head's logits (tiny configs, random weights). The transforms are set
# large enough to matter on random weights: Gemma's real cap is 30 over logits of ~30-50.
FAMILIES = {
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {"final_logit_softcapping": 2.0, "head_dim": 16}),
    "gemma3_text": ("Gemma3TextConfig", "Gemma3ForCausalLM", {"final_logit_softcapping": 2.0, "head_dim": 16}),
    "cohere": ("CohereConfig", "CohereForCausalLM", {"logit_scale": 0.0625}),
    "granite": ("GraniteConfig", "GraniteForCausalLM", {"logits_scaling": 4.0}),
}
# A head transform the core does not know: the trainer must fall back to the model's own loss.
UNKNOWN_HEADS = {
    "falcon_h1": ("FalconH1Config", "FalconH1ForCausalLM", {
        "lm_head_multiplier": 0.25, "mamba_d_ssm": 64, "mamba_n_heads": 4, "mamba_d_head": 16, "mamba_n_groups": 1,
        "mamba_d_state": 16, "mamba_chunk_size": 16}),
}


def family_model(family: str, tokenizer):
    import transformers

    config_name, model_name, extra = {**FAMILIES, **UNKNOWN_HEADS}[family]
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
        **extra)
    torch.manual_seed(0)
    return getattr(transformers, model_name)(config)


@pytest.fixture(scope="module")
def family_folders(tiny_model, studio_data_dir) -> dict[str, str]:
    """Each family saved where local models load from, with the demo tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    folders = {}
    for family in [*FAMILIES, *UNKNOWN_HEADS]:
        folder = studio_data_dir / "models" / f"tiny-{family}"
        if not (folder / "config.json").exists():
            family_model(family, tokenizer).save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        folders[family] = str(folder)
    return folders


@pytest.mark.parametrize("family", list(FAMILIES))
def test_label_only_loss_applies_the_models_head_transform(family, family_folders):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(family_folders[family]),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.config.use_cache = False
    assert_same_loss_and_grads(model, batch_of(packed=False), family)


def test_label_only_logits_only_where_they_match_the_forward(tiny_model, family_folders):
    from transformers import AutoModelForCausalLM

    from worker.finetune.trainer import label_only_matches

    for name in ("llama", *FAMILIES, *UNKNOWN_HEADS):
        model = AutoModelForCausalLM.from_pretrained(tiny_model if name == "llama" else family_folders[name])
        assert label_only_matches(model) == (name not in UNKNOWN_HEADS), name


@pytest.mark.parametrize("family", [*FAMILIES, *UNKNOWN_HEADS])
def test_train_loss_equals_eval_loss_on_the_same_batch(family, family_folders, chat_file, tmp_path):
    """One step over the one batch of a 4-row file, evaluated on the same file at a negligible learning rate:
    the training loss (label-only logits) and the validation loss (the model's own forward) agree."""
    from tests.helpers import job
    from worker.finetune.reporting import ListReporter
    from worker.finetune.spec import parse_spec
    from worker.finetune.train import run

    four = tmp_path / "four.jsonl"
    four.write_text("".join(Path(chat_file).read_text().splitlines(keepends=True)[:4]))
    spec = parse_spec(job(family_folders[family], str(four), validation_file=str(four),
                          tuning={"type": "lora", "target_modules": ["q_proj", "v_proj"]},  # peft skips Mamba's
                          training={"max_steps": 1, "eval_steps": 1, "learning_rate": 1e-12}))
    reporter = ListReporter()
    run(spec, output_dir=tmp_path / "out", reporter=reporter)
    metrics = [e["data"] for e in reporter.of_type("metrics")]
    train = next(m["train_loss"] for m in metrics if "train_loss" in m)
    valid = next(m["valid_loss"] for m in metrics if "valid_loss" in m)
    assert train == pytest.approx(valid, rel=1e-4), (family, train, valid)

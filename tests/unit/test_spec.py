"""The job contract: defaults for every type, OpenAI's shapes, and refusals a person can act on."""

from __future__ import annotations

import pytest

from worker.finetune.spec import TUNING_TYPES, JobSpec, SpecError, parse_spec

BASE = {"model": "studio-tiny-llama", "training_file": "file-abc"}


@pytest.mark.parametrize("tuning_type", TUNING_TYPES)
def test_every_type_works_with_its_type_alone(tuning_type):
    spec = parse_spec({**BASE, "tuning": {"type": tuning_type}})
    assert spec.tuning.type == tuning_type
    assert JobSpec.model_validate_json(spec.model_dump_json()) == spec  # the stored JSON round-trips


def test_defaults_are_a_practitioners():
    spec = parse_spec(BASE)
    assert spec.tuning.type == "lora" and spec.tuning.r == 16 and spec.tuning.alpha == 32
    assert spec.tuning.target_modules == "all-linear" and spec.method.type == "supervised"
    assert spec.method.hyperparameters.n_epochs == "auto" and spec.training.completion_only_loss
    assert parse_spec({**BASE, "tuning": {"type": "qlora"}}).tuning.quantization == "nf4"


def test_openai_method_shapes():
    spec = parse_spec({**BASE, "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 2}}}})
    assert spec.stage == "dpo" and spec.method.hyperparameters.beta == 0.1
    legacy = parse_spec({**BASE, "hyperparameters": {"n_epochs": 4, "batch_size": "auto"}})
    assert legacy.method.supervised.hyperparameters.n_epochs == 4


@pytest.mark.parametrize("tuning, message", [
    ({"type": "lora", "r": 0}, "tuning.r"),
    ({"type": "lora", "alpha": 0}, "tuning.alpha"),
    ({"type": "lora", "dropout": 1.0}, "tuning.dropout"),
    ({"type": "lora", "lora_r": 8}, "tuning.lora_r: unknown field"),
    ({"type": "lora", "target_modules": []}, "target_modules is empty"),
    ({"type": "lora", "target_modules": "all"}, "'all-linear'"),
    ({"type": "lora", "target_modules": ["../x"]}, "is not a module name"),
    ({"type": "qlora", "quantization": "int8"}, "'nf4' or 'fp4'"),
    ({"type": "full", "quantization": "nf4"}, "cannot train on a quantized base"),
    ({"type": "adalora", "r": 16, "init_r": 8}, "init_r (8) must be >= r (16)"),
    ({"type": "prompt_tuning", "num_virtual_tokens": 0}, "num_virtual_tokens"),
    ({"type": "magic"}, "unknown tuning type; expected one of: lora"),
])
def test_nonsense_tuning_is_refused_clearly(tuning, message):
    with pytest.raises(SpecError, match=None) as err:
        parse_spec({**BASE, "tuning": tuning})
    assert message in str(err.value)


@pytest.mark.parametrize("body, message", [
    ({"training": {"max_seq_length": 0}}, "training.max_seq_length"),
    ({"training": {"packing": True, "group_by_length": True}}, "pick one"),
    ({"training": {"precision": "fp8"}}, "training.precision"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "at most 16"),
    ({"metadata": {"k" * 65: "v"}}, "at most 64"),
    ({"metadata": {"k": "v" * 513}}, "at most 512"),
    ({"suffix": "../../etc"}, "suffix"),
    ({"method": {"type": "supervised", "dpo": {}}}, "method.dpo is set"),
    ({"method": {"type": "dpo"}, "tuning": {"type": "prefix_tuning"}}, "dpo with tuning type 'prefix_tuning'"),
    ({"n_epochs": 3}, "n_epochs: unknown field"),
    ({"integrations": [{"type": "wandb", "wandb": {"project": "p"}}]}, "integrations (wandb) are not supported yet"),
    ({"method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 0}}}}, "n_epochs"),
])
def test_nonsense_job_is_refused_clearly(body, message):
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, **body})
    assert message in str(err.value)


def test_an_empty_integrations_list_is_fine():
    assert parse_spec({**BASE, "integrations": []}).integrations == []


def test_missing_required_fields():
    with pytest.raises(SpecError, match="model: Field required"):
        parse_spec({"training_file": "x"})


@pytest.mark.parametrize("body, field, limit", [
    ({"tuning": {"type": "prefix_tuning", "encoder_hidden_size": 10**12}}, "tuning.encoder_hidden_size", "16384"),
    ({"tuning": {"type": "p_tuning", "encoder_hidden_size": 10**6}}, "tuning.encoder_hidden_size", "16384"),
    ({"training": {"max_steps": 10**18}}, "training.max_steps", "1000000"),
    ({"training": {"save_steps": 10**18}}, "training.save_steps", "1000000"),
    ({"training": {"eval_steps": 10**9}}, "training.eval_steps", "1000000"),
    ({"tuning": {"type": "freeze", "trainable_layers": 10**9}}, "tuning.trainable_layers", "1024"),
    ({"tuning": {"type": "adalora", "delta_t": 10**12}}, "tuning.delta_t", "1000000"),
    ({"tuning": {"type": "lora", "alpha": 1e300}}, "tuning.alpha", "65536"),
    ({"tuning": {"type": "lora", "target_modules": ["q_proj"] * 300}}, "tuning.target_modules", "at most 256"),
])
def test_every_size_like_field_has_a_limit_it_names(body, field, limit):
    """Nothing a worker cannot allocate or finish gets past the contract (issue 9: encoder_hidden_size 10^12
    failed allocating 10^15 bytes in the worker; max_steps 10^18 was accepted)."""
    with pytest.raises(SpecError) as err:
        parse_spec({**BASE, **body})
    assert field in str(err.value) and limit in str(err.value), str(err.value)


@pytest.mark.parametrize("tuning, field", [
    ({"type": "lora", "r": 512}, "tuning.r"),
    ({"type": "adalora", "r": 8, "init_r": 300}, "tuning.init_r"),
    ({"type": "adapter", "bottleneck_size": 1024}, "tuning.bottleneck_size"),
    ({"type": "freeze", "trainable_layers": 9}, "tuning.trainable_layers"),
])
def test_sizes_above_the_models_width_are_refused_naming_the_limit(tuning, field):
    from worker.finetune.spec import FitError, check_fits_model

    config = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 4}
    spec = parse_spec({**BASE, "tuning": tuning})
    with pytest.raises(FitError) as err:
        check_fits_model(spec, config)
    assert err.value.param == field and field in str(err.value)
    assert ("256" if field != "tuning.trainable_layers" else "4") in str(err.value)
    check_fits_model(parse_spec({**BASE, "tuning": {"type": tuning["type"]}}), config)  # the defaults fit

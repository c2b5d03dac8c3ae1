"""The job contract: the exact body of `POST /v1/fine_tuning/jobs`, torch-free.

OpenAI's fields (`model`, `training_file`, `method`, ...) plus the studio's own `tuning` and `training`.
The API validates submissions with `JobSpec` and stores `spec.model_dump_json()`; the worker and
`studio train` re-validate the same JSON. Every tuning type works with `{"type": T}` alone: the defaults
are what a practitioner would pick.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Auto = Literal["auto"]
ALL_LINEAR = "all-linear"
TUNING_TYPES = (
    "lora", "dora", "qlora", "adalora", "ia3", "prefix_tuning", "p_tuning_v2", "prompt_tuning",
    "p_tuning", "loha", "lokr", "adapter", "freeze", "full",
)
STAGES = ("supervised", "dpo", "pretraining")
# Upper bounds for size-like fields: far above any sensible run, low enough that nothing reaches a worker
# that cannot be allocated or finished (docs/models.md). Fields that depend on the model's width are
# checked against its config by `check_fits_model`.
MAX_STEPS = 1_000_000  # ~1 day at 0.1 s/step; a longer run is a bug in the spec, not a plan
MAX_RANK = 4096
MAX_WIDTH = 16_384  # prompt-encoder / bottleneck hidden sizes (Llama-3-70B's hidden is 8192)
MAX_LAYERS = 1024
MAX_MODULE_NAMES = 256


class _Strict(BaseModel):
    """Unknown fields are refused: a typo like `lora_r` must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# ---------------------------------------------------------------------------------------------------
# OpenAI's `method`


class Hyperparameters(_Strict):
    """OpenAI's hyperparameters: each a number or "auto" (resolved when the job starts)."""

    n_epochs: Annotated[int, Field(ge=1, le=100)] | Auto = "auto"
    batch_size: Annotated[int, Field(ge=1, le=1024)] | Auto = "auto"
    learning_rate_multiplier: Annotated[float, Field(gt=0, le=100)] | Auto = "auto"


class DpoHyperparameters(Hyperparameters):
    beta: Annotated[float, Field(gt=0, le=10)] | Auto = "auto"


class SupervisedMethod(_Strict):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class PretrainingMethod(_Strict):
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class DpoMethod(_Strict):
    hyperparameters: DpoHyperparameters = Field(default_factory=DpoHyperparameters)


class Method(_Strict):
    """`{"type": "supervised", "supervised": {"hyperparameters": {...}}}`, as OpenAI shapes it."""

    type: Literal["supervised", "dpo", "pretraining"] = "supervised"
    supervised: SupervisedMethod | None = None
    dpo: DpoMethod | None = None
    pretraining: PretrainingMethod | None = None

    @model_validator(mode="after")
    def _fill_and_check(self) -> Method:
        for other in STAGES:
            if other != self.type and getattr(self, other) is not None:
                raise ValueError(
                    f"method.type is '{self.type}' but method.{other} is set; "
                    f"put the hyperparameters under method.{self.type}"
                )
        if getattr(self, self.type) is None:
            default = {"supervised": SupervisedMethod, "dpo": DpoMethod, "pretraining": PretrainingMethod}
            setattr(self, self.type, default[self.type]())
        return self

    @property
    def hyperparameters(self) -> Hyperparameters:
        return getattr(self, self.type).hyperparameters


# ---------------------------------------------------------------------------------------------------
# The studio's `tuning`: one model per type, discriminated by `type`

TargetModules = list[str] | str


def _check_targets(value: TargetModules | None) -> TargetModules | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value != ALL_LINEAR:
            raise ValueError(f"target_modules must be a list of module names or '{ALL_LINEAR}'")
        return value
    if not value:
        raise ValueError(f"target_modules is empty; name at least one module or use '{ALL_LINEAR}'")
    if len(value) > MAX_MODULE_NAMES:
        raise ValueError(f"target_modules names {len(value)} modules; at most {MAX_MODULE_NAMES}")
    for name in value:
        if not re.fullmatch(r"[A-Za-z0-9_.]{1,200}", name):
            raise ValueError(f"target module name {name!r} is not a module name (letters, digits, _ and .)")
    return value


class _Targeted(_Strict):
    target_modules: TargetModules | None = Field(
        default=ALL_LINEAR, description="Module names (e.g. q_proj, v_proj) or 'all-linear'."
    )

    _targets = field_validator("target_modules")(classmethod(lambda cls, v: _check_targets(v)))


class _LoraFields(_Targeted):
    r: Annotated[int, Field(ge=1, le=MAX_RANK)] = 16
    alpha: Annotated[float, Field(gt=0, le=65_536)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    use_rslora: bool = False
    modules_to_save: Annotated[list[str], Field(max_length=MAX_MODULE_NAMES)] | None = None


class LoraTuning(_LoraFields):
    type: Literal["lora"] = "lora"
    quantization: Literal["none", "int8"] = "none"


class DoraTuning(_LoraFields):
    type: Literal["dora"] = "dora"
    quantization: Literal["none", "int8"] = "none"


class QloraTuning(_LoraFields):
    """LoRA on a 4-bit NF4 base with double quantization and a paged optimizer (Dettmers et al. 2023)."""

    type: Literal["qlora"] = "qlora"
    quantization: Literal["nf4", "fp4"] = "nf4"
    double_quant: bool = True


class AdaloraTuning(_Targeted):
    """AdaLoRA: starts every matrix at `init_r` and prunes to an average of `r` over the run."""

    type: Literal["adalora"] = "adalora"
    r: Annotated[int, Field(ge=1, le=MAX_RANK)] = 8
    init_r: Annotated[int, Field(ge=1, le=MAX_RANK)] = 12
    alpha: Annotated[float, Field(gt=0, le=65_536)] = 32
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    tinit_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.1
    tfinal_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.2
    delta_t: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 1
    orth_reg_weight: Annotated[float, Field(ge=0, le=1000)] = 0.5
    quantization: Literal["none", "int8"] = "none"

    @model_validator(mode="after")
    def _ranks(self) -> AdaloraTuning:
        if self.init_r < self.r:
            raise ValueError(f"adalora init_r ({self.init_r}) must be >= r ({self.r}): it prunes from init_r down to r")
        if self.tinit_ratio + self.tfinal_ratio >= 1:
            raise ValueError("adalora tinit_ratio + tfinal_ratio must be < 1 to leave steps for pruning")
        return self


class Ia3Tuning(_Strict):
    type: Literal["ia3"] = "ia3"
    target_modules: TargetModules | None = Field(
        default=None, description="Default: the model family's keys, values and feed-forward output."
    )
    feedforward_modules: Annotated[list[str], Field(max_length=MAX_MODULE_NAMES)] | None = None
    quantization: Literal["none", "int8"] = "none"

    _targets = field_validator("target_modules")(classmethod(lambda cls, v: _check_targets(v)))

    @model_validator(mode="after")
    def _ff_subset(self) -> Ia3Tuning:
        if self.feedforward_modules and isinstance(self.target_modules, list):
            extra = set(self.feedforward_modules) - set(self.target_modules)
            if extra:
                raise ValueError(f"ia3 feedforward_modules {sorted(extra)} must also be in target_modules")
        return self


class _VirtualTokens(_Strict):
    num_virtual_tokens: Annotated[int, Field(ge=1, le=1024)] = 20


class PrefixTuning(_VirtualTokens):
    """Prefix tuning with the reparametrisation MLP (Li & Liang 2021)."""

    type: Literal["prefix_tuning"] = "prefix_tuning"
    encoder_hidden_size: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 512


class PTuningV2Tuning(_VirtualTokens):
    """Deep prompts at every layer, no reparametrisation (Liu et al. 2022)."""

    type: Literal["p_tuning_v2"] = "p_tuning_v2"


class PromptTuning(_VirtualTokens):
    """A soft prompt on the input embeddings (Lester et al. 2021), optionally initialised from text."""

    type: Literal["prompt_tuning"] = "prompt_tuning"
    init_text: Annotated[str, Field(min_length=1, max_length=4096)] | None = None


class PTuning(_VirtualTokens):
    """P-tuning: virtual tokens produced by a prompt encoder (Liu et al. 2021)."""

    type: Literal["p_tuning"] = "p_tuning"
    encoder_hidden_size: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 128
    encoder_type: Literal["MLP", "LSTM"] = "MLP"


class _LycorisFields(_Targeted):
    """LoHa and LoKr (the LyCORIS family) share rank, alpha and their two dropouts."""

    r: Annotated[int, Field(ge=1, le=MAX_RANK)] = 8
    alpha: Annotated[float, Field(gt=0, le=65_536)] = 16
    rank_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    module_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class LohaTuning(_LycorisFields):
    type: Literal["loha"] = "loha"


class LokrTuning(_LycorisFields):
    type: Literal["lokr"] = "lokr"
    decompose_both: bool = False


class AdapterTuning(_Strict):
    """Houlsby bottleneck adapters after attention and feed-forward (see bottleneck.py)."""

    type: Literal["adapter"] = "adapter"
    bottleneck_size: Annotated[int, Field(ge=1, le=MAX_WIDTH)] = 64
    non_linearity: Literal["relu", "gelu", "silu", "tanh"] = "gelu"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    target_modules: list[str] | None = Field(
        default=None, description="Default: the attention output and feed-forward output projections."
    )

    _targets = field_validator("target_modules")(classmethod(lambda cls, v: _check_targets(v)))


class FreezeTuning(_Strict):
    """Train only the last `trainable_layers` transformer blocks (LLaMA-Factory's `freeze`)."""

    type: Literal["freeze"] = "freeze"
    trainable_layers: Annotated[int, Field(ge=1, le=MAX_LAYERS)] = 2
    train_embeddings: bool = False


class FullTuning(_Strict):
    type: Literal["full"] = "full"


Tuning = Annotated[
    LoraTuning | DoraTuning | QloraTuning | AdaloraTuning | Ia3Tuning | PrefixTuning | PTuningV2Tuning
    | PromptTuning | PTuning | LohaTuning | LokrTuning | AdapterTuning | FreezeTuning | FullTuning,
    Field(discriminator="type"),
]

PROMPT_TYPES = frozenset({"prefix_tuning", "p_tuning_v2", "prompt_tuning", "p_tuning"})
FULL_WEIGHT_TYPES = frozenset({"freeze", "full"})


# ---------------------------------------------------------------------------------------------------
# The studio's `training`


class Training(_Strict):
    """Trainer knobs. `None` means "pick for me" (resolved in the training plan and recorded)."""

    learning_rate: Annotated[float, Field(gt=0, le=1)] | None = None
    max_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    max_seq_length: Annotated[int, Field(ge=1, le=1_048_576)] = 1024
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=1024)] = 1
    packing: bool = False
    group_by_length: bool = True
    completion_only_loss: bool = True
    gradient_checkpointing: bool = False
    logging_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 1
    eval_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    save_steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] | None = None
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.03
    lr_scheduler: Literal[
        "linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"
    ] = "cosine"
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0
    max_grad_norm: Annotated[float, Field(gt=0, le=1e6)] = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"

    @model_validator(mode="after")
    def _packing_vs_grouping(self) -> Training:
        if self.packing and "group_by_length" in self.model_fields_set and self.group_by_length:
            raise ValueError("training.packing and training.group_by_length are alternatives; pick one")
        return self


# ---------------------------------------------------------------------------------------------------
# The job


class JobSpec(_Strict):
    """The body of `POST /v1/fine_tuning/jobs` (and of `studio train JOB.json`)."""

    model: Annotated[str, Field(min_length=1, max_length=512)]
    training_file: Annotated[str, Field(min_length=1, max_length=4096)]
    validation_file: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    suffix: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] | None = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    metadata: dict[str, str] | None = None
    method: Method = Field(default_factory=Method)
    tuning: Tuning = Field(default_factory=LoraTuning)
    training: Training = Field(default_factory=Training)
    priority: Annotated[int, Field(ge=-100, le=100)] = 0
    integrations: Annotated[list[dict[str, Any]], Field(max_length=16)] | None = None

    @field_validator("integrations")
    @classmethod
    def _no_integrations_yet(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        """Accepted and ignored, a wandb integration would be a silent lie: refuse until trackers are wired."""
        if value:
            kinds = sorted({str(i.get("type")) for i in value})
            raise ValueError(f"integrations ({', '.join(kinds)}) are not supported yet: leave the field out or "
                             "send an empty list; each run's metrics are in GET /v1/fine_tuning/jobs/{id}/events")
        return value

    @model_validator(mode="before")
    @classmethod
    def _legacy_hyperparameters(cls, data: Any) -> Any:
        """OpenAI's older top-level `hyperparameters` maps onto `method.supervised.hyperparameters`."""
        if isinstance(data, dict) and "hyperparameters" in data:
            data = dict(data)
            legacy = data.pop("hyperparameters")
            if data.get("method") is not None:
                raise ValueError("give hyperparameters either at the top level (legacy) or inside method, not both")
            data["method"] = {"type": "supervised", "supervised": {"hyperparameters": legacy}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _quantization_fits_type(cls, data: Any) -> Any:
        """Say which quantization a type can use instead of a bare "unknown field"."""
        tuning = data.get("tuning") if isinstance(data, dict) else None
        if isinstance(tuning, dict) and tuning.get("quantization") not in (None, "none"):
            kind = tuning.get("type", "lora")
            if kind in TUNING_TYPES and kind not in QUANTIZABLE:
                raise ValueError(
                    f"tuning type '{kind}' cannot train on a quantized base; use qlora (4-bit) "
                    "or lora with quantization 'int8'"
                )
        return data

    @field_validator("metadata")
    @classmethod
    def _metadata_limits(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return None
        if len(value) > 16:
            raise ValueError(f"metadata has {len(value)} pairs; at most 16 are allowed")
        for key, item in value.items():
            if len(key) > 64:
                raise ValueError(f"metadata key {key[:20]!r}... is {len(key)} characters; keys are at most 64")
            if len(item) > 512:
                raise ValueError(f"metadata value for {key!r} is {len(item)} characters; values are at most 512")
            try:  # a JSON escape like \\ud800 stands alone: not UTF-8, so it cannot be stored or shown
                key.encode("utf-8"), item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"metadata key {key!r} or its value contains a lone UTF-16 surrogate (an unpaired "
                                 "\\ud800-\\udfff escape); fix or remove that character") from None
        return value

    @model_validator(mode="after")
    def _stage_fits_tuning(self) -> JobSpec:
        if self.method.type == "dpo" and self.tuning.type in PROMPT_TYPES:
            raise ValueError(
                f"dpo with tuning type '{self.tuning.type}' is not supported; use lora, qlora, dora or full"
            )
        return self

    @property
    def stage(self) -> str:
        return self.method.type


class SpecError(ValueError):
    """A job body that cannot run, with one message a person can act on."""


class FitError(SpecError):
    """A tuning field too large for the chosen model; `param` names the field."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def check_fits_model(spec: JobSpec, config: dict[str, Any]) -> None:
    """Refuse ranks and widths above the model's hidden size, and more trainable blocks than it has.

    A LoRA update of rank r on a d-wide layer has rank at most d: above it the adapter only adds parameters
    (r=4096 on a 256-wide model trains 11x the model's own weights). `config` is the model's config.json;
    fields it lacks are not checked (the worker still is)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    hidden, layers = text.get("hidden_size"), text.get("num_hidden_layers")
    tuning = spec.tuning
    if isinstance(hidden, int) and hidden > 0:
        for name in ("r", "init_r", "bottleneck_size"):
            value = getattr(tuning, name, None)
            if isinstance(value, int) and value > hidden:
                raise FitError(
                    f"tuning.{name} is {value}, above the model's hidden size {hidden}: an adapter of that size "
                    f"adds parameters without adding capacity; use tuning.{name} <= {hidden} "
                    "(8-64 is typical)", f"tuning.{name}")
    if isinstance(layers, int) and layers > 0 and tuning.type == "freeze" and tuning.trainable_layers > layers:
        raise FitError(f"tuning.trainable_layers is {tuning.trainable_layers} but the model has {layers} blocks; "
                       f"use at most {layers} (or tuning type 'full')", "tuning.trainable_layers")


def parse_spec(data: dict[str, Any] | str | bytes) -> JobSpec:
    """Validate a job body (dict or JSON text); raise `SpecError` with readable messages."""
    try:
        if isinstance(data, (str, bytes)):
            return JobSpec.model_validate_json(data)
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """Render pydantic errors as `field.path: message` lines a person can act on.

    A field that is "a number or 'auto'" fails both union members; one line per field is enough, and a
    number out of range reads better than "should be 'auto'".
    """
    parts: dict[str, str] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not _is_union_tag(p))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the job spec documentation)"
        elif err["type"] == "union_tag_invalid":
            message = f"unknown tuning type; expected one of: {', '.join(TUNING_TYPES)}"
        elif err["type"] in _SHOW_INPUT and err.get("input") is not None:
            message = f"{message} (got {err['input']!r})"
        if any("literal[" in str(p) for p in err["loc"]) and loc in parts:
            continue
        if loc in parts and err["type"] == "literal_error":
            continue
        parts.setdefault(loc, f"{loc}: {message}" if loc else message)
    lines = list(parts.values())
    more = len(lines) - limit
    return "; ".join(lines[:limit] + ([f"(and {more} more)"] if more > 0 else []))


def error_param(exc: ValidationError) -> str | None:
    """The dotted path of the first invalid field (OpenAI's `param`)."""
    for err in exc.errors():
        return ".".join(str(p) for p in err["loc"] if not _is_union_tag(p)) or None
    return None


_SHOW_INPUT = {"literal_error", "greater_than", "greater_than_equal", "less_than", "less_than_equal"}
QUANTIZABLE = {"lora": "none, int8", "dora": "none, int8", "adalora": "none, int8", "ia3": "none, int8",
               "qlora": "nf4, fp4"}


def _is_union_tag(part: Any) -> bool:
    """Parts of pydantic's error location that name a union member, not a field."""
    if not isinstance(part, str):
        return False
    return (part in TUNING_TYPES or part.startswith(("function-", "constrained-", "literal[", "nullable"))
            or part in ("int", "float", "str", "bool", "dict[str,str]", "list[str]"))

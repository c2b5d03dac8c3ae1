"""OpenAI's chat completions and completions: requests (unknown fields ignored, as OpenAI clients send
many) and responses, streamed chunks included."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


def refuse_if(asked: bool, name: str, value: Any = None) -> Any:
    """OpenAI fields the studio does not implement are refused by name when a request asks for them, rather
    than answered as if honoured; their default values (which some clients always send) pass."""
    if asked:
        raise ValueError(f"{name} is not supported by the studio; leave it out (docs/inference.md)")
    return value


def _text_of(value: Any) -> str:
    """A message's content: a string, or OpenAI's list of `{"type": "text", "text"}` parts (joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                       and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    raise ValueError("content must be a string or a list of {\"type\": \"text\", \"text\": ...} parts "
                     "(only text is supported)")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: Any) -> str:
        return _text_of(value)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class SamplingRequest(BaseModel):
    """What both endpoints share. `max_tokens` is capped by the server (`STUDIO_INFERENCE_MAX_TOKENS`)."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2, description="0 = greedy; default 1.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling; default 1.")
    n: int | None = Field(default=None, description="Only 1 is supported.")
    stop: str | list[str] | None = Field(default=None, description="Up to 4 strings; the text ends before one.")
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63 - 1,  # OpenAI's range; the worker's torch takes it
                             description="The same seed and parameters give the same answer (a 64-bit integer).")
    stream: bool | None = False
    stream_options: StreamOptions | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported")
        return value

    @field_validator("stop", mode="before")
    @classmethod
    def _stops(cls, value: Any) -> Any:
        if isinstance(value, list) and (len(value) > 4 or not all(isinstance(s, str) for s in value)):
            raise ValueError("stop takes a string or a list of up to 4 strings")
        return value

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    logit_bias: dict[str, Any] | None = Field(default=None, description="Not supported: only empty or null.")

    @field_validator("logit_bias")
    @classmethod
    def _no_logit_bias(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return refuse_if(bool(value), "logit_bias", value)


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, description="OpenAI's newer name for max_tokens.")
    logprobs: bool | None = Field(default=None, description="Not supported: only false or null.")
    top_logprobs: int | None = Field(default=None, description="Not supported: only 0 or null.")
    tools: list[Any] | None = Field(default=None, description="Not supported: only an empty list or null.")
    tool_choice: Any = Field(default=None, description='Not supported: only "none" or null.')
    response_format: dict[str, Any] | None = Field(default=None, description='Only {"type": "text"}.')

    @field_validator("logprobs", "top_logprobs", "tools")
    @classmethod
    def _unset(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_if(bool(value), info.field_name)

    @field_validator("tool_choice")
    @classmethod
    def _no_tool_choice(cls, value: Any) -> Any:
        return refuse_if(value not in (None, "none"), "tool_choice", value)

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return refuse_if(value is not None and value.get("type") != "text", "response_format", value)


class CompletionRequest(SamplingRequest):
    prompt: str
    logprobs: int | None = Field(default=None, description="Not supported: only 0 or null.")
    echo: bool | None = Field(default=None, description="Not supported: only false or null.")
    best_of: int | None = Field(default=None, description="Only 1 is supported.")

    @field_validator("logprobs", "echo")
    @classmethod
    def _unset(cls, value: Any, info: ValidationInfo) -> Any:
        return refuse_if(bool(value), info.field_name)

    @field_validator("best_of")
    @classmethod
    def _one(cls, value: int | None) -> int | None:
        return refuse_if(value not in (None, 1), "best_of", value)

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
            return value[0]
        if not isinstance(value, str):
            raise ValueError("prompt must be a string (or a list of exactly one string)")
        return value


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str  # stop | length
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A whole chat answer (`chat.completion`)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One streamed piece of a chat answer (`data: {...}` of the SSE stream)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(BaseModel):
    """A completion (`text_completion`); streamed chunks have the same shape with a piece of `text`."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None

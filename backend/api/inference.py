"""`/v1/chat/completions` and `/v1/completions`: OpenAI-compatible inference on a base model or an adapter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from backend.api.deps import CurrentPrincipal, SessionDep, SettingsDep
from backend.schemas.inference import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
)
from backend.services import inference as service
from backend.services.job_checks import inline_schema
from backend.services.registry import resolve_served_model

router = APIRouter(prefix="/v1", tags=["inference"])
RawBody = Annotated[Any, Body(include_in_schema=False)]
STREAMED = {"description": "With `stream: true`: Server-Sent Events, `data: {chunk}` … `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}}


def body_schema(model) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inline_schema(
        model.model_json_schema())}}}}


def _resolve(session: Session, settings, principal, model: str):
    """What to load, then the session's connection goes back to the pool: the answer that follows may
    take minutes, and twenty waiting chats must not hold the connections every other request needs."""
    try:
        return resolve_served_model(session=session, settings=settings, model=model, principal=principal)
    finally:
        session.close()


async def _answer(request: Request, session, settings, principal, parsed):
    served = await run_in_threadpool(_resolve, session, settings, principal, parsed.model)
    return await service.answer(queue=request.app.state.queue, settings=settings, served=served, request=parsed)


@router.post("/chat/completions", response_model=ChatCompletion, responses={200: STREAMED},
             openapi_extra=body_schema(ChatCompletionRequest))
async def create_chat_completion(request: Request, session: SessionDep, settings: SettingsDep,
                                 principal: CurrentPrincipal, body: RawBody = None):
    """Chat with a base model or an adapter (`name`, `name:version`, `name@alias`); runs on a worker."""
    return await _answer(request, session, settings, principal, service.parse(ChatCompletionRequest, body))


@router.post("/completions", response_model=Completion, responses={200: STREAMED},
             openapi_extra=body_schema(CompletionRequest))
async def create_completion(request: Request, session: SessionDep, settings: SettingsDep,
                            principal: CurrentPrincipal, body: RawBody = None):
    """Continue a raw prompt with a base model or an adapter; runs on a worker."""
    return await _answer(request, session, settings, principal, service.parse(CompletionRequest, body))

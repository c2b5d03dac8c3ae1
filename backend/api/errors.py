"""OpenAI's error envelope for every error: `{"error": {"message", "type", "param", "code"}}`.

`APIError` is what routes and services raise for the caller's mistakes; `install_error_handlers` maps
it, Starlette's HTTP errors (unknown route 404, 405, 413), request validation (422), values the database
refuses (400) and any unexpected exception (500, no traceback in the body) onto the envelope.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("studio.api")

_LOCATIONS = ("body", "query", "path", "header", "cookie")


class APIError(Exception):
    """An error with an HTTP status and an OpenAI-style body."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or error_type(status)
        self.headers = headers


def not_found(kind: str, id_: str, param: str) -> APIError:
    """404 for an unknown resource id, e.g. `not_found("file", "file-x", "file_id")`."""
    return APIError(404, f"No such {kind}: '{id_}'.", param=param, code=f"{kind.replace(' ', '_')}_not_found")


def error_type(status: int) -> str:
    if status in (401,):
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_response(status: int, message: str, *, type: str | None = None, param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": type or error_type(status), "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _param(loc: Sequence[Any]) -> str | None:
    parts = list(loc[1:] if loc and loc[0] in _LOCATIONS else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _validation_message(errors: Sequence[dict]) -> tuple[str, str | None]:
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    param = _param(first.get("loc", ()))
    if first.get("type") == "missing":
        message = f"Missing required parameter: '{param}'." if param else "Missing request body."
    elif first.get("type") == "json_invalid":
        message = f"The request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})."
        param = None
    elif param:
        message = f"Invalid value for '{param}': {first.get('msg')}."
    else:
        message = f"Invalid request: {first.get('msg')}."
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})"
    return message, param


def api_error_response(exc: APIError) -> JSONResponse:
    """An `APIError` as the response that answers it (also for middleware, which runs outside the handlers)."""
    return error_response(exc.status, exc.message, type=exc.type, param=exc.param, code=exc.code,
                          headers=exc.headers)


async def _api_error(_request: Request, exc: APIError) -> JSONResponse:
    return api_error_response(exc)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404 and exc.detail == "Not Found":
        message, code = f"Invalid URL ({request.method} {request.url.path}).", "unknown_url"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} is not allowed for {request.url.path}" + (
            f"; allowed: {allowed}." if allowed else ".")
        return error_response(405, message, code="method_not_allowed",
                              headers={**(exc.headers or {}), **({"Allow": allowed} if allowed else {})})
    elif exc.status_code == 413:  # guards.BodyLimit, while the route read its body
        from backend.api.guards import too_large_message

        message, code = too_large_message(request.app.state.settings.max_request_bytes), "request_too_large"
    else:
        message, code = str(exc.detail), None
    return error_response(exc.status_code, message, code=code, headers=exc.headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's Allow names only the first route's)."""
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    message, param = _validation_message(exc.errors())
    return error_response(422, message, param=param, code="invalid_value")


async def _data_error(request: Request, exc: DataError) -> JSONResponse:
    """The database refused a value the caller sent (PostgreSQL: a NUL character in text, an integer out of
    range) — the caller's mistake, not a server error."""
    log.info("database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
    return error_response(400, "The request contains a value that cannot be stored or looked up (a NUL character "
                               "in a string, or a number out of range).", code="invalid_value")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "The server had an error while processing your request. "
                               "The error was logged; please retry or report it.")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the envelope."""
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)

"""Errors as RFC 9457 problem details (``application/problem+json``), never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from trailseal.errors import (
    AlreadyExistsError,
    AuthenticationError,
    BatchError,
    BusyError,
    ConfigError,
    EventError,
    IdConflictError,
    LineProblem,
    NotFoundError,
    NothingToEraseError,
    PermissionDeniedError,
    ProofError,
    PurgedError,
    QueryError,
    StorageError,
    TrailsealError,
    VerificationError,
)

PROBLEM = "application/problem+json"
RETRY = {"Retry-After": "5"}
logger = logging.getLogger("trailseal.server")


class Problem(Exception):  # noqa: N818 - named after RFC 9457's term
    """An HTTP error with a title, a detail and, for bad fields, their JSON pointers."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


def pointer(path: str) -> str:
    """A JSON path such as ``$.actor.id`` or ``$[3].time`` as a JSON pointer."""
    body = path.removeprefix("$").replace("[", ".").replace("]", "")
    return "/" + "/".join(part for part in body.split(".") if part) if body else ""


def render(problem: Problem, instance: str) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM, headers=problem.headers
    )


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return render(exc, request.url.path)


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return render(Problem(exc.status_code, "HTTP error", str(exc.detail)), request.url.path)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "pointer": "/" + "/".join(str(p) for p in error.get("loc", ())),
            "detail": error.get("msg"),
        }
        for error in exc.errors()
    ]
    return render(
        Problem(422, "Invalid request", "the request's parameters are invalid", errors),
        request.url.path,
    )


def line_pointer(problem: LineProblem) -> dict[str, Any]:
    """One bad event of a batch: its position (0-based) and field, as a JSON pointer."""
    return {
        "pointer": f"/{problem.line - 1}{pointer(problem.error.field)}",
        "detail": problem.error.message,
    }


def _batch(exc: BatchError) -> Problem:
    count = exc.lines if exc.lines is not None else len(exc.problems)
    bad = len({problem.line for problem in exc.problems})
    return Problem(
        422,
        "Invalid events",
        f"{bad} of {count} events are invalid; nothing was appended",
        [line_pointer(problem) for problem in exc.problems],
    )


# The HTTP answer to each kind of domain error, most specific first (the application
# layer knows no HTTP). A store that cannot append durably, or a signer refusing an
# inconsistent checkpoint, answers 503: never a 2xx for what is not durable.
_ANSWERS: tuple[tuple[type[TrailsealError], int, str], ...] = (
    (AuthenticationError, 401, "Unauthorized"),
    (PermissionDeniedError, 403, "Forbidden"),
    (IdConflictError, 409, "Id conflict"),
    (NothingToEraseError, 409, "Cannot erase"),
    (PurgedError, 410, "Purged"),
    (NotFoundError, 404, "Not found"),
    (ProofError, 400, "No such proof"),
    (EventError, 400, "Bad request"),
    (AlreadyExistsError, 409, "Conflict"),
    (StorageError, 503, "Log unavailable"),
    (BusyError, 429, "Busy"),
    (VerificationError, 503, "Log unavailable"),
    (ConfigError, 400, "Bad request"),
)
_HEADERS = {401: {"WWW-Authenticate": "Bearer"}, 429: RETRY, 503: RETRY}


def problem_for(exc: TrailsealError) -> Problem:
    """The problem document answering a domain error."""
    if isinstance(exc, BatchError):
        return _batch(exc)
    if isinstance(exc, QueryError):
        where = {"pointer": f"/{exc.field}", "position": exc.position, "detail": exc.message}
        return Problem(400, "Bad query", str(exc), [where])
    for kind, status, title in _ANSWERS:
        if isinstance(exc, kind):
            detail = exc.message if isinstance(exc, IdConflictError | ProofError) else str(exc)
            return Problem(status, title, detail, headers=_HEADERS.get(status))
    return Problem(500, "Internal error", str(exc))


async def on_domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TrailsealError)
    return render(problem_for(exc), request.url.path)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Never a stack trace to the client; the server's own log gets it."""
    logger.error("unexpected error on %s", request.url.path, exc_info=exc)
    return render(
        Problem(500, "Internal error", "the server failed; the error is in its own log"),
        request.url.path,
    )


class ProblemDocument(BaseModel):
    """The shape of every error response (RFC 9457), for the OpenAPI document."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid token",
    403: "The role may not",
    404: "Not found",
    409: "Conflict",
    410: "Purged under its retention policy (its hashes and proofs remain)",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid events",
    429: "Rate limited",
    503: "The log cannot append or record",
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM: {"schema": ProblemDocument.model_json_schema()}},
    }
    for status, description in _DESCRIPTIONS.items()
}

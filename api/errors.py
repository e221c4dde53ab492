"""Service-level errors and the ONE place where every error becomes an HTTP answer.

Routers and services never raise ``HTTPException``: they raise domain errors (the
:mod:`ledger.errors` tree or the service errors below), and :func:`install_handlers` maps
them to RFC 7807 ``application/problem+json`` responses.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import errors as le

PROBLEM_TYPE_BASE = "https://yima.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_log = logging.getLogger("yima.api")


class ServiceError(Exception):
    """Root of errors raised by the service layer (not tamper evidence: access and input)."""

    status = 400
    slug = "bad-request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class AuthenticationError(ServiceError):
    """No or unknown bearer token."""

    status = 401
    slug = "unauthenticated"


class PermissionDenied(ServiceError):
    """The caller is known but may not do this."""

    status = 403
    slug = "forbidden"


class NotFound(ServiceError):
    """The resource does not exist."""

    status = 404
    slug = "not-found"


class Conflict(ServiceError):
    """The request contradicts what the log already holds."""

    status = 409
    slug = "conflict"


class RateLimited(ServiceError):
    """Too many requests from this client."""

    status = 429
    slug = "rate-limited"


class BadRequest(ServiceError):
    """The request is malformed."""

    status = 400
    slug = "bad-request"


# Order matters: the first matching class wins (subclasses before their parents).
_LEDGER_MAP: tuple[tuple[type[le.LedgerError], int, str], ...] = (
    (le.CodeError, 422, "bad-code"),
    (le.EpcisValidationError, 422, "invalid-epcis"),
    (le.EncodingError, 422, "invalid-encoding"),
    (le.SignatureError, 422, "bad-signature"),
    (le.ChainError, 409, "producer-chain"),
    (le.IntegrityError, 422, "integrity"),
    (le.ConflictError, 409, "conflict"),
    (le.NotFoundError, 404, "not-found"),
    (le.AuthorizationError, 403, "forbidden"),
    (le.RuleViolation, 422, "rule-violation"),
    (le.LedgerError, 400, "ledger-error"),
)


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build an RFC 7807 problem-details response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _ledger_problem(exc: le.LedgerError) -> JSONResponse:
    for cls, status, slug in _LEDGER_MAP:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if exc.expected is not None or exc.actual is not None:
                extra = {"expected": _jsonable(exc.expected), "actual": _jsonable(exc.actual)}
            if isinstance(exc, le.EpcisValidationError):
                extra["path"] = exc.path
            return problem(status, slug, type(exc).__name__, exc.message, **extra)
    raise AssertionError("unreachable: LedgerError is the last entry")  # pragma: no cover


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def install_handlers(app: FastAPI) -> None:
    """Map domain errors to problem+json responses — the only such mapping in the service."""

    @app.exception_handler(le.LedgerError)
    async def _ledger(_: Request, exc: le.LedgerError) -> JSONResponse:
        return _ledger_problem(exc)

    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, AuthenticationError):
            headers["WWW-Authenticate"] = 'Bearer realm="yima"'
        if isinstance(exc, RateLimited) and "retry_after" in exc.extra:
            headers["Retry-After"] = str(exc.extra["retry_after"])
        return problem(
            exc.status,
            exc.slug,
            type(exc).__name__,
            exc.message,
            headers=headers or None,
            **{k: _jsonable(v) for k, v in exc.extra.items()},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return problem(
            422, "invalid-request", "Invalid request", "the request is malformed", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Routing errors (unknown path, wrong method) are problems too.
        phrase = HTTPStatus(exc.status_code).phrase
        slug = phrase.lower().replace(" ", "-")
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, slug, phrase, str(exc.detail), headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never leak internals to clients; the log keeps the traceback.
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal", "Internal Server Error", "an unexpected error occurred")

"""Every refusal is a 4xx JSON `{"detail": "<what was wrong>", "code": "<stable id>"}`.

Bad input never becomes a 500, and no endpoint answers 200 with a failure inside.
"""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from digitflow.storage import StorageUnavailable
from recognition import errors

logger = logging.getLogger("digitflow.api")

# Most specific first: TruncatedImage is an UndecodableImage.
IMAGE_ERROR_STATUS: list[tuple[type[errors.ImageError], int]] = [
    (errors.ImageTooLarge, 413),
    (errors.EmptyImage, 422),
    (errors.TruncatedImage, 400),
    (errors.UndecodableImage, 400),
    (errors.InvalidDataURL, 400),
    (errors.ImageError, 400),
]


class ApiError(Exception):
    """A refusal the API decides on itself (not the recognition core's)."""

    headers: dict[str, str] | None = None  # e.g. Retry-After, WWW-Authenticate

    def __init__(self, status_code: int, code: str, detail: str, **extra):
        super().__init__(detail)
        self.status_code, self.code, self.detail = status_code, code, detail
        self.extra = extra  # more JSON fields of the answer (e.g. every refused file)


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int):
        super().__init__(413, "payload_too_large", f"the request body is larger than {limit} bytes")


class UnsupportedMediaType(ApiError):
    def __init__(self, got: str | None, expected: str):
        super().__init__(
            415, "unsupported_media_type", f"Content-Type must be {expected}, got {got or 'none'}"
        )


class InvalidRequest(ApiError):
    def __init__(self, detail: str):
        super().__init__(422, "validation_error", detail)


class ModelUnavailable(ApiError):
    def __init__(self, reason: str):
        super().__init__(503, "model_unavailable", f"the model is not loaded: {reason}")


def error_response(status_code: int, code: str, detail, **extra) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code, **extra}, status_code=status_code)


def status_for(exc: errors.ImageError) -> int:
    return next(status for kind, status in IMAGE_ERROR_STATUS if isinstance(exc, kind))


async def _image_error(request: Request, exc: errors.ImageError) -> JSONResponse:
    return error_response(status_for(exc), exc.code, str(exc))


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    response = error_response(exc.status_code, exc.code, exc.detail, **exc.extra)
    response.headers.update(exc.headers or {})
    return response


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
    ]
    return error_response(422, "validation_error", "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    if exc.status_code in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
        detail = f"{detail}: {request.method} {request.url.path}"  # routing's own refusals
    response = error_response(exc.status_code, f"http_{exc.status_code}", detail)
    response.headers.update(exc.headers or {})
    return response


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug in the platform, not bad input: log it with its traceback, say little to the client.
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
    # The client hung up before its body arrived: nobody reads this answer, and it is no error
    # of ours (an upload cut off this way keeps nothing).
    logger.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(400, "client_disconnected", "the client went away mid-request")


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # A database or storage outage is the server's trouble, not the client's: 503, not 500.
    what = "object storage" if isinstance(exc, StorageUnavailable) else "the database"
    logger.warning("%s unavailable on %s %s: %s", what, request.method, request.url.path, exc)
    response = error_response(503, "unavailable", f"{what} is unavailable, retry later")
    response.headers["Retry-After"] = "5"
    return response


def register_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(StorageUnavailable, _unavailable)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(InterfaceError, _unavailable)
    app.add_exception_handler(errors.ImageError, _image_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)

"""Request bodies read with a size limit: refused with 413 before they fill memory.

The declared Content-Length is checked first (the server never delivers more than it declares);
a chunked body with no length is counted as it streams in.
"""

from collections.abc import Awaitable, Callable

from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from api.errors import ApiError, InvalidRequest, PayloadTooLarge, UnsupportedMediaType

MAX_BOUNDARY_CHARS = 70  # RFC 2046


def check_content_type(request: Request, expected: str) -> None:
    got = request.headers.get("content-type")
    if got is None or got.split(";", 1)[0].strip().lower() != expected:
        raise UnsupportedMediaType(got, expected)


def multipart_boundary(request: Request) -> bytes:
    """The boundary of a multipart/form-data body; 415 for any other content type."""
    got = request.headers.get("content-type")
    content_type, options = parse_options_header(got or "")
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaType(got, "multipart/form-data")
    if len(boundary) > MAX_BOUNDARY_CHARS:
        raise ApiError(
            400, "malformed_multipart", f"the multipart boundary is over {MAX_BOUNDARY_CHARS} "
            "characters (RFC 2046)",
        )  # fmt: skip
    return boundary


def limited(request: Request, limit: int) -> Request:
    """This request, or a copy whose body stream raises 413 once it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest(f"invalid Content-Length header: {declared!r}")
        if int(declared) > limit:
            raise PayloadTooLarge(limit)
        return request
    return Request(request.scope, _counting(request.receive, limit))


async def read_body(request: Request, limit: int) -> bytes:
    request = limited(request, limit)
    return await request.body()


def _counting(receive: Callable[[], Awaitable[dict]], limit: int):
    received = 0

    async def counting_receive() -> dict:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(limit)
        return message

    return counting_receive

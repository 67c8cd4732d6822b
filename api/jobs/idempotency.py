"""Idempotency-Key, bound to the request it was first sent with.

A key names one upload. A retry with the key of an upload that completed gets that job back,
but only if it sends the same body: the body's hash (with the multipart boundary left out, since
a client picks a new one for each request) is recorded when the upload completes and compared
with the retry's. The hash is taken over the raw bytes as they stream, so it does not depend on
how the body is parsed, and a retry of a completed upload is only hashed, never stored again.

A key whose upload never completed (the client went away, the API or the database died) names
no accepted job: a retry starts the upload afresh under the same key, replacing what was left.
"""

from collections.abc import AsyncIterator

from blake3 import blake3

from api.errors import ApiError

# Stands in for the boundary in the hashed stream.
BOUNDARY_MARK = b"\x00boundary\x00"


class KeyReused(ApiError):
    def __init__(self):
        super().__init__(
            422,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different upload: use a new key for new files",
        )


class UploadInProgress(ApiError):
    def __init__(self):
        super().__init__(
            409,
            "upload_in_progress",
            "another upload with this Idempotency-Key is in progress or was replaced by a retry; "
            "retry when it has ended",
        )


class BodyHash:
    """BLAKE3 of a multipart body with every occurrence of its boundary replaced by a mark (a
    fingerprint as strong as sha256, ~11x cheaper: every byte of a bulk upload goes through it)."""

    def __init__(self, boundary: bytes):
        self._boundary = boundary
        self._hash = blake3()
        self._tail = b""  # may hold the start of a boundary split across chunks

    def update(self, chunk: bytes) -> None:
        pieces = (self._tail + chunk).split(self._boundary)
        last = pieces.pop()
        # The last piece holds no whole boundary; its end may hold the start of one.
        cut = max(0, len(last) - (len(self._boundary) - 1))
        for piece in pieces:
            self._hash.update(piece)
            self._hash.update(BOUNDARY_MARK)
        self._hash.update(last[:cut])
        self._tail = last[cut:]

    def hexdigest(self) -> str:
        final = self._hash.copy()
        final.update(self._tail)
        return final.hexdigest()


async def hashed(chunks: AsyncIterator[bytes], body_hash: BodyHash) -> AsyncIterator[bytes]:
    """The same chunks, each added to `body_hash` on the way through."""
    async for chunk in chunks:
        body_hash.update(chunk)
        yield chunk


async def hash_body(chunks: AsyncIterator[bytes], boundary: bytes) -> str:
    body_hash = BodyHash(boundary)
    async for chunk in chunks:
        body_hash.update(chunk)
    return body_hash.hexdigest()

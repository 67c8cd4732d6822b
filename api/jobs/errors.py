"""The jobs domain's refusals."""

import uuid

from api.errors import ApiError


class JobNotFound(ApiError):
    def __init__(self, job_id: uuid.UUID):
        super().__init__(404, "job_not_found", f"no job with id {job_id}")


class InvalidCursor(ApiError):
    def __init__(self):
        super().__init__(422, "invalid_cursor", "cursor must be a next_cursor from a previous page")

"""The jobs domain's refusals."""

import uuid

from api.errors import ApiError


class JobNotFound(ApiError):
    def __init__(self, job_id: uuid.UUID):
        super().__init__(404, "job_not_found", f"no job with id {job_id}")


class InvalidCursor(ApiError):
    def __init__(self):
        super().__init__(422, "invalid_cursor", "cursor must be a next_cursor from a previous page")


class UploadGivenUp(ApiError):
    def __init__(self):
        super().__init__(
            409,
            "upload_given_up",
            "this upload was given up (a retry with the same Idempotency-Key replaced it, or it "
            "was idle too long); nothing of it was kept: send it again",
        )


class QueueFull(ApiError):
    def __init__(self, backlog_seconds: float, retry_after: int):
        super().__init__(
            503,
            "queue_full",
            f"the workers are about {backlog_seconds:.0f} s behind; send this upload later",
        )
        self.headers = {"Retry-After": str(retry_after)}

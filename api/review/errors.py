"""The review domain's refusals."""

import uuid

from api.errors import ApiError


class DocumentNotFound(ApiError):
    def __init__(self, document_id: uuid.UUID):
        super().__init__(404, "document_not_found", f"no document with id {document_id}")


class NotInQueue(ApiError):
    def __init__(self, document_id: uuid.UUID):
        super().__init__(
            404, "not_in_review_queue", f"document {document_id} was never sent to review"
        )


class AlreadyDecided(ApiError):
    def __init__(self, status: str):
        super().__init__(409, "already_decided", f"this document's review is final ({status})")


class NotClaimant(ApiError):
    def __init__(self):
        super().__init__(
            409, "not_claimant", "only the reviewer holding the claim may decide: claim it first"
        )


class LeaseExpired(ApiError):
    def __init__(self):
        super().__init__(
            409, "lease_expired", "your claim on this document expired: claim it again"
        )


class NothingToUndo(ApiError):
    def __init__(self, why: str):
        super().__init__(409, "nothing_to_undo", why)


class ImageMissing(ApiError):
    def __init__(self):
        super().__init__(404, "image_missing", "the stored scan of this document is gone")

"""What the review endpoints take and answer."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

DIGITS = r"^[0-9]+$"


class ClaimRequest(BaseModel):
    limit: int = Field(default=10, ge=1, le=100, description="claim up to this many items")
    job_id: uuid.UUID | None = Field(default=None, description="only this job's items")
    order: Literal["confidence", "oldest"] = Field(
        default="confidence", description="lowest confidence first, or oldest first"
    )
    exclude: list[uuid.UUID] = Field(
        default_factory=list, max_length=500, description="document ids to pass over (skipped)"
    )


class RenewRequest(BaseModel):
    document_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=500, description="which of your claims to renew (all if absent)"
    )


class DecisionRequest(BaseModel):
    action: Literal["accept", "correct", "unreadable"]
    text: str | None = Field(
        default=None, max_length=256, description="the correct digits (for `correct`)"
    )

    @model_validator(mode="after")
    def _digits_for_correct(self) -> "DecisionRequest":
        if self.action == "correct":
            text = (self.text or "").strip()
            if not text or not text.isascii() or not text.isdigit():
                raise ValueError("`correct` needs `text` made of the digits 0-9 only")
            self.text = text
        return self


class DigitBox(BaseModel):
    digit: int
    confidence: float
    box: Any | None = Field(default=None, description="where the digit is in the scan")


class ReviewItem(BaseModel):
    document_id: uuid.UUID
    job_id: uuid.UUID
    filename: str
    position: int
    status: str
    model_text: str
    confidence: float
    digits: list[DigitBox]
    reasons: list[str]
    keyings_required: int
    keyings_done: int
    model_version: str | None
    created_at: datetime
    age_seconds: float
    claimed: bool = Field(description="someone holds an unexpired lease on it")
    lease_expires_at: datetime | None
    image_url: str


class QueuePage(BaseModel):
    size: int = Field(description="items waiting for a decision")
    claimed: int = Field(description="of those, held by a reviewer's unexpired lease")
    oldest_age_seconds: float | None
    items: list[ReviewItem]


class Claim(BaseModel):
    lease_seconds: int
    lease_expires_at: datetime | None
    items: list[ReviewItem]


class Renewed(BaseModel):
    renewed: int
    lease_expires_at: datetime


class DecisionResult(BaseModel):
    document_id: uuid.UUID
    review_status: str
    final_text: str | None
    outcome: str = Field(
        description="final, awaiting_second_keying, disagreement (goes to a third) or undone"
    )
    keyings_required: int
    keyings_done: int


class HistoryEntry(BaseModel):
    at: datetime
    reviewer: str
    reviewer_name: str
    action: str
    text: str | None
    before: dict
    after: dict
    outcome: str
    reasons: list[str]
    model_version: str
    lease_expires_at: datetime | None


class History(BaseModel):
    document_id: uuid.UUID
    model_text: str | None
    review_status: str
    final_text: str | None
    entries: list[HistoryEntry]


class Interval(BaseModel):
    estimate: float | None
    low: float | None
    high: float | None
    sample: int
    errors: int
    confidence_level: float = 0.95


class ReviewerPace(BaseModel):
    reviewer: str
    reviewer_name: str
    decisions: int
    last_hour: int
    per_hour: float


class ReviewMetrics(BaseModel):
    documents_read: int
    flagged: int
    review_rate: float | None = Field(description="flagged / documents read")
    queue_size: int
    claimed: int
    oldest_age_seconds: float | None
    decided: int
    reviewers: list[ReviewerPace] = Field(description="decisions per hour, per reviewer")
    double_keyed: int = Field(description="double-keyed items with at least two keyings")
    agreement_rate: float | None = Field(
        description="share of double-keyed items whose first two keyings agreed"
    )
    auto_accept_error: Interval = Field(
        description="from the random audit: share of would-be auto-accepted readings that "
        "reviewers corrected or found unreadable, with a 95% Wilson interval"
    )

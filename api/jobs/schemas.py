"""What the jobs endpoints answer (JobPublic, JobCreated, ResultsPage...)."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field, create_model
from pydantic.fields import FieldInfo

from api.predict.schemas import PredictionBase


class Rejection(BaseModel):
    filename: str
    code: str = Field(description="stable machine-readable reason, e.g. undecodable_image")
    reason: str


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    status: str = Field(
        description="uploading (not accepted yet), queued, running, succeeded, "
        "partially_succeeded or failed"
    )
    layout: str = Field(
        description="auto: the reader decides; digit: one digit per document; field: several"
    )
    total: int = Field(description="documents accepted into the job")
    done: int = Field(description="documents finished: succeeded + failed")
    succeeded: int
    failed: int
    needs_review: int = Field(description="succeeded documents a person should check")
    reviewed: int = Field(default=0, description="flagged documents whose review is final")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    rejected: list[Rejection] = Field(description="files refused at upload, with the reason")
    error: str | None = Field(
        default=None, description="why the job failed as a whole (an upload that never completed)"
    )

    @computed_field(description="done / total, from 0 to 1")
    @property
    def progress(self) -> float:
        return round(self.done / self.total, 4) if self.total else 1.0

    @computed_field(description="flagged documents still waiting for a final review")
    @property
    def review_pending(self) -> int:
        return max(self.needs_review - self.reviewed, 0)

    @computed_field(description="the job has finished and every flagged document is reviewed")
    @property
    def review_complete(self) -> bool:
        return self.finished_at is not None and self.reviewed >= self.needs_review

    @computed_field
    @property
    def links(self) -> dict[str, str]:
        base = f"/jobs/{self.id}"
        return {"self": base, "results": f"{base}/results", "csv": f"{base}/results?format=csv"}


class JobCreated(JobPublic):
    pass


class StorageUse(BaseModel):
    jobs: int
    documents: int = Field(description="documents whose images are still stored")
    stored_bytes: int = Field(description="bytes of those images")


class JobList(BaseModel):
    items: list[JobPublic]


def nullable(model: type[BaseModel], name: str) -> type[BaseModel]:
    """`model`'s fields, each also null (and null by default): a document has no prediction
    while it is queued or when it failed."""
    fields = {
        key: (info.annotation | None, FieldInfo.merge_field_infos(info, default=None))
        for key, info in model.model_fields.items()
    }
    return create_model(name, __doc__=model.__doc__, **fields)


class Result(nullable(PredictionBase, "ResultPrediction")):
    """One document of a job: the prediction's public shape (as `/predict` answers it, null
    until there is one) and the document's own columns."""

    document_id: uuid.UUID
    position: int = Field(description="order of the document in the upload")
    filename: str
    status: str = Field(description="queued, succeeded or failed")
    error_code: str | None
    error: str | None
    timings: dict[str, float] | None
    model_text: str | None = Field(default=None, description="what the model read")
    final_text: str | None = Field(
        default=None, description="the reading that stands: the model's or the reviewer's"
    )
    review_status: str | None = Field(
        default=None, description="not_needed, pending, accepted, corrected or unreadable"
    )
    reviewed_by: str | None = Field(default=None, description="the reviewer's key name")
    reviewed_at: datetime | None = None


# The CSV: one row per Result, these of its columns (the nested digits and fields stay in JSON).
CSV_COLUMNS = [
    "position", "filename", "status", "text", "confidence", "needs_review",
    "model_version", "error_code", "error", "document_id",
    "model_text", "final_text", "review_status", "reviewed_by", "reviewed_at",
]  # fmt: skip


class ResultsPage(BaseModel):
    job_id: uuid.UUID
    items: list[Result]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")

from typing import Literal

from pydantic import BaseModel, Field, TypeAdapter, model_validator

Layout = Literal["auto", "digit", "field"]
LAYOUT_DESCRIPTION = (
    "auto (default): find the marks and read one digit or a field of several; digit: all the "
    "ink is one digit; field: a row of digits (an amount, an account number); cheque: a whole "
    "cheque front (the amount box is found and read: `fields.amount`, `text` is the amount); "
    "or a registered document type's name (GET /document-types): one entry per field."
)


class DrawingRequest(BaseModel):
    image: str = Field(
        description="The canvas as a data URL: `data:image/png;base64,...` (any supported format).",
        examples=["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."],
    )
    layout: Layout = Field("auto", description=LAYOUT_DESCRIPTION)


REVIEW_REASONS = "low_confidence, not_a_digit, ambiguous_segmentation, too_many_digits"


class BoxPublic(BaseModel):
    x: int
    y: int
    width: int
    height: int

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value):
        # Results stored by the first field reader keep boxes as [x, y, width, height].
        if isinstance(value, list | tuple) and len(value) == 4:
            return dict(zip(("x", "y", "width", "height"), value, strict=True))
        return value


class DigitPublic(BaseModel):
    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0, le=1)
    probabilities: list[float] = Field(min_length=10, max_length=10)
    box: BoxPublic | None = Field(
        None, description="Where the digit is, in the pixels of the image read (of the page, for "
        "a document type)."
    )  # fmt: skip


class SeparatorPublic(BaseModel):
    char: str = Field(description="One of . , - / and a space (a wide gap).")
    position: int = Field(description="How many digits of `text` come before it.")
    box: BoxPublic


class ReadingPublic(BaseModel):
    """One field read: its text, how sure, whether a person should check it, and its digits."""

    text: str = Field(description="The digits read, left to right (separators left out).")
    confidence: float = Field(
        ge=0,
        le=1,
        description="Calibrated: for a field, the product of its digits' confidences; a mark "
        "the model finds at least as likely no digit as a digit is never above one half.",
    )
    needs_review: bool = Field(description="A person should check this answer (see reasons).")
    review_reasons: list[str] = Field(description=REVIEW_REASONS)
    digits: list[DigitPublic]


class FieldPublic(ReadingPublic):
    """One field of a document read as a document type (layout=cheque or a registered type)."""

    kind: str = Field(description="amount, digits or digit")
    separators: list[SeparatorPublic] = Field(default_factory=list)
    box: BoxPublic | None = Field(description="Where the field is on the page; null: not found.")


class PredictionBase(ReadingPublic):
    """What every prediction says — the synchronous answer, a job's result and the CSV's
    reading columns are this one shape (a job's result adds the document's columns)."""

    fields: dict[str, FieldPublic] | None = Field(
        None,
        description="layout=cheque or a document type: one entry per field, boxes in the page's "
        "pixels; `text`, `digits` and the flags are the primary field's (the cheque's amount).",
    )
    model_version: str


class PagePublic(BaseModel):
    width: int
    height: int


class PredictionPublic(PredictionBase):
    """The synchronous answer (`/predict`, `/predict-drawing`). A single field also has its
    first digit, that digit's probabilities and the separators; a document type its layout and
    page size. Keys that do not apply are left out."""

    digit: int | None = Field(
        None, ge=0, le=9, description="The first digit: the answer for a single digit."
    )
    probabilities: list[float] | None = Field(
        None,
        min_length=10,
        max_length=10,
        description="Calibrated probability of each digit 0-9 (of `digit`; renormalised over "
        "the ten digits).",
    )
    separators: list[SeparatorPublic] | None = None
    layout: str | None = Field(None, description="The document type read (layout=cheque...).")
    page: PagePublic | None = Field(None, description="The page's size, for a document type.")


_PREDICTION = TypeAdapter(PredictionPublic)


def prediction_json(reading: dict, model_version: str) -> bytes:
    """A reading's `as_dict()` as the public JSON: validated against PredictionPublic (unknown
    keys dropped) and serialised by pydantic-core, faster than json.dumps on the hot path."""
    prediction = _PREDICTION.validate_python({**reading, "model_version": model_version})
    return _PREDICTION.dump_json(prediction, exclude_unset=True)


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, for people.")
    code: str = Field(description="A stable identifier, for programs (e.g. `truncated_image`).")

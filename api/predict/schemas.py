from typing import Literal

from pydantic import BaseModel, Field

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


class BoxPublic(BaseModel):
    x: int
    y: int
    width: int
    height: int


class DigitPublic(BaseModel):
    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0, le=1)
    probabilities: list[float] = Field(min_length=10, max_length=10)
    box: BoxPublic = Field(description="Where the digit is, in the pixels of the image read.")


class SeparatorPublic(BaseModel):
    char: str = Field(description="One of . , - / and a space (a wide gap).")
    position: int = Field(description="How many digits of `text` come before it.")
    box: BoxPublic


class PredictionPublic(BaseModel):
    text: str = Field(description="The digits read, left to right (separators left out).")
    digit: int = Field(ge=0, le=9, description="The first digit: the answer for a single digit.")
    confidence: float = Field(
        ge=0,
        le=1,
        description="Calibrated: for a field, the product of its digits' confidences; a mark's "
        "probability of not being a digit at all lowers it.",
    )
    probabilities: list[float] = Field(
        min_length=10,
        max_length=10,
        description="Calibrated probability of each digit 0-9 (of `digit`; renormalised over "
        "the ten digits).",
    )
    digits: list[DigitPublic]
    separators: list[SeparatorPublic]
    needs_review: bool = Field(description="A person should check this answer (see reasons).")
    review_reasons: list[str] = Field(
        description="low_confidence, not_a_digit, ambiguous_segmentation, too_many_digits"
    )
    model_version: str


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, for people.")
    code: str = Field(description="A stable identifier, for programs (e.g. `truncated_image`).")

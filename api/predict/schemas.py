from pydantic import BaseModel, Field


class DrawingRequest(BaseModel):
    image: str = Field(
        description="The canvas as a data URL: `data:image/png;base64,...` (any supported format).",
        examples=["data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA..."],
    )


class PredictionPublic(BaseModel):
    digit: int = Field(ge=0, le=9)
    confidence: float = Field(ge=0, le=1, description="Calibrated probability of `digit`.")
    probabilities: list[float] = Field(
        min_length=10, max_length=10, description="Calibrated probability of each digit 0-9."
    )
    needs_review: bool = Field(description="Confidence is below the model card's threshold.")
    model_version: str


class ErrorPublic(BaseModel):
    detail: str = Field(description="What was wrong, for people.")
    code: str = Field(description="A stable identifier, for programs (e.g. `truncated_image`).")

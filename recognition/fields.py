"""Read whole fields: one function used by the API, the workers and the CLI.

    reading = read_field(gray, recognizer, layout="auto")
    reading.text, reading.digits, reading.confidence, reading.needs_review, reading.review_reasons

`find_digits` (recognition.segment) is pure image work; `read_segmentations` reads any number of
segmented fields in ONE model call (the workers' batches, the API's micro-batches), chooses each
ambiguous mark's hypothesis by how plausibly its crops read as digits and applies the review policy:

- a digit's confidence is how sure the model is which digit it is (recognition.inference); a mark
  the model finds at least as likely "not a digit" as a digit is never confident;
- the field's confidence is the product of its digits' (the chance every digit is right);
- a field needs review when its confidence is below the model card's field threshold (the
  digit threshold for a one-digit field), when a mark is at least as likely not a digit as a digit,
  when the ink had to be cut or joined and the reading is not clearly confident, when the reading
  that won over others is itself doubtful as a digit, when a digit is far shorter than the
  field's tallest (a stray piece), when a mark was taken for a slash
  (a steeply leaning 1 looks the same), or when it holds more digits than a field can.
"""

import math
from dataclasses import dataclass, replace

import numpy as np

from recognition.inference import NOT_A_DIGIT_FROM, DigitPrediction, Recognizer
from recognition.segment import LAYOUTS, Box, Hypothesis, Segmentation, Separator, find_digits

MAX_DIGITS = 12
# A cut or joined mark is accepted without review only when its digits are this confident.
AMBIGUOUS_MIN_CONFIDENCE = 0.9
# A reading that won over others (cut or not, joined or not, one digit or two) is left to a person
# when the model finds it this likely to be no digit at all: a pair of digits read as one
# (the marks it learnt include pairs) rather than a digit. Chosen on tuning fields.
CONTESTED_NOT_A_DIGIT = 0.25
# A "digit" less than this share of the field's tallest is a stray piece more often than a
# digit (a 1's tick read as another 1): handwritten digits of one field stand within ~25% of
# each other. Chosen on tuning fields (docs/fields.md).
SHORT_DIGIT = 0.6

LOW_CONFIDENCE = "low_confidence"
NOT_A_DIGIT = "not_a_digit"
AMBIGUOUS_SEGMENTATION = "ambiguous_segmentation"
TOO_MANY_DIGITS = "too_many_digits"


@dataclass(frozen=True, slots=True)
class DigitReading:
    digit: int
    confidence: float  # calibrated: DigitPrediction.confidence
    probabilities: tuple[float, ...]  # 10 calibrated digit probabilities summing to 1
    box: Box
    not_a_digit: float = 0.0


@dataclass(frozen=True, slots=True)
class FieldReading:
    text: str
    digits: tuple[DigitReading, ...]
    separators: tuple[Separator, ...]
    confidence: float
    needs_review: bool
    review_reasons: tuple[str, ...]

    @property
    def digit(self) -> int:
        """The first digit (the answer itself for a one-digit field)."""
        return self.digits[0].digit

    @property
    def probabilities(self) -> tuple[float, ...]:
        return self.digits[0].probabilities

    def as_dict(self) -> dict:
        """Plain JSON-ready values (what the API answers and the workers store)."""
        return {
            "text": self.text,
            "digit": self.digit,
            "probabilities": list(self.probabilities),
            "confidence": self.confidence,
            "needs_review": self.needs_review,
            "review_reasons": list(self.review_reasons),
            "digits": [digit_dict(d) for d in self.digits],
            "separators": [
                {"char": s.char, "position": s.position, "box": box_dict(s.box)}
                for s in self.separators
            ],
        }


def box_dict(box: Box) -> dict:
    return {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


def digit_dict(d: DigitReading) -> dict:
    return {
        "digit": d.digit,
        "confidence": d.confidence,
        "probabilities": list(d.probabilities),
        "box": box_dict(d.box),
    }


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    digit_threshold: float  # for one-digit fields (the model card's review threshold)
    field_threshold: float  # for fields of two digits or more

    @classmethod
    def of(cls, recognizer: Recognizer) -> "ReviewPolicy":
        # An extra of the card, kept as its JSON dict: read it without dumping the whole card
        # (this runs for every batch on the fast path).
        field = getattr(recognizer.card, "field_review", None) or {}
        return cls(recognizer.threshold, float(field.get("threshold", recognizer.threshold)))


def _score(hypothesis: Hypothesis, predictions: list[DigitPrediction]) -> float:
    """Mean log-plausibility of a hypothesis's digits (comparable across digit counts), with its
    prior (a cut mark must read clearly better than the whole)."""
    logs = [math.log(max(predictions[i].plausibility, 1e-12)) for i in hypothesis.crops]
    # One crop (nearly every hypothesis): its log is the mean, without np.mean's ~10 us.
    mean = logs[0] if len(logs) == 1 else float(np.mean(logs))
    return mean + math.log(hypothesis.prior)


def _choose(slot: tuple[Hypothesis, ...], predictions: list[DigitPrediction]) -> Hypothesis:
    if len(slot) == 1:  # nothing to weigh (a plain digit, a mark that was not cut)
        return slot[0]
    return max(slot, key=lambda h: _score(h, predictions))


def _reasons(digits: list[DigitReading], chosen: list[Hypothesis], contested: list[bool],
             confidence: float, policy: ReviewPolicy) -> tuple[str, ...]:  # fmt: skip
    threshold = policy.digit_threshold if len(digits) == 1 else policy.field_threshold
    reasons = []
    if confidence < threshold:
        reasons.append(LOW_CONFIDENCE)
    if any(d.not_a_digit >= NOT_A_DIGIT_FROM for d in digits):
        reasons.append(NOT_A_DIGIT)
    tallest = max(d.box.height for d in digits)
    if any(
        (h.changed and d.confidence < AMBIGUOUS_MIN_CONFIDENCE)
        or (weighed and d.not_a_digit >= CONTESTED_NOT_A_DIGIT)
        or d.box.height < SHORT_DIGIT * tallest
        for h, weighed, d in _hypothesis_digits(chosen, contested, digits)
    ):
        reasons.append(AMBIGUOUS_SEGMENTATION)
    if len(digits) > MAX_DIGITS:
        reasons.append(TOO_MANY_DIGITS)
    return tuple(reasons)


def _hypothesis_digits(chosen: list[Hypothesis], contested: list[bool],
                       digits: list[DigitReading]):  # fmt: skip
    """(hypothesis, whether it won over others, digit) for each digit of the reading."""
    position = 0
    for hypothesis, weighed in zip(chosen, contested, strict=True):
        for _ in hypothesis.crops:
            yield hypothesis, weighed, digits[position]
            position += 1


def _reading(segmentation: Segmentation, predictions: list[DigitPrediction],
             policy: ReviewPolicy) -> FieldReading:  # fmt: skip
    chosen = [_choose(slot, predictions) for slot in segmentation.slots]
    contested = [len(slot) > 1 for slot in segmentation.slots]
    separators = segmentation.separators
    if segmentation.plain is not None and sum(len(h.crops) for h in chosen) == 1:
        chosen, separators = [segmentation.plain], ()  # one digit: read as it always was
        contested = [any(contested)]
    digits = [
        DigitReading(p.digit, p.confidence, p.probabilities, box, p.not_a_digit)
        for hypothesis in chosen
        for p, box in zip(
            (predictions[i] for i in hypothesis.crops), hypothesis.boxes, strict=True
        )  # fmt: skip
    ]
    confidence = math.prod(d.confidence for d in digits)
    centres = [d.box.x + d.box.width / 2 for d in digits]
    separators = tuple(
        replace(s, position=sum(c < s.box.x + s.box.width / 2 for c in centres)) for s in separators
    )
    reasons = _reasons(digits, chosen, contested, confidence, policy)
    slashlike = segmentation.doubtful or any(s.char == "/" for s in separators)
    if AMBIGUOUS_SEGMENTATION not in reasons and slashlike:
        reasons += (AMBIGUOUS_SEGMENTATION,)  # a steep 1 and a slash look alike
    return FieldReading(
        text="".join(str(d.digit) for d in digits),
        digits=tuple(digits),
        separators=separators,
        confidence=confidence,
        needs_review=bool(reasons),
        review_reasons=reasons,
    )


def read_segmentations(
    segmentations: list[Segmentation], recognizer: Recognizer
) -> list[FieldReading]:
    """Read many segmented fields with one model call for all their crops."""
    if not segmentations:
        return []
    predictions = recognizer.predict(np.concatenate([s.crops for s in segmentations]))
    policy = ReviewPolicy.of(recognizer)
    readings, start = [], 0
    for segmentation in segmentations:
        stop = start + len(segmentation.crops)
        readings.append(_reading(segmentation, predictions[start:stop], policy))
        start = stop
    return readings


def read_field(gray: np.ndarray, recognizer: Recognizer, layout: str = "auto") -> FieldReading:
    """Read one field: grayscale float [H, W] in [0, 1], dark ink on light or light on dark."""
    return read_segmentations([find_digits(gray, layout)], recognizer)[0]


__all__ = [
    "LAYOUTS",
    "Box",
    "DigitReading",
    "FieldReading",
    "ReviewPolicy",
    "Separator",
    "find_digits",
    "read_field",
    "read_segmentations",
]

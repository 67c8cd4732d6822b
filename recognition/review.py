"""Review policy: which readings a person must check, and why.

A document goes to review when its field confidence (the product of its digits' calibrated
confidences) is below the threshold — the model card's unless the deployment overrides it — when
the core itself reports a reason (ambiguous segmentation, a mark that is not a digit), or when
the random audit picks it. Audit picks are documents that would otherwise have been accepted
automatically, so the share of them reviewers correct estimates the auto-accept error.

Pure functions with no I/O: the worker calls `review_flag` for each reading it stores.
"""

import random
from dataclasses import dataclass

LOW_CONFIDENCE = "low_confidence"
AUDIT = "audit"


@dataclass(frozen=True, slots=True)
class ReviewPolicy:
    threshold: float  # field confidence below this goes to review
    audit_rate: float = 0.0  # share of auto-accepted readings sent to review at random
    double_key_above_length: int | None = None  # longer fields need two agreeing reviewers
    double_key_rate: float = 0.0  # share of flagged items double-keyed regardless of length

    def __post_init__(self):
        for name in ("threshold", "audit_rate", "double_key_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @classmethod
    def for_model(
        cls, card_threshold: float, threshold: float | None = None, **options
    ) -> "ReviewPolicy":
        """The card's threshold unless the deployment overrides it."""
        return cls(threshold=card_threshold if threshold is None else threshold, **options)


@dataclass(frozen=True, slots=True)
class ReviewFlag:
    needs_review: bool
    reasons: tuple[str, ...]  # empty when not flagged
    audit: bool  # flagged by the random audit alone
    keyings_required: int  # 1, or 2 under double-keying


NOT_FLAGGED = ReviewFlag(needs_review=False, reasons=(), audit=False, keyings_required=1)


def review_flag(
    policy: ReviewPolicy,
    text: str,
    confidence: float,
    core_reasons: tuple[str, ...] | list[str] = (),
    rng: random.Random | None = None,
) -> ReviewFlag:
    """Decide whether a reading (`text`, its field `confidence`) needs a person."""
    rng = rng or random
    reasons = list(dict.fromkeys(core_reasons))  # the core's own, in order, once each
    if confidence < policy.threshold and LOW_CONFIDENCE not in reasons:
        reasons.insert(0, LOW_CONFIDENCE)
    audit = False
    if not reasons:
        if policy.audit_rate <= 0 or rng.random() >= policy.audit_rate:
            return NOT_FLAGGED
        reasons, audit = [AUDIT], True
    return ReviewFlag(True, tuple(reasons), audit, _keyings(policy, text, rng))


def _keyings(policy: ReviewPolicy, text: str, rng) -> int:
    long_field = (
        policy.double_key_above_length is not None and len(text) > policy.double_key_above_length
    )
    sampled = policy.double_key_rate > 0 and rng.random() < policy.double_key_rate
    return 2 if long_field or sampled else 1

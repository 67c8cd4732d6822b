"""The review policy (recognition/review.py) and the Wilson interval, on their own."""

import random

import pytest

from api.review.metrics import wilson_interval
from recognition.review import ReviewPolicy, review_flag


def test_below_the_threshold_is_flagged_with_its_reason():
    policy = ReviewPolicy(threshold=0.9)
    flag = review_flag(policy, "7", 0.89)
    assert (flag.needs_review, flag.reasons, flag.audit, flag.keyings_required) == (
        True, ("low_confidence",), False, 1,
    )  # fmt: skip
    assert not review_flag(policy, "7", 0.9).needs_review


def test_the_deployment_overrides_the_cards_threshold():
    assert ReviewPolicy.for_model(0.95).threshold == 0.95
    assert ReviewPolicy.for_model(0.95, threshold=0.5).threshold == 0.5
    assert not review_flag(ReviewPolicy.for_model(0.95, 0.5), "1", 0.6).needs_review
    with pytest.raises(ValueError):
        ReviewPolicy(threshold=1.5)


def test_the_cores_reasons_are_kept_even_when_confident():
    flag = review_flag(ReviewPolicy(0.9), "12", 0.99, ["ambiguous_segmentation", "not_a_digit"])
    assert flag.reasons == ("ambiguous_segmentation", "not_a_digit") and not flag.audit
    both = review_flag(ReviewPolicy(0.9), "12", 0.5, ["not_a_digit", "not_a_digit"])
    assert both.reasons == ("low_confidence", "not_a_digit")


def test_the_audit_picks_its_share_of_what_would_be_auto_accepted():
    policy = ReviewPolicy(threshold=0.5, audit_rate=0.1)
    rng = random.Random(7)
    flags = [review_flag(policy, "3", 0.99, rng=rng) for _ in range(10_000)]
    audited = [f for f in flags if f.needs_review]
    assert 850 < len(audited) < 1150
    assert all(f.audit and f.reasons == ("audit",) for f in audited)
    # Low-confidence readings are flagged for that, never counted as audit picks.
    assert not review_flag(policy, "3", 0.1, rng=rng).audit


def test_double_keying_by_length_or_share():
    long_fields = ReviewPolicy(threshold=1.0, double_key_above_length=4)
    assert review_flag(long_fields, "1234", 0.5).keyings_required == 1
    assert review_flag(long_fields, "12345", 0.5).keyings_required == 2
    share = ReviewPolicy(threshold=1.0, double_key_rate=0.25)
    rng = random.Random(1)
    doubled = sum(review_flag(share, "1", 0.5, rng=rng).keyings_required == 2 for _ in range(4000))
    assert 850 < doubled < 1150
    assert review_flag(ReviewPolicy(threshold=1.0), "123456789", 0.5).keyings_required == 1


def test_wilson_interval():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(0, 100)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=1e-4)  # not the Wald interval's 0
    low, high = wilson_interval(3, 30)
    assert (low, high) == (pytest.approx(0.03459, abs=1e-4), pytest.approx(0.25620, abs=1e-4))
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(1 - high)

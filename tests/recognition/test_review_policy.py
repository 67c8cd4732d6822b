"""The field review policy of `recognition.fields`, reason by reason, on hand-built segmentations
and model answers (the reading is pure: which hypothesis wins, where separators sit, which
reasons a field gets), and `ReviewPolicy.of` on the shipped model's card.

Each test was written against a mutant that passed every other test (docs/mutation.md): the
thresholds swapped or compared with `<=`, one doubtful digit not enough to flag its field, a
separator's position counted from the wrong centres, a prior or the mean left out of a
hypothesis's score."""

import json
import math

import numpy as np
import pytest

from recognition import Recognizer
from recognition.fields import (
    AMBIGUOUS_MIN_CONFIDENCE,
    AMBIGUOUS_SEGMENTATION,
    CONTESTED_NOT_A_DIGIT,
    LOW_CONFIDENCE,
    MAX_DIGITS,
    NOT_A_DIGIT,
    SHORT_DIGIT,
    TOO_MANY_DIGITS,
    ReviewPolicy,
    _reading,
)
from recognition.inference import DigitPrediction
from recognition.segment import Box, Hypothesis, Segmentation, Separator
from tests.recognition.conftest import DEFAULT_MODEL_DIR

POLICY = ReviewPolicy(digit_threshold=0.9, field_threshold=0.5)


def _prediction(digit: int, confidence: float, not_a_digit: float = 0.0) -> DigitPrediction:
    # The digit's share is its confidence, so its plausibility is that less the "not a digit" mass.
    probabilities = tuple(confidence if d == digit else (1 - confidence) / 9 for d in range(10))
    return DigitPrediction(digit, confidence, probabilities, False, not_a_digit)


def _box(n: int, width: int = 10, height: int = 10) -> Box:
    return Box(20 * n, 0, width, height)


def _field(*readings: tuple, separators=(), changed=(), plain: int | None = None, heights=None):
    """A field of one-digit slots (crop i read as readings[i]); `changed`: the slots whose
    hypothesis cut or joined ink; `plain`: the crop read as the whole image; `heights`: the
    digits' ink heights (10 each unless given)."""
    heights = heights or [10] * len(readings)
    slots = tuple(
        (Hypothesis((i,), (_box(i, height=heights[i]),), changed=i in changed),)
        for i in range(len(readings))
    )
    count = len(readings) + (plain is not None)
    whole = None if plain is None else Hypothesis((plain,), (Box(0, 0, 30, 30),), changed=False)
    segmentation = Segmentation(np.zeros((count, 28, 28), np.float32), slots, separators, whole)
    predictions = [_prediction(*r) for r in readings]
    if plain is not None:
        predictions.append(_prediction(7, 0.99))
    return segmentation, predictions


def _read(*readings, policy=POLICY, **options):
    return _reading(*_field(*readings, **options), policy)


def test_one_digit_is_judged_by_the_digit_threshold_and_a_field_by_its_own():
    # 0.7 is below the digit threshold (0.9) and above the field threshold (0.5).
    alone = _read((3, 0.7))
    assert alone.review_reasons == (LOW_CONFIDENCE,) and alone.needs_review
    pair = _read((3, 0.8), (4, 0.8))  # 0.64: a field's confidence, above 0.5
    assert pair.confidence == pytest.approx(0.64)
    assert pair.review_reasons == () and not pair.needs_review
    assert _read((3, 0.6), (4, 0.6)).review_reasons == (LOW_CONFIDENCE,)  # 0.36 < 0.5


def test_a_confidence_at_the_threshold_is_accepted():
    assert _read((3, 0.9)).review_reasons == ()
    reading = _read((3, 0.9))
    assert (
        reading.probabilities
        == reading.digits[0].probabilities
        == _prediction(3, 0.9).probabilities
    )
    assert _read((3, 0.5), (4, 1.0)).review_reasons == ()
    assert _read((3, 0.8999)).review_reasons == (LOW_CONFIDENCE,)
    assert _read((3, 0.4999), (4, 1.0)).review_reasons == (LOW_CONFIDENCE,)


def test_one_doubtful_mark_sends_the_whole_field_to_review():
    confident = [(d, 0.999) for d in (1, 2, 3, 4)]
    assert not _read(*confident).needs_review
    lenient = ReviewPolicy(digit_threshold=0.9, field_threshold=0.1)  # confidence aside
    odd = _read(*confident[:3], (4, 0.3, 0.5), policy=lenient)  # as likely no digit as a digit
    assert odd.review_reasons == (NOT_A_DIGIT,) and odd.needs_review
    # Not a digit only from half the mass on: below it, the digit's confidence decides alone.
    assert _read(*confident[:3], (4, 0.6, 0.49)).review_reasons == ()


def test_a_cut_or_joined_mark_needs_a_clearly_confident_reading():
    confident = [(d, 0.999) for d in (5, 6, 7)]
    sure = (8, AMBIGUOUS_MIN_CONFIDENCE)
    unsure = (8, AMBIGUOUS_MIN_CONFIDENCE - 0.01)
    assert _read(*confident, sure, changed={3}).review_reasons == ()
    assert _read(*confident, unsure, changed={3}).review_reasons == (AMBIGUOUS_SEGMENTATION,)
    assert _read(*confident, unsure).review_reasons == ()  # the same digit, ink as it was
    # The changed slot is the one judged: an unchanged doubtful digit next to it is not.
    assert _read((5, 0.999), unsure, (6, 0.999), changed={2}).review_reasons == ()


def test_a_digit_far_shorter_than_the_tallest_is_a_stray_piece():
    confident = [(1, 0.999)] * 3
    at_the_share = round(SHORT_DIGIT * 40)
    assert _read(*confident, heights=[40, at_the_share, 38]).review_reasons == ()
    assert _read(*confident, heights=[40, at_the_share - 1, 38]).review_reasons == (
        AMBIGUOUS_SEGMENTATION,
    )


def test_more_digits_than_a_field_holds_are_flagged():
    assert _read(*[(1, 1.0)] * MAX_DIGITS).review_reasons == ()
    assert _read(*[(1, 1.0)] * (MAX_DIGITS + 1)).review_reasons == (TOO_MANY_DIGITS,)


def test_reasons_come_together_in_their_order():
    reading = _read((1, 0.3, 0.5), *[(2, 0.99)] * MAX_DIGITS, changed={0})
    assert reading.review_reasons == (
        LOW_CONFIDENCE, NOT_A_DIGIT, AMBIGUOUS_SEGMENTATION, TOO_MANY_DIGITS,
    )  # fmt: skip
    assert reading.text == "1" + "2" * MAX_DIGITS


def test_a_slash_sends_the_field_to_review_once():
    slash = Separator("/", Box(30, 0, 4, 10))
    reading = _read((1, 0.99), (7, 0.99), separators=(slash,))
    assert reading.review_reasons == (AMBIGUOUS_SEGMENTATION,)
    both = _read((1, 0.99), (7, 0.5), separators=(slash,), changed={1})
    assert both.review_reasons == (LOW_CONFIDENCE, AMBIGUOUS_SEGMENTATION)
    dot = Separator(".", Box(30, 0, 4, 10))
    assert _read((1, 0.99), (7, 0.99), separators=(dot,)).review_reasons == ()
    # Added to what the reading already says, not in its place.
    doubtful = _read((1, 0.5), (7, 0.99), separators=(slash,))
    assert doubtful.review_reasons == (LOW_CONFIDENCE, AMBIGUOUS_SEGMENTATION)


def test_a_separator_counts_the_digit_centres_left_of_its_own_centre():
    # Digits at x 0-10, 20-50 (wide: centre 35) and 60-70; a dot centred at 32 has one digit
    # centre to its left (a centre taken as x + w/3 would put the wide digit's at 30: two).
    segmentation = Segmentation(
        np.zeros((3, 28, 28), np.float32),
        tuple(
            (Hypothesis((i,), (box,), changed=False),)
            for i, box in enumerate([Box(0, 0, 10, 10), Box(20, 0, 30, 10), Box(60, 0, 10, 10)])
        ),
        (Separator(".", Box(31, 0, 2, 2)), Separator(",", Box(4, 0, 2, 2)),
         Separator("-", Box(30, 0, 12, 2))),
    )  # fmt: skip
    reading = _reading(segmentation, [_prediction(d, 0.99) for d in (1, 2, 3)], POLICY)
    # The comma's centre (5) is the first digit's own centre: not to its left. The dash's (36)
    # is right of the wide digit's (35); its left edge (30) or a third of it (34) is not.
    assert [(s.char, s.position) for s in reading.separators] == [(".", 1), (",", 0), ("-", 2)]


def test_one_digit_is_read_from_the_whole_image_and_drops_separators():
    dash = Separator("-", Box(30, 0, 4, 2))
    reading = _read((4, 0.95), separators=(dash,), plain=1)
    assert reading.text == "7" and reading.separators == ()
    assert reading.digits[0].box == Box(0, 0, 30, 30)
    two = _read((4, 0.95), (5, 0.95), separators=(dash,), plain=2)
    assert two.text == "45" and [s.char for s in two.separators] == ["-"]


def _slot_field(whole: float, parts: tuple[float, float], prior: float) -> str:
    """One slot: the mark as it is (crop 0) or cut in two (crops 1, 2) with `prior`."""
    as_is = Hypothesis((0,), (_box(0),), changed=False)
    cut = Hypothesis((1, 2), (_box(0, 5), _box(1, 5)), changed=True, prior=prior)
    segmentation = Segmentation(np.zeros((3, 28, 28), np.float32), ((as_is, cut),), ())
    predictions = [_prediction(0, whole), _prediction(1, parts[0]), _prediction(2, parts[1])]
    return _reading(segmentation, predictions, POLICY).text


def test_a_cut_wins_by_its_digits_mean_log_confidence_times_its_prior():
    # Mean of logs: log 0.9 (-0.105) beats log 0.85 (-0.163); their sum (-0.211) would not.
    assert _slot_field(0.85, (0.9, 0.9), prior=1.0) == "12"
    # The prior counts: at 0.5 the cut must read better than 0.85 / 0.5, which it cannot.
    assert _slot_field(0.85, (0.99, 0.99), prior=0.5) == "0"
    assert _slot_field(0.4, (0.99, 0.99), prior=0.5) == "12"
    assert math.log(0.99) + math.log(0.5) > math.log(0.4)


def test_a_reading_that_won_over_others_and_may_be_no_digit_goes_to_review():
    """The whole mark beats its cut (a pair of digits read as one), yet the model finds it a
    quarter or more likely no digit: a person decides. The same doubt on a digit that had no
    rival reading is the not-a-digit rule's business alone (at one half)."""
    def read(doubt: float, rival: bool) -> tuple[str, ...]:
        as_is = Hypothesis((0,), (_box(0),), changed=False)
        cut = Hypothesis((1, 2), (_box(0, 5), _box(1, 5)), changed=True, prior=0.5)
        other = Hypothesis((3,), (_box(2),), changed=False)
        slots = ((as_is, cut) if rival else (as_is,), (other,))
        segmentation = Segmentation(np.zeros((4, 28, 28), np.float32), slots, ())
        predictions = [_prediction(8, 0.999, doubt), _prediction(1, 0.9), _prediction(2, 0.9),
                       _prediction(5, 0.999)]  # fmt: skip
        reading = _reading(segmentation, predictions, POLICY)
        assert reading.text == "85"
        return reading.review_reasons

    assert read(CONTESTED_NOT_A_DIGIT, rival=True) == (AMBIGUOUS_SEGMENTATION,)
    assert read(CONTESTED_NOT_A_DIGIT - 0.01, rival=True) == ()
    assert read(CONTESTED_NOT_A_DIGIT, rival=False) == ()


def test_the_policy_takes_each_threshold_from_the_card(tmp_path):
    recognizer = Recognizer(DEFAULT_MODEL_DIR)
    card = json.loads((DEFAULT_MODEL_DIR / "model_card.json").read_text())
    policy = ReviewPolicy.of(recognizer)
    assert policy.digit_threshold == recognizer.threshold == card["review"]["threshold"]
    assert policy.field_threshold == card["field_review"]["threshold"]
    assert policy.field_threshold != policy.digit_threshold
    # A card without a field threshold judges fields by the digit threshold.
    del card["field_review"]
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    (tmp_path / "model.tflite").symlink_to(DEFAULT_MODEL_DIR / "model.tflite")
    fallback = ReviewPolicy.of(Recognizer(tmp_path))
    assert fallback == ReviewPolicy(recognizer.threshold, recognizer.threshold)

"""The core's entry points do what their arguments say (written against mutants that survived
the rest of tests/recognition: see docs/mutation.md)."""

import numpy as np
import pytest

from recognition import (
    EmptyImage,
    ImageError,
    ImageTooLarge,
    InvalidDataURL,
    NoDigits,
    Recognizer,
    TruncatedImage,
    UndecodableImage,
    read_field,
    segment_image,
    to_mnist,
)
from recognition.preprocess import _despeckle
from tests.recognition.conftest import DEFAULT_MODEL_DIR
from tests.recognition.test_fields import field_of, gray


def test_every_image_error_carries_its_own_code():
    codes = {
        ImageError: "invalid_image", UndecodableImage: "undecodable_image",
        TruncatedImage: "truncated_image", InvalidDataURL: "invalid_data_url",
        EmptyImage: "empty_image", ImageTooLarge: "image_too_large", NoDigits: "no_digits",
    }  # fmt: skip
    assert {kind: kind.code for kind in codes} == codes
    assert TruncatedImage("x").code == "truncated_image"


def test_segment_image_and_read_field_honour_the_layout(mnist, rng, recognizer):
    image, text = field_of(mnist, rng, count=3)
    assert len(segment_image(image, "digit").slots) == 1
    assert len(segment_image(image, "field").slots) == 3
    assert len(read_field(gray(image), recognizer, "digit").digits) == 1
    assert len(read_field(gray(image), recognizer, "field").digits) == 3


def test_the_recognizer_serves_litert_and_refuses_unknown_backends():
    assert Recognizer(DEFAULT_MODEL_DIR).backend == "litert"
    with pytest.raises(ValueError, match="unknown backend 'onnx'"):
        Recognizer(DEFAULT_MODEL_DIR, backend="onnx")


def test_despeckle_drops_specks_and_keeps_strokes():
    mask = np.zeros((12, 12), bool)
    mask[1, 1] = True  # a speck of dust
    mask[1, 5:7] = True  # two pixels: still dust
    mask[6:8, 2:4] = True  # a 2x2 dot: each pixel has 3 inked neighbours, the least kept
    mask[9:11, 5:11] = True  # a stroke two pixels wide
    kept = _despeckle(mask)
    assert not kept[1].any()
    assert kept[6:8, 2:4].all() and kept[9:11, 5:11].all()
    assert kept.sum() == 4 + 12


def test_a_faint_pencil_digit_normalises_like_a_dark_one(mnist):
    digit = mnist.x_test[0].astype(np.float32) / 255.0
    dark = to_mnist(1.0 - digit)  # black ink on white paper
    faint = to_mnist(1.0 - 0.25 * digit)  # a quarter of the darkness: still a digit
    assert np.abs(dark - faint).max() < 0.05


def test_a_blank_page_says_it_holds_no_ink():
    with pytest.raises(EmptyImage, match="holds no ink") as error:
        to_mnist(np.full((60, 80), 0.97, np.float32))
    assert error.value.code == "empty_image"

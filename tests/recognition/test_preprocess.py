import numpy as np
import pytest
from PIL import Image

from recognition import normalize_mnist, prepare, segment_digits, to_mnist
from recognition.synthetic import render_scan
from tests.recognition.images import encode


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    return (rows * image).sum() / image.sum(), (cols * image).sum() / image.sum()


def ink_box(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_mnist_form_fit_in_20x20_and_centred_by_mass(mnist):
    for digit in normalize_mnist(mnist.x_test[:50]):
        assert digit.shape == (28, 28) and digit.dtype == np.float32
        assert 0.0 <= digit.min() and digit.max() == pytest.approx(1.0)
        assert max(ink_box(digit)) <= 21
        cy, cx = centre_of_mass(digit)
        assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0


def test_mnist_digits_pass_through_nearly_unchanged(mnist):
    original = mnist.x_test[:200].astype(np.float32) / 255
    assert np.abs(normalize_mnist(mnist.x_test[:200]) - original).mean() < 0.1


def test_scan_of_a_digit_normalises_like_the_digit(mnist, rng):
    reference = normalize_mnist(mnist.x_test[:100])
    scans = np.stack([prepare(render_scan(digit, rng)) for digit in mnist.x_test[:100]])
    assert np.abs(scans - reference).mean() < 0.05


def test_small_off_centre_drawing_is_cropped_and_centred():
    canvas = np.ones((280, 280), np.float32)
    canvas[20:60, 200:206] = 0.0  # a small '1' in the top-right corner
    digit = to_mnist(canvas)
    height, width = ink_box(digit)
    assert height in (19, 20, 21) and width <= 6
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 13.5) <= 1.0 and abs(cx - 13.5) <= 1.0


def test_noise_specks_do_not_move_the_crop():
    clean = np.full((200, 200), 0.95, np.float32)
    clean[50:150, 90:105] = 0.05
    speckled = clean.copy()
    speckled[[5, 190, 10], [5, 190, 180]] = 0.0  # isolated dark dust
    assert np.abs(to_mnist(clean) - to_mnist(speckled)).max() < 1e-6


def test_segment_digits_splits_a_field_at_blank_columns(mnist):
    digits = [mnist.x_test[i] for i in range(4)]
    field = np.concatenate([np.pad(d, ((0, 0), (6, 6))) for d in digits], axis=1)
    gray = 1.0 - field.astype(np.float32) / 255  # dark on light, as on a form
    pieces = segment_digits(gray)
    assert len(pieces) == 4
    for piece, digit in zip(pieces, digits, strict=True):
        assert np.abs(piece - to_mnist(digit.astype(np.float32) / 255)).mean() < 0.05


def test_huge_scan_is_reduced_before_analysis():
    pixels = np.full((3000, 2000), 240, np.uint8)
    pixels[1000:2000, 900:1000] = 10
    digit = prepare(encode(Image.fromarray(pixels), "PNG"))
    assert digit.shape == (28, 28) and digit.max() == pytest.approx(1.0)


def test_a_box_along_the_edge_is_ink_and_mnist_keeps_its_polarity(mnist):
    """A printed box drawn along the image's edge darkens the border, which once made the paper
    inside it the "ink": the paper is now found inside. White digits on black (MNIST, canvas
    drawings) keep their polarity: not one of the 10,000 test digits is read the other way."""
    from recognition.preprocess import _paper_inside, ink_and_mask

    flipped = [i for i, x in enumerate(mnist.x_test) if _paper_inside(x / np.float32(255), 0.0)]
    assert flipped == []
    page = np.full((48, 40), 0.92, np.float32)
    page[:4], page[-4:], page[:, :4], page[:, -4:] = 0.1, 0.1, 0.1, 0.1  # the box
    page[12:36, 18:22] = 0.15  # a 1 inside it
    _, mask = ink_and_mask(page)
    assert mask[0, 20] and mask[20, 20]  # the box and the 1 are ink ...
    assert not mask[20, 8] and not mask[8, 20]  # ... the paper between them is not
